"""What a phone holds (docs/sync-protocol.md): the pull window, open problems with their
visits, own records only for city-wide roles, and a reset when the view changes."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from datetime import UTC, date, datetime

import pytest

from tests.conftest import Phone, create_user, visit_fields

OLD, NEW = "2026-03-05T10:00:00+08:00", "2026-05-10T10:00:00+08:00"


def _window(app, cutoff: date = date(2026, 4, 1)) -> None:
    """Pull window reaching back to `cutoff` (the campaign set to start after it)."""
    days = (datetime.now(UTC).date() - cutoff).days
    values = {**app.config["FV"].values, "SYNC_PULL_WINDOW_DAYS": days}
    values["CAMPAIGN_START"] = "2026-12-01"
    app.config["FV"] = dataclasses.replace(app.config["FV"], values=values)


def _problem(visit_id: str, **extra) -> dict:
    return {"visit_id": visit_id, "category": "wages", "description": "欠薪", **extra}


@pytest.fixture
def cadre(client):
    create_user("cadre", "field_cadre", "510104", "WG01")
    return Phone(client, "cadre")


def _ids(changes: list[dict]) -> set[str]:
    return {c["id"] for c in changes}


def test_the_window_keeps_recent_records_and_open_problems_with_their_visits(app, client, cadre):
    old, old_open, old_closed, new, gone = (str(uuid.uuid4()) for _ in range(5))
    p_open, p_closed, hv_old, hv_new = (str(uuid.uuid4()) for _ in range(4))
    muts = [
        cadre.mutation("create", "visit", old, visit_fields(visited_at=OLD)),
        cadre.mutation("create", "visit", old_open, visit_fields(visited_at=OLD)),
        cadre.mutation("create", "visit", old_closed, visit_fields(visited_at=OLD)),
        cadre.mutation("create", "visit", new, visit_fields(visited_at=NEW)),
        cadre.mutation("create", "visit", gone, visit_fields(visited_at=OLD)),
        cadre.mutation("create", "problem", p_open, _problem(old_open)),
        cadre.mutation(
            "create",
            "problem",
            p_closed,
            _problem(old_closed, stage="resolved", resolution="已补发"),
        ),
        cadre.mutation(
            "create",
            "home_visit",
            hv_old,
            {"district_code": "510104", "visited_at": OLD, "worker_name": "测试甲"},
        ),
        cadre.mutation(
            "create",
            "home_visit",
            hv_new,
            {"district_code": "510104", "visited_at": NEW, "worker_name": "测试乙"},
        ),
        cadre.mutation("delete", "visit", gone),
    ]
    r = cadre.push(muts)
    assert {x["status"] for x in r.json["results"]} == {"applied"}, r.json
    everything, _ = Phone(client, "cadre").pull_all()
    assert {old, old_open, old_closed, new, p_open, p_closed, hv_old, hv_new} <= _ids(everything)

    _window(app)
    changes, _ = Phone(client, "cadre").pull_all()
    live = {c["id"] for c in changes if not c["deleted"]}
    assert live == {new, old_open, p_open, hv_new}, live
    assert gone in {c["id"] for c in changes if c["deleted"]}, "tombstones always go"
    r = Phone(client, "cadre").get("/api/sync/pull?limit=500")
    assert r.json["window_start"].startswith("2026-04-01")


def test_an_open_problem_on_an_old_visit_arrives_with_its_visit(app, client, cadre):
    old = str(uuid.uuid4())
    assert (
        cadre.push([cadre.mutation("create", "visit", old, visit_fields(visited_at=OLD))]).json[
            "results"
        ][0]["status"]
        == "applied"
    )
    _window(app)
    phone = Phone(client, "cadre")
    first, cursor = phone.pull_all()
    assert old not in _ids(first)
    problem = str(uuid.uuid4())
    r = cadre.push([cadre.mutation("create", "problem", problem, _problem(old))])
    assert r.json["results"][0]["status"] == "applied"
    later, _ = phone.pull_all(cursor)
    kinds = [(c["entity"], c["id"]) for c in later]
    assert ("problem", problem) in kinds and ("visit", old) in kinds
    assert kinds.index(("visit", old)) < kinds.index(("problem", problem)), "the visit first"
    visit = next(c for c in later if c["id"] == old)
    assert visit["data"]["visited_at"].startswith("2026-03-05")


def test_roles_that_read_the_city_hold_only_their_own_records(client, cadre):
    create_user("coord", "city_coordinator")
    coord = Phone(client, "coord")
    theirs, mine = str(uuid.uuid4()), str(uuid.uuid4())
    assert (
        cadre.push([cadre.mutation("create", "visit", theirs, visit_fields())]).status_code == 200
    )
    r = coord.push([coord.mutation("create", "visit", mine, visit_fields("510105"))])
    assert r.json["results"][0]["status"] == "applied"
    pulled = _ids(Phone(client, "coord").pull_all()[0])
    assert mine in pulled and theirs not in pulled
    # the pages and the API still show the city's records to a coordinator
    assert coord.get(f"/api/visits/{theirs}").status_code == 200


def test_a_changed_scope_answers_reset_and_the_new_districts_records(app, client, cadre):
    create_user("other", "field_cadre", "510105")
    other = Phone(client, "other")
    there = str(uuid.uuid4())
    assert (
        other.push([other.mutation("create", "visit", there, visit_fields("510105"))]).json[
            "results"
        ][0]["status"]
        == "applied"
    )
    phone = Phone(client, "cadre")
    before, cursor = phone.pull_all()
    assert there not in _ids(before)

    from sqlalchemy import select

    from server.extensions import db
    from server.models import DistrictUnit, User

    user = db.session.scalar(select(User).where(User.username == "cadre"))
    user.district = db.session.scalar(select(DistrictUnit).where(DistrictUnit.code == "510105"))
    user.work_group = None
    db.session.commit()
    r = phone.get(f"/api/sync/pull?limit=500&cursor={cursor}")
    assert r.status_code == 200 and r.json["reset"] is True
    assert there in _ids(r.json["changes"])


def test_a_cursor_of_the_earlier_release_resets_once(client, cadre):
    _, cursor = Phone(client, "cadre").pull_all()
    epoch, version, rank, rid, _view = json.loads(
        base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    )
    legacy = (
        base64.urlsafe_b64encode(json.dumps([epoch, version, rank, rid]).encode())
        .decode()
        .rstrip("=")
    )
    r = cadre.get(f"/api/sync/pull?limit=500&cursor={legacy}")
    assert r.status_code == 200 and r.json["reset"] is True
    again = cadre.get(f"/api/sync/pull?limit=500&cursor={r.json['cursor']}")
    assert again.json["reset"] is False
