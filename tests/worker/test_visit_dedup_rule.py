"""Which visits are one (docs/dedup.md, "Visits"): records of one meeting by different
cadres within DEDUP_VISIT_WINDOW_MINUTES merge; one cadre's two entries only when their
content is the same. Both sides of each rule, on SQLite and PostgreSQL (the `app`
fixture is parametrized per backend).
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tests.conftest import Phone, create_user, visit_fields


def new_id() -> str:
    return str(uuid.uuid4())


def drain() -> int:
    import worker.dedup_jobs  # noqa: F401  (registers the handler)
    from server.extensions import db
    from worker.outbox import drain as drain_rows

    return drain_rows(db.session)


@pytest.fixture
def phones(client):
    for name in ("cadre1", "cadre2", "cadre3"):
        create_user(name, "field_cadre", "510104", "WG01")
    return [Phone(client, n) for n in ("cadre1", "cadre2", "cadre3")]


@pytest.fixture
def enterprise_id(phones):
    eid = new_id()
    p = phones[0]
    push_ok(
        p,
        [
            p.mutation(
                "create",
                "enterprise",
                eid,
                {"name": "成都蓝天纺织有限公司", "district_code": "510104"},
            )
        ],
    )
    return eid


def push_ok(phone: Phone, mutations: list[dict]) -> None:
    r = phone.push(mutations)
    assert r.status_code == 200, r.json
    assert all(x["status"] == "applied" for x in r.json["results"]), r.json


def record(phone: Phone, eid: str, at: str, **fields) -> str:
    vid = new_id()
    base = {"work_group_code": "WG01", "enterprise_id": eid, "visited_at": at}
    push_ok(phone, [phone.mutation("create", "visit", vid, visit_fields(**{**base, **fields}))])
    return vid


def canonical(vid: str) -> str | None:
    from server.extensions import db
    from server.models import Visit

    db.session.expire_all()
    return db.session.get(Visit, vid).canonical_id


def rule_of(vid: str) -> str:
    from server.extensions import db
    from server.models_dedup import MergeLink

    return db.session.scalars(
        select(MergeLink.rule).where(MergeLink.record_id == vid, MergeLink.status == "active")
    ).one()


def test_different_cadres_within_the_window_are_one_meeting(phones, enterprise_id):
    p1, p2, _ = phones
    v1 = record(p1, enterprise_id, "2026-03-05T09:00:00+08:00", workers_met=30)
    v2 = record(p2, enterprise_id, "2026-03-05T10:45:00+08:00", workers_met=25, notes="另记")
    drain()
    assert canonical(v2) == v1 and canonical(v1) is None
    assert rule_of(v2) == "same_meeting_other_cadre"
    # The window crosses midnight: 23:30 and 00:40 the next day are one meeting.
    v3 = record(p1, enterprise_id, "2026-03-07T23:30:00+08:00")
    v4 = record(p2, enterprise_id, "2026-03-08T00:40:00+08:00")
    drain()
    assert canonical(v4) == v3


def test_different_cadres_outside_the_window_are_two_meetings(phones, enterprise_id):
    p1, p2, _ = phones
    # Managers in the morning, workers in the afternoon, recorded by two cadres.
    v1 = record(p1, enterprise_id, "2026-03-05T09:00:00+08:00")
    v2 = record(p2, enterprise_id, "2026-03-05T11:01:00+08:00")
    # Within the window but another method, or another enterprise: other events.
    v3 = record(p2, enterprise_id, "2026-03-05T09:10:00+08:00", method="interview")
    drain()
    assert canonical(v1) is None and canonical(v2) is None and canonical(v3) is None


def test_one_cadre_entering_the_same_content_twice_is_one_visit(phones, enterprise_id):
    p1, _, _ = phones
    at = "2026-03-05T09:00:00+08:00"
    common = {"workers_met": 30, "workers_by_group": {"migrant": 10}, "materials": 5}
    v1 = record(p1, enterprise_id, at, notes="职工反映 加班费问题。", **common)
    # The same notes after normalisation: spaces, punctuation and full width do not count.
    v2 = record(p1, enterprise_id, at, notes="职工反映加班费问题", **common)
    v3 = record(
        p1, enterprise_id, "2026-03-05T09:00:40+08:00", notes="职工反映，加班费问题！", **common
    )
    drain()
    assert canonical(v2) == v1 and canonical(v3) == v1
    assert rule_of(v2) == "same_entry_same_cadre"


@pytest.mark.parametrize(
    "change",
    [
        {"visited_at": "2026-03-05T14:30:00+08:00"},  # the afternoon symposium
        {"workers_met": 31},
        {"workers_by_group": {"migrant": 11}},
        {"materials": 6},
        {"notes": "职工反映工资拖欠问题"},
    ],
)
def test_one_cadre_with_other_content_is_two_visits(phones, enterprise_id, change):
    p1, _, _ = phones
    base = {
        "workers_met": 30,
        "workers_by_group": {"migrant": 10},
        "materials": 5,
        "notes": "职工反映加班费问题",
    }
    v1 = record(p1, enterprise_id, "2026-03-05T09:00:00+08:00", **base)
    fields = {"visited_at": "2026-03-05T09:00:00+08:00", **base, **change}
    v2 = record(p1, enterprise_id, fields.pop("visited_at"), **fields)
    drain()
    assert canonical(v1) is None and canonical(v2) is None


def test_a_second_cadre_does_not_join_one_cadres_two_visits(phones, enterprise_id):
    """cadre1's 09:00 and 10:00 symposiums are two visits; cadre2's record at 09:30 is
    one of them (the nearer), never the bridge that makes them one."""
    p1, p2, _ = phones
    v1 = record(p1, enterprise_id, "2026-03-05T09:00:00+08:00", workers_met=10)
    v2 = record(p1, enterprise_id, "2026-03-05T10:00:00+08:00", workers_met=20)
    v3 = record(p2, enterprise_id, "2026-03-05T09:20:00+08:00", workers_met=12)
    drain()
    assert canonical(v1) is None and canonical(v2) is None
    assert canonical(v3) == v1
    # The nightly pass keeps it so.
    from server.extensions import db
    from worker.dedup_jobs import DedupContext, full_pass

    full_pass(db.session, DedupContext.from_app())
    assert canonical(v1) is None and canonical(v2) is None and canonical(v3) == v1


def test_the_window_is_a_setting(app, phones, enterprise_id):
    from config.settings import load_settings
    from server.extensions import db
    from worker.dedup_jobs import DedupContext, dedup_records

    assert DedupContext.from_app().visit_window.total_seconds() == 120 * 60
    ctx = DedupContext.from_settings(load_settings({"DEDUP_VISIT_WINDOW_MINUTES": "30"}))
    assert ctx.visit_window.total_seconds() == 30 * 60
    p1, p2, p3 = phones
    v1 = record(p1, enterprise_id, "2026-03-05T09:00:00+08:00")
    v2 = record(p2, enterprise_id, "2026-03-05T09:45:00+08:00")
    dedup_records(db.session, ctx, [["visit", v1], ["visit", v2]])
    db.session.commit()
    assert canonical(v2) is None  # 45 minutes apart: two meetings in a 30-minute window
    v3 = record(p3, enterprise_id, "2026-03-05T09:25:00+08:00")
    dedup_records(db.session, ctx, [["visit", v3]])
    db.session.commit()
    # 20 minutes from v2, 25 from v1: one meeting with the nearer; never a bridge that
    # makes records 45 minutes apart one meeting.
    assert canonical(v3) == v2 and canonical(v1) is None and canonical(v2) is None
    with pytest.raises(Exception, match="DEDUP_VISIT_WINDOW_MINUTES"):
        load_settings({"DEDUP_VISIT_WINDOW_MINUTES": "0"})
