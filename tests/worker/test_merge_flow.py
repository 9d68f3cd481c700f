"""Dedup through the outbox: synced duplicates merge, statistics count them once, undo works.

Runs on SQLite and PostgreSQL (the `app` fixture is parametrized per backend).
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.conftest import Phone, create_user, visit_fields


def new_id() -> str:
    return str(uuid.uuid4())


def valid_uscc(body17: str = "91510100MA6123456") -> str:
    """A credit code with a correct check character (GB 32100-2015)."""
    charset = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    total = sum(charset.index(c) * pow(3, i, 31) for i, c in enumerate(body17))
    return body17 + charset[(31 - total % 31) % 31]


def drain() -> int:
    import worker.dedup_jobs  # noqa: F401  (registers the handler)
    from server.extensions import db
    from worker.outbox import drain as drain_rows

    return drain_rows(db.session)


@pytest.fixture
def cadres(app):
    return (
        create_user("cadre1", "field_cadre", "510104", "WG01"),
        create_user("cadre2", "field_cadre", "510104", "WG01"),
    )


def push_ok(phone: Phone, mutations: list[dict]) -> dict:
    r = phone.push(mutations)
    assert r.status_code == 200, r.json
    assert all(x["status"] == "applied" for x in r.json["results"]), r.json
    return r.json


def enterprise(phone: Phone, eid: str, name: str, **extra) -> dict:
    fields = {"name": name, "district_code": "510104", **extra}
    return phone.mutation("create", "enterprise", eid, fields)


def test_same_enterprise_from_two_cadres_merges_and_phones_learn_it(client, cadres):
    from server.extensions import db
    from server.models import Enterprise
    from server.models_dedup import MergeLink

    p1, p2 = Phone(client, "cadre1"), Phone(client, "cadre2")
    code = valid_uscc()
    e1, e2, e3 = new_id(), new_id(), new_id()
    push_ok(p1, [enterprise(p1, e1, "成都市华兴机械有限公司", uscc=code)])
    push_ok(
        p2,
        [
            enterprise(p2, e2, "华兴机械（成都）有限责任公司", uscc=code),
            enterprise(p2, e3, "蓝天食品有限公司"),
        ],
    )
    _, cursor = p1.pull_all()
    assert drain() == 2

    first, second = db.session.get(Enterprise, e1), db.session.get(Enterprise, e2)
    assert first.canonical_id is None and second.canonical_id == e1
    assert db.session.get(Enterprise, e3).canonical_id is None
    link = db.session.scalars(select(MergeLink)).one()
    assert (link.record_id, link.canonical_id, link.rule, link.decided_by) == (
        e2,
        e1,
        "uscc_equal",
        "worker",
    )
    assert link.score == 1.0 and link.features["uscc"] == "equal_valid"
    # The merge is an ORM change with a new version: phones pull it.
    changes, _ = p1.pull_all(cursor)
    assert [(c["id"], c["data"]["canonical_id"]) for c in changes] == [(e2, e1)]
    # The reference list phones search shows the canonical enterprise only.
    names = {e["id"] for e in p1.get("/api/reference").json["enterprises"]}
    assert e1 in names and e2 not in names
    # A second drain or a replayed handler changes nothing.
    assert drain() == 0
    from worker.dedup_jobs import DedupContext, dedup_records

    dedup_records(db.session, DedupContext.from_app(), [["enterprise", e2], ["enterprise", e1]])
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(MergeLink)) == 1


def test_same_visit_by_two_cadres_counts_once(client, cadres):
    from server.extensions import db
    from server.models import Visit

    p1, p2 = Phone(client, "cadre1"), Phone(client, "cadre2")
    eid = new_id()
    push_ok(p1, [enterprise(p1, eid, "成都蓝天纺织有限公司")])
    v1, v2, v3 = new_id(), new_id(), new_id()
    base = {"work_group_code": "WG01", "enterprise_id": eid, "method": "symposium"}
    push_ok(
        p1,
        [
            p1.mutation(
                "create",
                "visit",
                v1,
                visit_fields(
                    **base,
                    visited_at="2026-03-05T23:30:00+08:00",
                    workers_met=30,
                    workers_by_group={"migrant": 10},
                ),
            )
        ],
    )
    # Another cadre, within DEDUP_VISIT_WINDOW_MINUTES (the window crosses midnight).
    push_ok(
        p2,
        [
            p2.mutation(
                "create",
                "visit",
                v2,
                visit_fields(
                    **base,
                    visited_at="2026-03-06T00:30:00+08:00",
                    workers_met=25,
                    workers_by_group={"migrant": 12, "needy": 3},
                ),
            ),
            # Hours later is another visit.
            p2.mutation(
                "create",
                "visit",
                v3,
                visit_fields(**base, visited_at="2026-03-06T09:00:00+08:00", workers_met=8),
            ),
        ],
    )
    before = p1.get("/api/progress").json
    assert before["workers_met"] == 30 + 25 + 8

    drain()
    visit1, visit2 = db.session.get(Visit, v1), db.session.get(Visit, v2)
    assert visit2.canonical_id == v1 and db.session.get(Visit, v3).canonical_id is None
    assert visit1.workers_met == 30  # max, not the sum: they met the same people
    assert visit1.workers_by_group == {"migrant": 12, "needy": 3}
    assert sorted(u.username for u in visit1.participants) == ["cadre1", "cadre2"]
    after = p1.get("/api/progress").json
    assert after["workers_met"] == 30 + 8
    assert after["enterprises_visited"] == 1
    # The duplicate's own report is untouched, and its id keeps resolving.
    r = p2.get(f"/api/visits/{v2}")
    assert r.status_code == 200
    assert r.json["canonical_id"] == v1 and r.json["workers_met"] == 25
    canonical_only = p1.get("/api/visits?canonical=1").json
    assert {v["id"] for v in canonical_only["items"]} == {v1, v3}


def test_enterprise_merge_brings_their_visits_together(client, cadres):
    """Visits to two records of one enterprise become one visit once the enterprises merge."""
    from server.extensions import db
    from server.models import Visit

    p1, p2 = Phone(client, "cadre1"), Phone(client, "cadre2")
    e1, e2, v1, v2 = new_id(), new_id(), new_id(), new_id()
    code = valid_uscc("91510104MA6AB1234")
    push_ok(
        p1,
        [
            enterprise(p1, e1, "锦江红星包装有限公司", uscc=code),
            p1.mutation(
                "create",
                "visit",
                v1,
                visit_fields(work_group_code="WG01", enterprise_id=e1, workers_met=5),
            ),
        ],
    )
    push_ok(
        p2,
        [
            enterprise(p2, e2, "红星包装有限公司", uscc=code),
            p2.mutation(
                "create",
                "visit",
                v2,
                visit_fields(work_group_code="WG01", enterprise_id=e2, workers_met=9),
            ),
        ],
    )
    drain()
    assert db.session.get(Visit, v2).canonical_id == v1
    assert db.session.get(Visit, v1).workers_met == 9


def test_undo_restores_counts_and_is_never_redone(client, cadres):
    from server.extensions import db
    from server.models import Visit
    from server.models_dedup import MergeLink, ReviewCandidate
    from worker.dedup_jobs import DedupContext, full_pass
    from worker.merges import undo_merge

    coordinator = create_user("coord", "city_coordinator")
    p1, p2 = Phone(client, "cadre1"), Phone(client, "cadre2")
    eid, v1, v2 = new_id(), new_id(), new_id()
    push_ok(
        p1,
        [
            enterprise(p1, eid, "成都蓝天纺织有限公司"),
            p1.mutation(
                "create",
                "visit",
                v1,
                visit_fields(work_group_code="WG01", enterprise_id=eid, workers_met=10),
            ),
        ],
    )
    push_ok(
        p2,
        [
            p2.mutation(
                "create",
                "visit",
                v2,
                visit_fields(work_group_code="WG01", enterprise_id=eid, workers_met=40),
            )
        ],
    )
    drain()
    assert db.session.get(Visit, v1).workers_met == 40
    link = db.session.scalars(select(MergeLink)).one()
    _, cursor = p1.pull_all()

    undo_merge(db.session, link.id, user=coordinator, reason="two meetings that day")
    db.session.commit()
    assert db.session.get(Visit, v2).canonical_id is None
    assert db.session.get(Visit, v1).workers_met == 10
    assert [u.username for u in db.session.get(Visit, v1).participants] == ["cadre1"]
    link = db.session.get(MergeLink, link.id)
    assert link.status == "undone" and link.undone_by_id == coordinator.id
    rejected = db.session.scalars(select(ReviewCandidate)).one()
    assert rejected.status == "rejected"
    changes, _ = p1.pull_all(cursor)
    assert {c["id"]: c["data"]["canonical_id"] for c in changes} == {v1: None, v2: None}

    # Neither the next sync of the record nor the nightly pass merges it again.
    push_ok(p2, [p2.mutation("update", "visit", v2, {"notes": "补记"})])
    drain()
    full_pass(db.session, DedupContext.from_app())
    assert db.session.get(Visit, v2).canonical_id is None
    assert db.session.scalar(select(func.count()).select_from(MergeLink)) == 1


def test_chain_is_flattened_and_undo_puts_it_back(app, cadres):
    from server.extensions import db
    from server.models import DistrictUnit, Enterprise
    from server.models_dedup import MergeLink
    from worker.merges import merge, undo_merge

    district = db.session.scalar(select(DistrictUnit).where(DistrictUnit.code == "510104"))
    a, b, c = (
        Enterprise(id=new_id(), name=n, district_id=district.id)
        for n in ("甲公司", "乙公司", "丙公司")
    )
    db.session.add_all([a, b, c])
    db.session.commit()
    ab = merge(db.session, "enterprise", a.id, b.id, rule="test")
    db.session.commit()
    bc = merge(db.session, "enterprise", b.id, c.id, rule="test")
    db.session.commit()
    assert (a.canonical_id, b.canonical_id) == (c.id, c.id)
    assert db.session.get(MergeLink, ab.id).status == "superseded"
    chain = db.session.scalars(select(MergeLink).where(MergeLink.parent_id == bc.id)).one()
    assert (chain.record_id, chain.canonical_id, chain.rule) == (a.id, c.id, "chain")
    # Merging a member again resolves to its root: no second link.
    assert merge(db.session, "enterprise", a.id, c.id, rule="test") is None

    undo_merge(db.session, bc.id, remember=False)
    db.session.commit()
    assert (a.canonical_id, b.canonical_id) == (b.id, None)
    assert db.session.get(MergeLink, ab.id).status == "active"
    assert db.session.get(MergeLink, chain.id).status == "undone"


def test_one_active_merge_per_record_is_enforced_by_the_database(app, cadres):
    from sqlalchemy.exc import IntegrityError

    from server.extensions import db
    from server.models_dedup import MergeLink

    rid = new_id()
    db.session.add(
        MergeLink(
            entity="visit",
            record_id=rid,
            canonical_id=new_id(),
            rule="x",
            decided_by="worker",
            features={},
        )
    )
    db.session.commit()
    db.session.add(
        MergeLink(
            entity="visit",
            record_id=rid,
            canonical_id=new_id(),
            rule="x",
            decided_by="worker",
            features={},
        )
    )
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_home_visits_with_one_id_number_go_to_review_never_merge(client, cadres):
    from server.extensions import db
    from server.models import HomeVisit
    from server.models_dedup import MergeLink, ReviewCandidate
    from worker.merges import decide

    coordinator = create_user("coord", "city_coordinator")
    p1, p2 = Phone(client, "cadre1"), Phone(client, "cadre2")
    h1, h2, h3 = new_id(), new_id(), new_id()
    person = {
        "district_code": "510104",
        "visited_at": "2026-03-05T15:00:00+08:00",
        "id_number": "11010519491231002X",
        "amount_cents": 50000,
    }
    push_ok(p1, [p1.mutation("create", "home_visit", h1, {**person, "worker_name": "王小梅"})])
    push_ok(
        p2,
        [
            p2.mutation("create", "home_visit", h2, {**person, "worker_name": "王晓梅"}),
            p2.mutation(
                "create",
                "home_visit",
                h3,
                {
                    "district_code": "510104",
                    "visited_at": "2026-03-05T16:00:00+08:00",
                    "worker_name": "李强",
                    "phone": "13800138000",
                },
            ),
        ],
    )
    drain()
    assert db.session.scalar(select(func.count()).select_from(MergeLink)) == 0
    row = db.session.scalars(select(ReviewCandidate)).one()
    assert (row.entity, row.rule, row.score, row.status) == (
        "home_visit",
        "id_hash_equal",
        1.0,
        "pending",
    )
    assert {row.a_id, row.b_id} == {h1, h2}

    decide(db.session, row.id, "accept", coordinator)
    db.session.commit()
    assert db.session.get(HomeVisit, h2).canonical_id == h1
    link = db.session.scalars(select(MergeLink)).one()
    assert link.decided_by == "coord" and link.review_id == row.id


def test_uncertain_enterprises_go_to_review_and_a_rejection_sticks(client, cadres):
    from server.extensions import db
    from server.models import Enterprise
    from server.models_dedup import ReviewCandidate
    from worker.dedup_jobs import DedupContext, full_pass
    from worker.merges import decide

    coordinator = create_user("coord", "city_coordinator")
    p1 = Phone(client, "cadre1")
    e1, e2 = new_id(), new_id()
    # Same trade name, one naming no industry: the engine may not merge these unseen.
    push_ok(
        p1,
        [
            enterprise(p1, e1, "成都庆源实业有限公司"),
            enterprise(p1, e2, "庆源劳务有限公司", address="锦江区东大街1号"),
        ],
    )
    drain()
    rows = db.session.scalars(select(ReviewCandidate)).all()
    assert len(rows) == 1 and rows[0].status == "pending", [r.rule for r in rows]
    decide(db.session, rows[0].id, "reject", coordinator, note="两家公司")
    db.session.commit()
    full_pass(db.session, DedupContext.from_app())
    rows = db.session.scalars(select(ReviewCandidate)).all()
    assert [r.status for r in rows] == ["rejected"]
    assert db.session.get(Enterprise, e2).canonical_id is None


def test_deleting_a_canonical_visit_hands_its_duplicates_on(client, cadres):
    from server.extensions import db
    from server.models import Visit

    p1, p2 = Phone(client, "cadre1"), Phone(client, "cadre2")
    create_user("cadre3", "field_cadre", "510104", "WG01")
    p3 = Phone(client, "cadre3")
    eid, v1, v2, v3 = new_id(), new_id(), new_id(), new_id()
    push_ok(
        p1,
        [
            enterprise(p1, eid, "成都蓝天纺织有限公司"),
            p1.mutation(
                "create",
                "visit",
                v1,
                visit_fields(work_group_code="WG01", enterprise_id=eid, workers_met=10),
            ),
        ],
    )
    for phone, vid, met in ((p2, v2, 20), (p3, v3, 15)):
        push_ok(
            phone,
            [
                phone.mutation(
                    "create",
                    "visit",
                    vid,
                    visit_fields(work_group_code="WG01", enterprise_id=eid, workers_met=met),
                )
            ],
        )
    drain()
    assert {db.session.get(Visit, v).canonical_id for v in (v2, v3)} == {v1}
    push_ok(p1, [p1.mutation("delete", "visit", v1)])
    drain()
    assert db.session.get(Visit, v2).canonical_id is None
    assert db.session.get(Visit, v3).canonical_id == v2
    assert db.session.get(Visit, v2).workers_met == 20
    assert p1.get("/api/progress").json["workers_met"] == 20
