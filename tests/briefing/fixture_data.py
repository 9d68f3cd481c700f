"""A small fictional district with known counts: the tests compare every briefing figure
against the numbers written down here, not against the code under test."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import select

from server.extensions import db
from server.models import DistrictUnit, Enterprise, HomeVisit, Problem, Visit
from tests.conftest import create_user

A, B = "510104", "510105"  # 锦江区, 青羊区
WEEK = date(2026, 3, 2)  # Monday; the week runs to Sunday 8 March (Asia/Shanghai)

# What the briefing of district A for the week of WEEK must say.
EXPECTED_A = {
    "visits": 6,
    "visits_by_method": {
        "symposium": 2,
        "interview": 1,
        "home_visit": 1,
        "outreach": 1,
        "report": 1,
    },
    "workers_met": 64,
    "enterprises": 4,
    "enterprises_by_type": {
        "sme": 2,
        "non_public": 1,
        "restructured": 1,
        "labour_intensive": 1,
        "difficulty": 0,
    },
    "enterprise_types": 4,
    "cadres_total": 4,
    "cadres_active": 3,
    "focus_groups": {"needy": 4, "laid_off": 0, "migrant": 15, "dispatched": 3},
    "problems_raised": 3,
    "problems_by_category": {"wages": 2, "social_insurance": 1},
    "problems_by_stage": {"enterprise": 1, "resolved": 1, "closed": 1},
    "problems_resolved": 1,
    "problems_open": 2,
    "oldest_open_category": "employment",
    "home_visits": 2,
    "condolence_cents": 80000,
}
EXPECTED_A_PREVIOUS = {"visits": 1, "workers_met": 8, "enterprises": 1}
EXPECTED_B = {"visits": 1, "workers_met": 5, "cadres_total": 1, "cadres_active": 1}
# Sensitive data of needy workers that must never reach an email.
SENSITIVE = [
    "王小明",
    "李四娘",
    "13800001234",
    "13900005678",
    "567X",
    "患病住院",
    "人民南路",
    "510104199001011234",
]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _id() -> str:
    return str(uuid.uuid4())


def seed() -> dict[str, object]:
    """Write the fixture; returns the users and ids the tests refer to."""
    s = db.session
    dist = {d.code: d for d in s.scalars(select(DistrictUnit))}
    a, b = dist[A].id, dist[B].id
    c1 = create_user("c1", "field_cadre", A)
    c2 = create_user("c2", "field_cadre", A)
    c3 = create_user("c3", "field_cadre", A)
    l1 = create_user("l1", "group_leader", A)
    head = create_user("head_a", "district_head", A)
    head.email = "head@a.example"
    b1 = create_user("b1", "field_cadre", B)
    create_user("gone", "field_cadre", A).active = False  # inactive: not counted at all

    def ent(name: str, tags: list[str], district: int = a, **kw: object) -> str:
        e = Enterprise(id=_id(), name=name, type_tags=tags, district_id=district, **kw)
        s.add(e)
        return e.id

    e1 = ent("星河机械有限公司", ["sme", "non_public"])
    e2 = ent("青松食品有限公司", ["sme"])
    e3 = ent("东风印务股份有限公司", ["restructured"])
    e3dup = ent("东风印务股份公司", ["difficulty"], canonical_id=e3)
    e4 = ent("远航物流有限公司", ["labour_intensive"])
    e5 = ent("已删除企业", ["difficulty"], deleted=True)
    s.flush()

    def visit(
        method: str,
        at: str,
        workers: int,
        who: list,
        enterprise: str | None = None,
        groups: dict | None = None,
        district: int = a,
        **kw: object,
    ) -> str:
        v = Visit(
            id=_id(),
            method=method,
            visited_at=_at(at),
            workers_met=workers,
            enterprise_id=enterprise,
            workers_by_group=groups or {},
            district_id=district,
            **kw,
        )
        v.participants = who
        s.add(v)
        return v.id

    v1 = visit(
        "symposium", "2026-03-02T10:00:00+08:00", 12, [c1, c2, b1], e1, {"needy": 2, "migrant": 5}
    )
    v2 = visit("interview", "2026-03-03T09:00:00+08:00", 1, [c1], e2, {"needy": 1})
    v3 = visit("home_visit", "2026-03-04T15:00:00+08:00", 1, [head], None, {"needy": 1})
    visit(
        "symposium", "2026-03-05T10:00:00+08:00", 20, [l1], e3dup, {"migrant": 10, "dispatched": 3}
    )
    visit("outreach", "2026-03-06T10:00:00+08:00", 30, [c1], e3)
    visit("symposium", "2026-03-06T11:00:00+08:00", 99, [c3], e5, canonical_id=v1)  # merged
    visit("interview", "2026-03-07T11:00:00+08:00", 50, [c3], e5, deleted=True)
    visit("report", "2026-03-08T23:30:00+08:00", 0, [c2], e4)  # Sunday night, local time
    visit("symposium", "2026-03-09T00:30:00+08:00", 7, [c3], e1)  # next week already
    v10 = visit("symposium", "2026-02-25T10:00:00+08:00", 8, [c1], e1)  # previous week
    visit("symposium", "2026-03-04T10:00:00+08:00", 5, [b1], None, district=b)
    s.flush()

    def problem(visit_id: str, category: str, stage: str, **kw: object) -> None:
        s.add(
            Problem(
                id=_id(),
                visit_id=visit_id,
                category=category,
                stage=stage,
                description="车间夜班工资按时发放问题（王小明反映）",
                district_id=a,
                **kw,
            )
        )

    problem(v1, "wages", "enterprise")
    problem(v2, "social_insurance", "resolved", resolved_at=_at("2026-03-04T12:00:00+08:00"))
    problem(v10, "employment", "government")
    problem(v1, "housing", "enterprise", canonical_id=v1)
    problem(v1, "wages", "closed")

    for name, phone, cents, kw in (
        ("王小明", "13800001234", 50000, {}),
        ("李四娘", "13900005678", 30000, {}),
        ("赵大", "13700000000", 99999, {"deleted": True}),
    ):
        s.add(
            HomeVisit(
                id=_id(),
                visit_id=v3,
                visited_at=_at("2026-03-04T15:00:00+08:00"),
                worker_name=name,
                phone=phone,
                id_last4="567X",
                hardship="患病住院",
                notes="住人民南路",
                amount_cents=cents,
                district_id=a,
                **kw,
            )
        )
    s.commit()
    return {"head": head, "c1": c1, "a": a, "b": b}
