"""A cadre's "another meeting" answer to the phone's duplicate-visit warning keeps two
visits apart for good (sync/records.py keep_apart): without it the dedup workers merge
them as one meeting. On SQLite and PostgreSQL (the `app` fixture is per backend)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tests.conftest import Phone, create_user, visit_fields

AT = "2026-03-05T10:20:00+08:00"
AT_LATER = "2026-03-05T10:50:00+08:00"


def _drain() -> None:
    import worker.dedup_jobs  # noqa: F401  (registers the handler)
    from server.extensions import db
    from worker.outbox import drain

    drain(db.session)


def _ok(phone: Phone, mutations: list[dict]) -> None:
    r = phone.push(mutations)
    assert r.status_code == 200, r.json
    assert all(x["status"] == "applied" for x in r.json["results"]), r.json


@pytest.fixture
def setting(client):
    for name in ("kaA", "kaB"):
        create_user(name, "field_cadre", "510104", "WG01")
    a, b = Phone(client, "kaA"), Phone(client, "kaB")
    eid = str(uuid.uuid4())
    _ok(
        a,
        [
            a.mutation(
                "create",
                "enterprise",
                eid,
                {"name": "成都青禾纺织有限公司", "district_code": "510104"},
            )
        ],
    )
    return a, b, eid


def _visit(phone: Phone, eid: str, at: str, **extra) -> str:
    vid = str(uuid.uuid4())
    fields = visit_fields(work_group_code="WG01", enterprise_id=eid, visited_at=at, **extra)
    _ok(phone, [phone.mutation("create", "visit", vid, fields)])
    return vid


def _canonical(vid: str) -> str | None:
    from server.extensions import db
    from server.models import Visit

    db.session.expire_all()
    return db.session.get(Visit, vid).canonical_id


def test_without_the_answer_the_two_records_are_one_meeting(setting):
    a, b, eid = setting
    first = _visit(a, eid, AT)
    second = _visit(b, eid, AT_LATER)
    _drain()
    assert {_canonical(first), _canonical(second)} - {None} in ({first}, {second})


def test_another_meeting_is_never_merged(setting):
    from server.extensions import db
    from server.models_dedup import ReviewCandidate

    a, b, eid = setting
    first = _visit(a, eid, AT)
    second = _visit(b, eid, AT_LATER, separate_from=[first, first, str(uuid.uuid4())])
    _drain()
    assert _canonical(first) is None and _canonical(second) is None
    rows = db.session.scalars(select(ReviewCandidate).where(ReviewCandidate.entity == "visit"))
    pairs = [(r.a_id, r.b_id, r.status, r.rule) for r in rows]
    assert pairs == [(*sorted((first, second)), "rejected", "cadre_separate")], pairs
    # a later edit of either does not bring them together either
    _ok(b, [b.mutation("update", "visit", second, {"notes": "补记"})])
    _drain()
    assert _canonical(first) is None and _canonical(second) is None


def test_an_id_outside_the_cadres_scope_is_ignored_alike(client, setting):
    from server.extensions import db
    from server.models_dedup import ReviewCandidate

    a, _, eid = setting
    create_user("kaC", "field_cadre", "510105")
    c = Phone(client, "kaC")
    elsewhere = str(uuid.uuid4())
    _ok(c, [c.mutation("create", "visit", elsewhere, visit_fields("510105"))])
    mine = _visit(a, eid, AT, separate_from=[elsewhere])
    assert mine
    assert db.session.scalar(select(ReviewCandidate.id)) is None
