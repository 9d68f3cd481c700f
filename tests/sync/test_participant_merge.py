"""Joining a visit another cadre recorded: `participants_add` merges, on SQLite and PostgreSQL.

A cadre whose phone warns "this enterprise was visited two days ago by 张示例" and who
says it was the same meeting is added to that visit's participants instead of recording
a second visit (docs/sync-protocol.md, "Joining a visit"). Two cadres joining at once
must both end up among the participants, and the statistics count one visit.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from tests.conftest import Phone, create_user, visit_fields

# Yesterday: inside the window of visits a phone pulls (SYNC_PULL_WINDOW_DAYS).
WHEN = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=1)).replace(microsecond=0)


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def cadres(app):
    return [create_user(name, "field_cadre", "510104", "WG01") for name in ("ca", "cb", "cc")]


def recorded_visit(phone: Phone) -> tuple[str, int]:
    """A visit recorded and synced by `phone`: its id and version."""
    vid = new_id()
    r = phone.push(
        [phone.mutation("create", "visit", vid, visit_fields(visited_at=WHEN.isoformat()))]
    )
    assert r.json["results"][0]["status"] == "applied", r.json
    return vid, r.json["results"][0]["version"]


def join(phone: Phone, vid: str, base: int, names: list[str] | None = None):
    names = names or [phone_user(phone)]
    return phone.push(
        [phone.mutation("update", "visit", vid, {"participants_add": names}, base_version=base)]
    )


def phone_user(phone: Phone) -> str:
    return phone.username


def signed_in(client, username: str) -> Phone:  # noqa: ANN001
    phone = Phone(client, username)
    phone.username = username
    return phone


def participants(phone: Phone, vid: str) -> list[str]:
    changes, _ = phone.pull_all()
    rows = [c for c in changes if c["entity"] == "visit" and c["id"] == vid]
    assert rows, "the visit was not pulled"
    return rows[-1]["data"]["participants"]


def conflicts(vid: str) -> list:
    from server.extensions import db
    from server.models import Conflict

    return list(db.session.scalars(select(Conflict).where(Conflict.record_id == vid)))


def test_joining_adds_the_cadre_and_keeps_the_author(client, cadres):
    a, b = signed_in(client, "ca"), signed_in(client, "cb")
    vid, version = recorded_visit(a)
    r = join(b, vid, version)
    assert r.status_code == 200 and r.json["results"][0]["status"] == "applied", r.json
    assert r.json["results"][0]["version"] > version
    # Both phones pull the visit with both cadres; the author stays first on the server.
    assert participants(a, vid) == ["ca", "cb"]
    assert participants(b, vid) == ["ca", "cb"]
    assert not conflicts(vid)


def test_two_joins_from_the_same_stale_version_both_survive(client, cadres):
    a, b, c = (signed_in(client, n) for n in ("ca", "cb", "cc"))
    vid, version = recorded_visit(a)
    # B and C both saw the visit at `version` (pulled, then offline) and join it.
    assert join(b, vid, version).json["results"][0]["status"] == "applied"
    r = join(c, vid, version)
    assert r.json["results"][0]["status"] == "applied", r.json
    assert participants(a, vid) == ["ca", "cb", "cc"]
    # Nothing was overwritten, so nothing goes to the conflict log.
    assert not conflicts(vid)


def test_a_full_participants_list_is_still_last_writer_wins(client, cadres):
    """Why joining has its own field: a stale full list drops a concurrent addition (and
    the conflict log keeps what was overwritten)."""
    a, b, c = (signed_in(client, n) for n in ("ca", "cb", "cc"))
    vid, version = recorded_visit(a)
    b.push(
        [b.mutation("update", "visit", vid, {"participants": ["ca", "cb"]}, base_version=version)]
    )
    c.push(
        [c.mutation("update", "visit", vid, {"participants": ["ca", "cc"]}, base_version=version)]
    )
    assert participants(a, vid) == ["ca", "cc"]
    assert [(x.field, x.kind) for x in conflicts(vid)] == [("participants", "overwritten")]


def test_joins_pushed_at_the_same_moment_both_survive(app, cadres):
    """Two phones push their joins at once (two threads, two connections): the visit's
    row lock (PostgreSQL) or the write lock (SQLite) orders them and the second adds to
    what the first wrote."""
    client = app.test_client()
    a = signed_in(client, "ca")
    vid, version = recorded_visit(a)
    joiners = [signed_in(app.test_client(), n) for n in ("cb", "cc")]
    barrier = threading.Barrier(len(joiners))
    answers: dict[str, object] = {}

    def run(phone: Phone) -> None:
        mutation = phone.mutation(
            "update", "visit", vid, {"participants_add": [phone.username]}, base_version=version
        )
        barrier.wait()
        answers[phone.username] = phone.push([mutation])

    threads = [threading.Thread(target=run, args=(p,)) for p in joiners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for name, r in answers.items():
        assert r.status_code == 200, (name, r.json)
        assert r.json["results"][0]["status"] == "applied", (name, r.json)
    assert len(answers) == 2
    assert participants(a, vid) == ["ca", "cb", "cc"]


def test_joining_twice_changes_nothing_and_a_replay_is_a_duplicate(client, cadres):
    a, b = signed_in(client, "ca"), signed_in(client, "cb")
    vid, version = recorded_visit(a)
    mutation = b.mutation(
        "update", "visit", vid, {"participants_add": ["cb"]}, base_version=version
    )
    first = b.push([mutation]).json["results"][0]
    assert b.push([mutation]).json["results"][0]["status"] == "duplicate"
    again = join(b, vid, first["version"]).json["results"][0]
    assert again["status"] == "applied" and again["version"] == first["version"]
    # The author joining their own visit is no change either.
    assert join(a, vid, first["version"]).json["results"][0]["version"] == first["version"]
    assert participants(a, vid) == ["ca", "cb"]


def test_joining_with_an_unknown_user_or_outside_the_scope_is_refused(client, cadres):
    a, b = signed_in(client, "ca"), signed_in(client, "cb")
    create_user("far", "field_cadre", "510105", None)
    far = signed_in(client, "far")
    vid, version = recorded_visit(a)
    r = join(b, vid, version, ["nobody-here"]).json["results"][0]
    assert (r["status"], r["code"], r["field"]) == (
        "rejected",
        "invalid_participant",
        "participants_add",
    )
    r = join(far, vid, version).json["results"][0]
    assert (r["status"], r["code"]) == ("rejected", "forbidden")
    r = b.push(
        [b.mutation("update", "visit", vid, {"participants_add": []}, base_version=version)]
    ).json["results"][0]
    assert (r["status"], r["field"]) == ("rejected", "participants_add")
    assert participants(a, vid) == ["ca"]


def test_join_with_problems_in_one_entry(client, cadres, caplog):
    """The joining cadre's problems raised at the meeting go onto the joined visit, in
    the same entry as the join: all or nothing. (An update and a new problem in one batch
    used to fail the fast path: the version bump flushed the update, and with it the new
    problem's stage change, before the problem's insert; the careful path then stamped a
    version the counter did not have, so pulls missed the records.)"""
    from server.extensions import db
    from server.models import Problem

    a, b = signed_in(client, "ca"), signed_in(client, "cb")
    vid, version = recorded_visit(a)
    pid = new_id()
    batch = [
        b.mutation("update", "visit", vid, {"participants_add": ["cb"]}, base_version=version),
        b.mutation(
            "create", "problem", pid, {"visit_id": vid, "category": "wages", "description": "欠薪"}
        ),
    ]
    for m in batch:
        m["entry"] = vid
    results = b.push(batch).json["results"]
    assert [r["status"] for r in results] == ["applied", "applied"], results
    assert db.session.get(Problem, pid).visit_id == vid
    assert "entry by entry" not in caplog.text
    assert participants(a, vid) == ["ca", "cb"]
    # A refused problem takes the join back with it.
    vid2, version2 = recorded_visit(a)
    batch = [
        b.mutation("update", "visit", vid2, {"participants_add": ["cb"]}, base_version=version2),
        b.mutation("create", "problem", new_id(), {"visit_id": vid2, "category": "nonsense"}),
    ]
    for m in batch:
        m["entry"] = vid2
    results = b.push(batch).json["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected"], results
    assert results[0]["code"] == "entry_rejected"
    assert participants(a, vid2) == ["ca"]


def test_a_joined_visit_counts_once_and_credits_both_cadres(client, cadres):
    """server/counting.py and the evaluation's cadre participation (config/evaluation.json):
    one meeting is one visit; every participant took part."""
    from server.extensions import db
    from server.models import DistrictUnit, Visit
    from worker.briefing.compute import compute_figures, period_containing

    a, b = signed_in(client, "ca"), signed_in(client, "cb")
    vid, version = recorded_visit(a)
    join(b, vid, version)
    district = db.session.scalar(select(DistrictUnit).where(DistrictUnit.code == "510104"))
    period = period_containing("week", WHEN.date(), WHEN.date())
    fig = compute_figures(db.session, period)[district.id]
    assert fig.visits == 1
    assert fig.workers_met == 12  # the joining cadre adds no second count of the workers
    assert (fig.cadres_active, fig.cadres_total) == (2, 3)
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 1
