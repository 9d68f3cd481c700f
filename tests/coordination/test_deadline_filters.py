"""The 督办 colours follow the coordination filters (issue 16): the dashboard's column
counts the open problems of the filtered visits (period, work group, enterprise tags,
scope) by their colour on the period's last day, and the problem tracker selects by
every colour (red, yellow, blue, none) — each compared with an independent recount
over the test's own records, using server/deadlines.state (the one rule), on both
backends. The SQL form of the rule (deadlines.colour_condition) is pinned against
`state` per problem across the Beijing day boundaries."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from server import deadlines
from tests.conftest import create_user
from tests.coordination.conftest import web_login

TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class Made:
    id: str
    district: str
    group: str | None
    tags: tuple[str, ...]
    visited_at: datetime
    stage: str
    due: date | None
    started: datetime | None
    progress: datetime | None
    counted: bool  # live, its visit not deleted


def _new() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def made(app, db_session) -> list[Made]:
    """60 problems over two districts, two work groups and three enterprises, raised
    over 60 days, with clocks started so that every colour occurs; a deleted visit's
    problem and a merged problem that must never count."""
    from server.models import DistrictUnit, Enterprise, Problem, Visit, WorkGroup

    rnd = random.Random(16)
    rules = deadlines.current_rules()
    ids = dict(db_session.execute(select(DistrictUnit.code, DistrictUnit.id)).all())
    groups = dict(db_session.execute(select(WorkGroup.code, WorkGroup.id)).all())
    ents = {}
    for key, district, types, focus in (
        ("sme", "510104", ["sme"], []),
        ("np", "510104", ["non_public", "labour_intensive"], ["many_needy"]),
        ("b", "510105", ["sme"], ["weak_union"]),
    ):
        e = Enterprise(
            id=_new(), name=f"成都测试{key}有限公司", district_id=ids[district], type_tags=types,
            focus_tags=focus,
        )  # fmt: skip
        db_session.add(e)
        ents[key] = (e.id, tuple(types + focus))
    now = datetime.now(UTC)
    out = []
    for i in range(60):
        district = "510104" if i % 3 else "510105"
        group = rnd.choice(["WG01", "WG03", None]) if district == "510104" else "WG02"
        ent = rnd.choice(["sme", "np", None]) if district == "510104" else rnd.choice(["b", None])
        visited = now - timedelta(days=rnd.randint(0, 59), hours=rnd.randint(0, 23))
        v = Visit(
            id=_new(), method="symposium", visited_at=visited, district_id=ids[district],
            work_group_id=groups[group] if group else None,
            enterprise_id=ents[ent][0] if ent else None, workers_met=5,
            deleted=i == 7,  # a deleted visit: its problem never counts
        )  # fmt: skip
        db_session.add(v)
        stage = rnd.choice(["enterprise", "enterprise", "government", "source", "resolved"])
        p = Problem(
            id=_new(), visit_id=v.id, category=rnd.choice(["wages", "safety", "housing"]),
            tag=rnd.choice([None, "urgent", "hope"]), stage=stage,
            description="（测试）职工反映的问题", district_id=ids[district],
        )  # fmt: skip
        if i == 11:
            p.canonical_id = out[0].id  # merged into another: counts through that one
        started = now - timedelta(days=rnd.randint(0, 40), hours=rnd.randint(0, 23))
        deadlines.start_clock(p, stage, started, rules, v.work_group_id)
        if rnd.random() < 0.3 and stage != "resolved":
            p.progress_at = started + timedelta(hours=rnd.randint(1, 200))
        db_session.add(p)
        out.append(
            Made(
                p.id,
                district,
                group,
                ents[ent][1] if ent else (),
                visited,
                stage,
                p.due_date,
                p.stage_started_at,
                p.progress_at,
                i not in (7, 11),
            )  # fmt: skip
        )
    db_session.commit()
    return out


def _recount(
    made: list[Made],
    rules: deadlines.DeadlineRules,
    date_to: date,
    group: str | None = None,
    tags: tuple[str, ...] = (),
    scope: set[str] | None = None,
) -> dict[str, dict[str, int]]:
    end = datetime.combine(date_to + timedelta(days=1), time(), TZ)
    on = min(date_to, datetime.now(TZ).date())
    out = {d: dict.fromkeys(deadlines.COLOURS, 0) for d in ("510104", "510105")}
    for m in made:
        if not m.counted or m.stage not in deadlines.STAGE_OWNER or m.visited_at >= end:
            continue
        if (scope and m.district not in scope) or (group and m.group != group):
            continue
        if tags and not set(tags) & set(m.tags):
            continue
        colour = deadlines.state(m.stage, m.due, m.started, m.progress, on, rules).colour
        if colour:
            out[m.district][colour] += 1
    return out


def _dashboard(web, **args) -> dict[str, dict[str, int]]:
    r = web.get("/api/dashboard", query_string=args)
    assert r.status_code == 200, r.json
    return {
        row["code"]: {c: row[f"deadline_{c}"] for c in deadlines.COLOURS}
        for row in r.json["rows"]
        if row["code"] in ("510104", "510105")
    }


def test_dashboard_deadline_column_follows_the_filters(app, client, made):
    rules = deadlines.current_rules()
    create_user("coord", "city_coordinator")
    web_login(client, "coord")
    today = datetime.now(TZ).date()
    start = (today - timedelta(days=90)).isoformat()
    every = _recount(made, rules, today)
    assert sum(sum(c.values()) for c in every.values()) > 10
    assert all(sum(every[d][c] for d in every) for c in deadlines.COLOURS)  # each occurs
    assert _dashboard(client, **{"from": start}) == every
    combos = [
        {"group": "WG01"},
        {"group": "WG03"},
        {"tag": "sme"},
        {"tag": "many_needy"},
        {"tag": "weak_union"},
        {"group": "WG01", "tag": "non_public"},
    ]
    seen_different = False
    for combo in combos:
        want = _recount(
            made, rules, today, combo.get("group"), (combo["tag"],) if "tag" in combo else ()
        )
        got = _dashboard(client, **{"from": start, **combo})
        assert got == want, combo
        seen_different |= want != every
    assert seen_different  # the filters do narrow the column
    # A past period: problems raised by its end, coloured as on its last day.
    past = today - timedelta(days=20)
    want = _recount(made, rules, past)
    assert want != every
    assert _dashboard(client, **{"from": start, "to": past.isoformat()}) == want
    want = _recount(made, rules, past, "WG01")
    assert _dashboard(client, **{"from": start, "to": past.isoformat(), "group": "WG01"}) == want


def test_dashboard_deadline_column_follows_a_district_heads_scope(app, client, made):
    rules = deadlines.current_rules()
    create_user("head_b", "district_head", "510105")
    web_login(client, "head_b")
    today = datetime.now(TZ).date()
    got = _dashboard(client, **{"from": (today - timedelta(days=90)).isoformat()})
    assert got == {"510105": _recount(made, rules, today, scope={"510105"})["510105"]}
    page = client.get("/dashboard", query_string={"from": (today - timedelta(days=90)).isoformat()})
    want = _recount(made, rules, today, scope={"510105"})["510105"]
    assert f'data-deadlines="510105:{want["red"]}/{want["yellow"]}/{want["blue"]}"' in page.text


def test_problem_tracker_filters_by_every_colour(app, client, made):
    rules = deadlines.current_rules()
    create_user("coord", "city_coordinator")
    web_login(client, "coord")
    today = datetime.now(TZ).date()
    seen = set()
    for colour in ("red", "yellow", "blue", "none"):
        want = sorted(
            m.id
            for m in made
            if m.counted
            and m.stage in deadlines.STAGE_OWNER
            and (
                deadlines.state(m.stage, m.due, m.started, m.progress, today, rules).colour
                or "none"
            )
            == colour
        )
        r = client.get("/api/problem-tracker", query_string={"colour": colour, "per_page": 200})
        assert r.status_code == 200
        got = sorted(i["id"] for i in r.json["items"])
        assert got == want and r.json["total"] == len(want), colour
        assert all((i["deadline"]["colour"] or "none") == colour for i in r.json["items"])
        seen |= set(got)
        if colour != "none":
            assert want, f"the fixture has no {colour} problem"
        page = client.get("/problems", query_string={"colour": colour}).text
        assert f'<option value="{colour}" selected' in page
    # colours combine with the other filters (here: a district)
    r = client.get("/api/problem-tracker", query_string={"colour": "red", "district": "510105"})
    from server.extensions import db
    from server.models import DistrictUnit

    name_b = db.session.scalar(select(DistrictUnit.name).where(DistrictUnit.code == "510105"))
    assert r.json["items"] and {i["district"] for i in r.json["items"]} == {name_b}
    assert client.get("/api/problem-tracker?colour=purple").status_code == 400


def test_colour_condition_agrees_with_state_across_beijing_days(app, db_session):
    """The SQL form of the colours, problem by problem, on days around each boundary."""
    from server.models import DistrictUnit, Problem, Visit

    rules = deadlines.current_rules()
    district = db_session.scalar(select(DistrictUnit.id).where(DistrictUnit.code == "510104"))
    problems = []
    base = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 07:30 on 2 March in Beijing
    for stage, cat, tag, offset_h, progress_h in [
        ("enterprise", "employment", None, 0, None),
        ("enterprise", "employment", None, 0, 30),
        ("enterprise", "wages", "urgent", -8, None),  # 15:30 UTC: still 1 March locally
        ("government", "safety", None, 17, 2),
        ("source", "other", "hope", 0, None),
        ("enterprise", "housing", "urgent", 5, 0),  # progress at the clock's start
        ("resolved", "wages", None, 0, None),
    ]:
        v = Visit(id=_new(), method="interview", visited_at=base, district_id=district)
        p = Problem(
            id=_new(), visit_id=v.id, category=cat, tag=tag, stage=stage,
            description="（测试）", district_id=district,
        )  # fmt: skip
        started = base + timedelta(hours=offset_h)
        deadlines.start_clock(p, stage, started, rules, None)
        if progress_h is not None:
            p.progress_at = started + timedelta(hours=progress_h)
        db_session.add_all([v, p])
        problems.append(p)
    db_session.commit()
    checked = set()
    for day in range(0, 100):
        on = date(2026, 3, 1) + timedelta(days=day)
        for colour in ("red", "yellow", "blue", None):
            sql = set(
                db_session.scalars(
                    select(Problem.id).where(
                        Problem.id.in_([p.id for p in problems]),
                        deadlines.colour_condition(db_session, colour, on, rules),
                    )
                )
            )
            want = {
                p.id
                for p in problems
                if p.stage in deadlines.STAGE_OWNER
                and deadlines.state_of(p, on, rules).colour == colour
            }
            assert sql == want, (on, colour)
            if want:
                checked.add(colour)
    assert checked == {"red", "yellow", "blue", None}
