"""A NUL in a sign-in answers 4xx, never 500 (schemathesis found POST /api/auth/login
with "\\u0000" in the username answering 500 on PostgreSQL, which refuses NUL in text).
The name is nobody: the same bad_credentials as any unknown name. SQLite and PostgreSQL."""

from __future__ import annotations

from tests.conftest import PASSWORD, create_user


def test_a_nul_in_the_user_name_is_an_unknown_user(client):
    create_user("cadre", "field_cadre", "510104")
    answers = []
    for name in ("cad\x00re", "nobody-here"):
        r = client.post("/api/auth/login", json={"username": name, "password": "wrong"})
        answers.append((r.status_code, r.json["error"]["code"]))
    assert answers == [(401, "bad_credentials")] * 2
    page = client.post("/login", data={"username": "cad\x00re", "password": PASSWORD})
    assert page.status_code == 401  # the form again, with the usual error


def test_a_nul_in_the_device_name_is_refused(client):
    create_user("cadre", "field_cadre", "510104")
    r = client.post(
        "/api/auth/login",
        json={"username": "cadre", "password": PASSWORD, "device_name": "phone\x00"},
    )
    assert (r.status_code, r.json["error"]["field"]) == (400, "device_name")
    ok = client.post("/api/auth/login", json={"username": "cadre", "password": PASSWORD})
    assert ok.status_code == 200
