"""Scope rules as a table: role × action × own/other district, through the API and sync."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Phone, create_user, visit_fields

OWN, OTHER = "510104", "510105"

# role: (user's district, work group) and expected (read own, read other, write own, write other)
ROLES = {
    "field_cadre": ((OWN, "WG01"), (True, False, True, False)),
    "group_leader": ((None, "WG01"), (True, False, True, False)),
    "district_head": ((OWN, None), (True, False, True, False)),
    "city_coordinator": ((None, None), (True, True, True, True)),
    "supervisor": ((None, None), (True, True, False, False)),
    "admin": ((None, None), (True, True, True, True)),
}


@pytest.fixture
def seeded(client, app):
    """One visit in each district, recorded by admins of the fixture."""
    create_user("seed", "admin")
    seeder = Phone(client, "seed")
    ids = {OWN: str(uuid.uuid4()), OTHER: str(uuid.uuid4())}
    r = seeder.push([seeder.mutation("create", "visit", ids[d], visit_fields(d)) for d in ids])
    assert {x["status"] for x in r.json["results"]} == {"applied"}
    return ids


@pytest.mark.parametrize("role", list(ROLES))
def test_scope_table(client, seeded, role):
    (district, group), (read_own, read_other, write_own, write_other) = ROLES[role]
    create_user("who", role, district, group)
    phone = Phone(client, "who")

    listed = {v["id"] for v in phone.get("/api/visits?per_page=200").json["items"]}
    pulled = {c["id"] for c in phone.pull_all()[0]}
    for target, expected in ((OWN, read_own), (OTHER, read_other)):
        rid = seeded[target]
        assert (rid in listed) is expected, f"{role} list {target}"
        # Roles that read the whole city read it on the pages and the API; their phones
        # hold only their own records (sync/pull.py PullView).
        assert (rid in pulled) is (expected and not read_other), f"{role} pull {target}"
        status = phone.get(f"/api/visits/{rid}").status_code
        assert status == (200 if expected else 404), f"{role} read {target}"

    for target, expected in ((OWN, write_own), (OTHER, write_other)):
        create = phone.push(
            [phone.mutation("create", "visit", str(uuid.uuid4()), visit_fields(target))]
        ).json["results"][0]
        update = phone.push(
            [phone.mutation("update", "visit", seeded[target], {"notes": f"{role} was here"})]
        ).json["results"][0]
        delete = phone.push([phone.mutation("delete", "visit", seeded[target])]).json["results"][0]
        for label, result in (("create", create), ("update", update)):
            assert (result["status"] == "applied") is expected, f"{role} {label} {target}"
            if not expected:
                assert result["code"] == "forbidden", result
        assert (delete["status"] == "applied") is expected, f"{role} delete {target}"


def test_revoked_device_keeps_nothing_but_is_refused(client, app):
    create_user("cadre", "field_cadre", OWN, "WG01")
    create_user("boss", "admin")
    phone, admin = Phone(client, "cadre"), Phone(client, "boss")
    r = client.post(f"/api/admin/devices/{phone.device_id}/revoke", headers=admin.headers)
    assert r.status_code == 200
    denied = phone.push([phone.mutation("create", "visit", str(uuid.uuid4()), visit_fields())])
    assert denied.status_code == 401 and denied.json["error"]["code"] == "device_revoked"
    # a cadre can't revoke devices
    r = client.post(f"/api/admin/devices/{admin.device_id}/revoke", headers=phone.headers)
    assert r.status_code == 401


def test_sign_in_again_keeps_the_mutation_counter(client, app):
    create_user("cadre", "field_cadre", OWN, "WG01")
    phone = Phone(client, "cadre")
    phone.push([phone.mutation("create", "visit", str(uuid.uuid4()), visit_fields())])
    again = Phone(client, "cadre", device_id=phone.device_id)
    again.mid = 1
    r = again.push([again.mutation("create", "visit", str(uuid.uuid4()), visit_fields())])
    assert r.json["results"][0]["status"] == "applied" and r.json["last_mid"] == 2


def test_bad_login_and_missing_token(client, app):
    create_user("cadre", "field_cadre", OWN, "WG01")
    r = client.post("/api/auth/login", json={"username": "cadre", "password": "wrong"})
    assert r.status_code == 401 and r.json["error"]["code"] == "bad_credentials"
    r = client.post("/api/auth/login", json={"username": "cadre"})
    assert r.status_code == 400 and r.json["error"]["field"] == "password"
    assert client.get("/api/me").json["error"]["code"] == "auth_required"


def test_expired_token_answers_token_expired(client, app):
    from datetime import UTC, datetime, timedelta

    from server.extensions import db
    from server.models import Device

    create_user("cadre", "field_cadre", OWN, "WG01")
    phone = Phone(client, "cadre")
    device = db.session.get(Device, phone.device_id)
    device.last_seen_at = datetime.now(UTC) - timedelta(days=91)
    db.session.commit()
    r = phone.get("/api/me")
    assert r.status_code == 401 and r.json["error"]["code"] == "token_expired"
    # 89 days unused is still signed in (weeks offline)
    device = db.session.get(Device, phone.device_id)
    device.last_seen_at = datetime.now(UTC) - timedelta(days=89)
    db.session.commit()
    assert phone.get("/api/me").status_code == 200


def test_api_lists_filter_and_validate(client, app):
    create_user("cadre", "field_cadre", OWN, "WG01")
    phone = Phone(client, "cadre")
    phone.push(
        [
            phone.mutation("create", "visit", str(uuid.uuid4()), visit_fields(method=m))
            for m in ("symposium", "interview")
        ]
    )
    assert phone.get("/api/visits?method=interview").json["total"] == 1
    r = phone.get("/api/visits?method=party")
    assert r.status_code == 400 and r.json["error"]["field"] == "method"
    r = phone.get("/api/visits?per_page=100000")
    assert r.status_code == 400 and r.json["error"]["field"] == "per_page"
    assert phone.get("/api/visits?per_page=1&page=2").json["items"]


def test_openapi_document_lists_the_api(client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    for path in ("/api/sync/push", "/api/sync/pull", "/api/visits", "/api/auth/login"):
        assert path in spec["paths"]
    assert "VisitFields" in spec["components"]["schemas"]
