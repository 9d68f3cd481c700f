"""Deadlines per ladder stage and the three colours (server/deadlines.py): settings,
Asia/Shanghai day boundaries, clocks started by the sync ingest, resolution rules, and
the colours on the API, the tracker, the dashboard and the briefings — on both backends."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from config.settings import SettingsError, load_settings
from server import deadlines
from tests.conftest import Phone, create_user, visit_fields


def _rules(**overrides) -> deadlines.DeadlineRules:
    return deadlines.DeadlineRules.from_settings(load_settings(env={}, **overrides))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_handling_days_per_stage_category_and_tag():
    r = _rules()
    assert [r.handling_days(s, "employment", None) for s in deadlines.STAGE_OWNER] == [15, 30, 90]
    assert r.handling_days("enterprise", "wages", None) == 10  # the category's
    assert r.handling_days("enterprise", "employment", "urgent") == 5  # 最急 shorter
    assert r.handling_days("enterprise", "wages", "urgent") == 5  # the shorter of both
    assert r.handling_days("government", "safety", "urgent") == 10
    assert r.handling_days("source", "safety", "hope") == 90
    slow_tag = _rules(DEADLINE_DAYS_BY_TAG="urgent.enterprise=12")
    assert slow_tag.handling_days("enterprise", "wages", "urgent") == 10  # never slower
    for name, bad in (
        ("DEADLINE_DAYS", "enterprise=15,government=30"),
        ("DEADLINE_DAYS", "enterprise=0,government=30,source=90"),
        ("DEADLINE_DAYS_BY_CATEGORY", "salary.enterprise=3"),
        ("DEADLINE_DAYS_BY_TAG", "urgent.resolved=3"),
        ("DEADLINE_BEHIND_SHARE", 1.5),
    ):
        with pytest.raises(SettingsError, match=name):
            load_settings(env={}, **{name: bad})


class _P:
    """The columns start_clock sets, on a plain object (no database needed)."""

    def __init__(self, category: str = "employment", tag: str | None = None):
        self.category, self.tag = category, tag
        self.stage_started_at = self.due_date = self.owner_level = None
        self.owner_work_group_id = self.progress_at = None
        self.stage = "enterprise"


def test_due_dates_and_colours_at_beijing_day_boundaries():
    r = _rules()
    # 07:30 Beijing on 2 March is 23:30 UTC on 1 March: the clock starts on local 2 March.
    p = _P()
    deadlines.start_clock(p, "enterprise", at("2026-03-01T23:30:00+00:00"), r, 7)
    assert p.due_date == date(2026, 3, 17) and p.owner_level == "work_group"
    assert p.owner_work_group_id == 7

    def colour(now: str, progress: str | None = None) -> str | None:
        p.progress_at = at(progress) if progress else None
        on = deadlines.today(at(now), r.tz)
        return deadlines.state_of(p, on, r).colour

    # Red from 00:00 Beijing on 18 March, although UTC is still 17 March then.
    done = "2026-03-05T10:00:00+08:00"  # a follow-up recorded in the stage
    assert colour("2026-03-17T23:59:59+08:00", progress=done) == "blue"
    assert colour("2026-03-17T23:59:59+08:00") == "yellow"
    assert colour("2026-03-18T00:00:00+08:00", progress=done) == "red"
    assert colour("2026-03-18T00:00:00+08:00") == "red"
    assert deadlines.today(at("2026-03-18T00:00:00+08:00"), r.tz) == date(2026, 3, 18)
    assert at("2026-03-18T00:00:00+08:00").astimezone(UTC).date() == date(2026, 3, 17)
    # Blue from DEADLINE_NEAR_DAYS (3) days before the due day, at local midnight.
    assert colour("2026-03-13T23:59:00+08:00", progress=done) is None
    assert colour("2026-03-14T00:00:00+08:00", progress=done) == "blue"
    # Yellow once half the 15 days passed with nothing recorded: 2 March + 7.5 → 10 March.
    assert colour("2026-03-09T23:59:00+08:00") is None  # 7/15 < 0.5
    assert colour("2026-03-10T00:00:00+08:00") == "yellow"  # 8/15
    assert colour("2026-03-10T00:00:00+08:00", progress="2026-03-05T10:00:00+08:00") is None
    assert colour("2026-03-14T00:00:00+08:00", progress="2026-03-05T10:00:00+08:00") == "blue"
    assert colour("2026-03-14T00:00:00+08:00") == "yellow"  # behind wins over near
    assert colour("2026-03-20T00:00:00+08:00", progress="2026-03-05T10:00:00+08:00") == "red"
    st = deadlines.state_of(p, date(2026, 3, 20), r)
    assert st.days_overdue == 3 and st.days_left == -3 and st.handling_days == 15
    # A problem with no work group at the enterprise stage is the district's to act on.
    q = _P(tag="urgent")
    deadlines.start_clock(q, "enterprise", at("2026-03-02T16:00:00+00:00"), r, None)
    assert q.owner_level == "district" and q.due_date == date(2026, 3, 8)  # local 3 March + 5
    deadlines.start_clock(q, "resolved", at("2026-03-04T16:00:00+00:00"), r, None)
    assert q.due_date is None and q.owner_level is None
    q.stage = "resolved"
    assert deadlines.state_of(q, date(2026, 9, 1), r).colour is None


@pytest.fixture
def cadre(app):
    create_user("head_a", "district_head", "510104").email = "head@a.example"
    return create_user("cadre1", "field_cadre", "510104", "WG01")


def _new() -> str:
    return str(uuid.uuid4())


def test_sync_starts_each_stage_clock_and_needs_what_was_done(client, cadre):
    from server.extensions import db
    from server.models import Problem, WorkGroup

    phone = Phone(client, "cadre1")
    vid, pid = _new(), _new()
    r = phone.push(
        [
            phone.mutation("create", "visit", vid, visit_fields(work_group_code="WG01")),
            phone.mutation(
                "create",
                "problem",
                pid,
                {"visit_id": vid, "category": "wages", "tag": "urgent", "description": "欠薪"},
            ),
        ]
    )
    assert [x["status"] for x in r.json["results"]] == ["applied", "applied"], r.json
    p = db.session.get(Problem, pid)
    wg01 = db.session.scalar(select(WorkGroup.id).where(WorkGroup.code == "WG01"))
    today = deadlines.today(datetime.now(UTC), "Asia/Shanghai")
    assert p.due_date == today + timedelta(days=5)
    assert (p.owner_level, p.owner_work_group_id) == ("work_group", wg01)
    first_clock = p.stage_started_at
    version = r.json["results"][1]["version"]

    def push(fields: dict, base: int) -> dict:
        return phone.push([phone.mutation("update", "problem", pid, fields, base_version=base)])

    # A follow-up note in the same stage records progress, the clock stays; another
    # tag has another period on the same clock.
    answer = push({"stage_note": "已约谈企业负责人", "tag": "hope"}, version).json["results"][0]
    db.session.expire_all()
    p = db.session.get(Problem, pid)
    assert p.progress_at is not None and p.stage_started_at == first_clock
    assert p.due_date == today + timedelta(days=10)  # wages at the enterprise, not 最急
    # Moving on starts the next clock: 30 days with the government, the district owns it.
    answer = push({"stage": "government", "stage_note": "企业无力解决"}, answer["version"])
    answer = answer.json["results"][0]
    assert answer["status"] == "applied", answer
    db.session.expire_all()
    p = db.session.get(Problem, pid)
    assert p.stage_started_at > first_clock and p.owner_level == "district"
    assert p.due_date == today + timedelta(days=30) and p.owner_work_group_id is None
    # Resolved needs what was done; closed unresolved needs that and why.
    bad = push({"stage": "resolved"}, answer["version"]).json["results"][0]
    assert (bad["status"], bad["code"], bad["field"]) == ("rejected", "required", "resolution")
    bad = push({"stage": "closed", "resolution": "多次协调"}, answer["version"]).json["results"][0]
    assert (bad["status"], bad["code"], bad["field"]) == ("rejected", "required", "stage_note")
    ok = push({"stage": "resolved", "resolution": "已补发两个月工资"}, answer["version"])
    ok = ok.json["results"][0]
    assert ok["status"] == "applied", ok
    db.session.expire_all()
    p = db.session.get(Problem, pid)
    assert p.due_date is None and p.owner_level is None and p.resolved_at is not None
    # Pulled records carry the clock; the colours come from /api/problems/deadlines.
    changes, _ = phone.pull_all()
    pulled = [c for c in changes if c["id"] == pid][-1]["data"]
    assert pulled["due_date"] is None and pulled["stage_started_at"]


def _problem(db, district_id: int, stage: str, started: str, **kw) -> str:  # noqa: ANN001
    from server.models import Problem, Visit

    v = Visit(
        id=_new(),
        method="interview",
        visited_at=at(started),
        district_id=district_id,
        workers_met=1,
    )
    db.session.add(v)
    p = Problem(
        id=_new(),
        visit_id=v.id,
        category=kw.pop("category", "employment"),
        tag=kw.pop("tag", None),
        stage=stage,
        description="（测试）职工反映的问题",
        district_id=district_id,
        **kw,
    )
    deadlines.start_clock(p, stage, at(started), _rules(), None)
    db.session.add(p)
    db.session.commit()
    return p.id


def test_colours_on_the_api_tracker_dashboard_and_briefing(client, app, cadre):
    from server.extensions import db
    from server.models import DistrictUnit

    a = db.session.scalar(select(DistrictUnit.id).where(DistrictUnit.code == "510104"))
    now = datetime.now(UTC)
    local_now = now.astimezone(deadlines.ZoneInfo("Asia/Shanghai"))
    red = _problem(db, a, "enterprise", (local_now - timedelta(days=20)).isoformat())
    blue = _problem(
        db,
        a,
        "government",
        (local_now - timedelta(days=28)).isoformat(),
        progress_at=now - timedelta(days=1),
    )
    yellow = _problem(db, a, "source", (local_now - timedelta(days=50)).isoformat())
    calm = _problem(db, a, "enterprise", (local_now - timedelta(days=1)).isoformat())
    phone = Phone(client, "cadre1")
    body = phone.get("/api/problems/deadlines").json
    colours = {i["id"]: i["colour"] for i in body["items"]}
    assert colours == {red: "red", blue: "blue", yellow: "yellow", calm: None}
    overdue = next(i for i in body["items"] if i["id"] == red)
    assert overdue["days_overdue"] == 5 and overdue["owner"] == "区(市)县总工会"
    # The tracker (list and detail) shows the same colours.
    create_user("coord", "city_coordinator")
    web = app.test_client()
    web.post("/login", data={"username": "coord", "password": "test-pass-123"})
    page = web.get("/problems?stage=open").get_data(as_text=True)
    assert page.count('class="dl dl-red"') == 1 and page.count('class="dl dl-yellow"') == 1
    assert page.count('class="dl dl-blue"') == 1 and "超期5天" in page
    only_red = web.get("/problems?overdue=1").get_data(as_text=True)
    assert only_red.count('class="dl dl-') == 1 and 'class="dl dl-red"' in only_red
    api = web.get("/api/problem-tracker?overdue=1").json
    assert [i["id"] for i in api["items"]] == [red]
    assert api["items"][0]["deadline"]["colour"] == "red"
    detail = web.get(f"/problems/{red}").get_data(as_text=True)
    assert "办理期限" in detail and "超期5天" in detail and "区(市)县总工会" in detail
    # The dashboard per district and the briefing count them.
    page = web.get("/dashboard").get_data(as_text=True)
    assert 'data-deadlines="510104:1/1/1"' in page
    from worker.briefing.compute import build_all, period_containing

    period = period_containing(
        "campaign", local_now.date(), date.fromisoformat(app.config["FV"].CAMPAIGN_START)
    )
    _, by_code = build_all(db.session, period)
    cur = by_code["510104"].current
    assert cur.deadline_colours == {"red": 1, "yellow": 1, "blue": 1}
    assert [r["problem_id"] for r in cur.red_list] == [red]
    assert cur.red_list[0]["days_overdue"] == 5
