"""Naming participants tells nothing about user names elsewhere (issue 13, sign-in and
answers that give user names away).

A visit's participants are people of the author's scope (of the districts they read,
or of a work group serving one: those /api/reference lists). A name outside it and a
name nobody has answer alike, `invalid_participant`, so a cadre cannot probe which
user names exist in the city. SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Phone, create_user, visit_fields


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def people(client):
    create_user("cadre", "field_cadre", "510104", "WG01")
    create_user("colleague", "field_cadre", "510104", None)
    create_user("group_mate", "field_cadre", "510109", "WG01")  # WG01 serves 510104
    create_user("far", "field_cadre", "510105", "WG02")
    create_user("coord", "city_coordinator")
    return Phone(client, "cadre")


def _create(phone: Phone, participants: list[str], vid: str | None = None) -> dict:
    fields = visit_fields("510104", participants=participants)
    return phone.push([phone.mutation("create", "visit", vid or new_id(), fields)]).json["results"][
        0
    ]


def test_unknown_and_out_of_scope_names_answer_alike(people):
    phone = people
    unknown = _create(phone, ["nobody-here"])
    elsewhere = _create(phone, ["far"])
    for r in (unknown, elsewhere):
        assert (r["status"], r["code"], r["field"]) == (
            "rejected",
            "invalid_participant",
            "participants",
        ), r
    assert unknown["message"].replace("nobody-here", "?") == elsewhere["message"].replace(
        "far", "?"
    )
    assert "no user" not in unknown["message"] and "unknown" not in unknown["message"]


def test_people_of_the_scope_may_be_named(people):
    r = _create(people, ["colleague", "group_mate"])
    assert r["status"] == "applied", r


def test_city_staff_name_anyone_but_the_unknown_answer_the_same(client, people):
    coord = Phone(client, "coord")
    assert _create(coord, ["far", "cadre"])["status"] == "applied"
    r = _create(coord, ["nobody-here"])
    assert (r["status"], r["code"]) == ("rejected", "invalid_participant")


def test_participants_already_on_the_visit_stay(client, people):
    """A coordinator added someone from another district; the author's later edit that
    resends the list is not refused for that name."""
    phone = people
    vid = new_id()
    assert _create(phone, ["colleague"], vid)["status"] == "applied"
    coord = Phone(client, "coord")
    r = coord.push([coord.mutation("update", "visit", vid, {"participants_add": ["far"]})])
    assert r.json["results"][0]["status"] == "applied", r.json
    r = phone.push(
        [phone.mutation("update", "visit", vid, {"participants": ["cadre", "colleague", "far"]})]
    )
    assert r.json["results"][0]["status"] == "applied", r.json
    r = phone.push([phone.mutation("update", "visit", vid, {"participants_add": ["nobody"]})])
    assert r.json["results"][0]["code"] == "invalid_participant"
    assert r.json["results"][0]["field"] == "participants_add"


def test_device_taken_is_told_only_after_the_right_password(client, people):
    """`device_taken` (this phone is registered to another user) comes after the password
    check: a wrong password on another's device answers bad_credentials like any other,
    for a user that exists and one that does not."""
    from tests.conftest import PASSWORD

    device = people.device_id
    answers = []
    for username, password in (("colleague", "wrong-pass"), ("nobody-here", "wrong-pass")):
        r = client.post(
            "/api/auth/login",
            json={"username": username, "password": password, "device_id": device},
        )
        answers.append((r.status_code, r.json["error"]["code"], r.json["error"]["message"]))
    assert answers[0] == answers[1] and answers[0][1] == "bad_credentials"
    r = client.post(
        "/api/auth/login",
        json={"username": "colleague", "password": PASSWORD, "device_id": device},
    )
    assert (r.status_code, r.json["error"]["code"]) == (409, "device_taken")
