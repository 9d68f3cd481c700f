"""Fictional demo data: users for every role, enterprises and visits. Idempotent."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.auth import hash_password
from server.identifiers import USCC_CHARSET, uscc_check_char
from server.models import (
    ENTERPRISE_TYPE_TAGS,
    FOCUS_GROUPS,
    PROBLEM_CATEGORIES,
    PROBLEM_TAGS,
    DistrictUnit,
    Enterprise,
    Problem,
    ProblemStageChange,
    Role,
    User,
    Visit,
    WorkGroup,
)

DEMO_PASSWORD = "demo-2012"
_TRADE = [
    "华兴",
    "蜀光",
    "锦程",
    "天府",
    "金盾",
    "宏达",
    "新源",
    "青城",
    "瑞丰",
    "永安",
    "川秀",
    "嘉禾",
    "博远",
    "恒信",
    "美林",
    "长虹桥",
    "龙腾",
    "锦绣",
    "卓越",
    "祥和",
]
_INDUSTRY = [
    "机械制造",
    "食品",
    "电子科技",
    "纺织",
    "物流",
    "建材",
    "医药",
    "酒店管理",
    "印务",
    "汽车配件",
]
_FORMS = ["有限公司", "有限责任公司", "股份有限公司"]
_DEMO_NAMESPACE = uuid.UUID("6f1c8d52-3b7e-4f0a-9a55-2c1e0d9b7a10")


def _uuid(*parts: object) -> str:
    return str(uuid.uuid5(_DEMO_NAMESPACE, "/".join(map(str, parts))))


def _uscc(rng: random.Random, region: str) -> str:
    body = "91" + region + "".join(rng.choice(USCC_CHARSET) for _ in range(9))
    return body + uscc_check_char(body)


class DemoRefused(Exception):
    """Demo data (users with a published password) asked for on a production setup."""


def refuse_in_production(settings: Any, allow_production: bool = False) -> None:
    """Raise DemoRefused on a production configuration unless explicitly allowed: the
    demo accounts (admin, coordinator...) share one published password."""
    if settings.is_production and not allow_production:
        raise DemoRefused(
            "FIELDVISIT_ENV=production: demo data creates accounts with a published "
            "password (admin/demo-2012) and is refused on a production configuration; "
            "pass --allow-production only on a throw-away demo server"
        )


def load_demo(session: Session, visits: int = 60, seed: int = 2012) -> str:
    """Create the demo users and, once, fictional enterprises, visits and problems."""
    if session.scalar(select(User).where(User.username == "demo")) is not None:
        return "already loaded"
    rng = random.Random(seed)
    districts = session.scalars(select(DistrictUnit).order_by(DistrictUnit.code)).all()
    groups = {g.code: g for g in session.scalars(select(WorkGroup))}
    by_code = {d.code: d for d in districts}
    password = hash_password(DEMO_PASSWORD)

    def user(
        username: str, name: str, role: Role, district: str | None = None, group: str | None = None
    ) -> User:
        u = User(
            username=username,
            display_name=name,
            role=role,
            password_hash=password,
            district=by_code.get(district) if district else None,
            work_group=groups.get(group) if group else None,
            email=f"{username}@example.invalid",
        )
        session.add(u)
        return u

    demo = user("demo", "张示例", Role.FIELD_CADRE, "510104", "WG01")
    cadres = [demo, user("demo2", "李示例", Role.FIELD_CADRE, "510104", "WG01")]
    user("leader", "王组长", Role.GROUP_LEADER, None, "WG01")
    user("head_jinjiang", "赵主席", Role.DISTRICT_HEAD, "510104")
    user("coordinator", "综合协调组", Role.COORDINATOR)
    user("supervisor", "督导检查组", Role.SUPERVISOR)
    user("admin", "管理员", Role.ADMIN)
    group_of = {}
    for g in groups.values():
        for d in g.districts:
            group_of[d.code] = g
    for d in districts:
        if d.code != "510104":
            cadres.append(
                user(
                    f"cadre_{d.code}",
                    f"{d.short}干部",
                    Role.FIELD_CADRE,
                    d.code,
                    group_of[d.code].code if d.code in group_of else None,
                )
            )
    session.flush()

    enterprises: dict[str, list[Enterprise]] = {}
    for d in districts:
        for i in range(6):
            name = f"成都{rng.choice(_TRADE)}{rng.choice(_INDUSTRY)}{rng.choice(_FORMS)}"
            e = Enterprise(
                id=_uuid("enterprise", d.code, i),
                name=name,
                district_id=d.id,
                uscc=_uscc(rng, d.code) if rng.random() < 0.6 else None,
                type_tags=sorted(rng.sample(ENTERPRISE_TYPE_TAGS, rng.randint(1, 2))),
                focus_tags=[],
                head_count=rng.randint(20, 2000),
                has_union=rng.random() < 0.7,
                address=f"{d.name}示例路{i + 1}号",
                created_by_id=demo.id,
            )
            e.uscc_valid = e.uscc is not None
            session.add(e)
            enterprises.setdefault(d.code, []).append(e)
    session.flush()

    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    for n in range(visits):
        cadre = cadres[n % len(cadres)]
        district = cadre.district
        ent = rng.choice(enterprises[district.code])
        met = rng.randint(3, 30)
        v = Visit(
            id=_uuid("visit", n),
            method=rng.choice(["symposium", "interview", "report", "outreach"]),
            visited_at=start + timedelta(days=rng.randint(0, 80), hours=rng.randint(0, 8)),
            district_id=district.id,
            work_group_id=cadre.work_group_id,
            enterprise_id=ent.id,
            place=rng.choice(["enterprise", "workshop", "team"]),
            workers_met=met,
            workers_by_group={g: rng.randint(0, met // 3) for g in rng.sample(FOCUS_GROUPS, 2)},
            materials=rng.randint(0, 50),
            consultations=rng.randint(0, 5),
            notes="示例记录（虚构数据）",
            created_by_id=cadre.id,
            participants=[cadre],
        )
        session.add(v)
        if rng.random() < 0.5:
            p = Problem(
                id=_uuid("problem", n),
                visit_id=v.id,
                district_id=district.id,
                category=rng.choice(PROBLEM_CATEGORIES),
                tag=rng.choice(PROBLEM_TAGS),
                description="职工反映的示例问题（虚构）",
                stage="enterprise",
                created_by_id=cadre.id,
            )
            p.history.append(ProblemStageChange(to_stage="enterprise", user_id=cadre.id))
            session.add(p)
    session.flush()
    return (
        f"{len(cadres)} cadres, {sum(map(len, enterprises.values()))} enterprises, {visits} visits"
    )
