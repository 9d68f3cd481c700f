"""Plausibility limits (issue 13, item 8), on SQLite and PostgreSQL.

The original finding: one cadre pushed 5,000 visits with 500 million workers met and
moved the district to rank 2 of the evaluation. Now a value beyond a hard limit
(PLAUSIBLE_HARD) is rejected as `implausible_value` with the field and the limit; a
value above a soft limit (PLAUSIBLE_SOFT) is stored but held, listed for the
supervision team, and counted by the evaluation, the dashboard and the briefings only
once a supervisor accepts it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from config.settings import SettingsError, load_settings
from tests.conftest import Phone, create_user, visit_fields
from tests.coordination.conftest import web_login

TODAY = datetime.now(UTC)
WHEN = (TODAY - timedelta(days=1)).replace(microsecond=0)


def new_id() -> str:
    return str(uuid.uuid4())


def _figures(district: str = "510104") -> dict:
    """The district's evaluation score, dashboard and briefing figures over the campaign."""
    from server.coordination.dashboard import district_figures
    from server.coordination.evaluation import evaluate
    from server.coordination.filters import Filters
    from server.extensions import db
    from server.models import DistrictUnit
    from worker.briefing.compute import compute_figures

    db.session.expire_all()
    unit = db.session.scalar(select(DistrictUnit).where(DistrictUnit.code == district))
    f = Filters(date(2025, 1, 1), TODAY.date(), tz="Asia/Shanghai")
    dash = district_figures(db.session, f)[unit.id]
    brief = compute_figures(db.session, f.period)[unit.id]
    ev = {e.code: (e.score, e.rank) for e in evaluate(db.session, f)}
    return {
        "visits": (dash.visits, brief.visits),
        "workers": (dash.workers_met, brief.workers_met),
        "homes": (dash.home_visits, brief.home_visits),
        "money": (dash.condolence_cents, brief.condolence_cents),
        "evaluation": ev[district],
        "ranks": ev,
    }


@pytest.fixture
def people(client):
    create_user("cadre", "field_cadre", "510104", "WG01")
    create_user("other", "field_cadre", "510105", "WG02")
    create_user("super", "supervisor")
    return Phone(client, "cadre")


def _visit(phone: Phone, **extra) -> dict:
    fields = visit_fields("510104", visited_at=WHEN.isoformat(), work_group_code="WG01")
    fields.update(extra)
    return phone.mutation("create", "visit", new_id(), fields)


def test_the_original_finding_5000_visits_of_500_million_workers_are_rejected(client, people):
    phone = people
    other = Phone(client, "other")
    r = other.push(
        [
            other.mutation(
                "create",
                "visit",
                new_id(),
                visit_fields("510105", visited_at=WHEN.isoformat(), workers_met=60),
            )
        ]
    )
    assert r.json["results"][0]["status"] == "applied"
    before = _figures()
    results = []
    for _ in range(10):  # 10 pushes of 500 (SYNC_MAX_BATCH): 5,000 visits, 100,000 each
        r = phone.push([_visit(phone, workers_met=100_000) for _ in range(500)])
        assert r.status_code == 200
        results += r.json["results"]
    assert len(results) == 5000
    assert {(x["status"], x["code"], x["field"], x["limit"]) for x in results} == {
        ("rejected", "implausible_value", "workers_met", 5000)
    }
    assert "5000" in results[0]["message"]
    from server.extensions import db
    from server.models import Visit

    assert db.session.scalar(select(func.count()).select_from(Visit)) == 1  # only the other's
    after = _figures()
    assert after == before  # the district did not move in the evaluation


def test_visits_per_cadre_per_day(client, people):
    """Beyond PLAUSIBLE_HARD's visits_per_day (200, a flood guard) the visit is refused;
    above the soft 8 it is stored but held."""
    phone = people
    r = phone.push([_visit(phone, workers_met=10) for _ in range(201)])
    statuses = [(x["status"], x.get("code"), x.get("field")) for x in r.json["results"]]
    assert statuses[:200] == [("applied", None, None)] * 200
    assert statuses[200] == ("rejected", "implausible_value", "visited_at")
    assert r.json["results"][200]["limit"] == 200
    from server.extensions import db
    from server.models import Visit

    held = db.session.scalars(select(Visit.held).order_by(Visit.created_at)).all()
    assert sum(held) == 192  # the 9th to the 200th of the day
    assert _figures()["visits"] == (8, 8)
    # another day starts again
    r = phone.push([_visit(phone, visited_at=(WHEN - timedelta(days=1)).isoformat())])
    assert r.json["results"][0]["status"] == "applied"


def test_a_soft_value_is_held_until_a_supervisor_accepts_it(client, people):
    from server.extensions import db
    from server.models import Visit

    phone = people
    normal, big, doubtful = (
        _visit(phone, workers_met=40),
        _visit(phone, workers_met=1000),
        _visit(phone, workers_met=900),
    )
    r = phone.push([normal, big, doubtful])
    assert [x["status"] for x in r.json["results"]] == ["applied"] * 3, r.json
    assert db.session.get(Visit, big["id"]).held
    figs = _figures()
    assert figs["visits"] == (1, 1) and figs["workers"] == (40, 40)  # held ones not counted
    score_before = figs["evaluation"]

    # the supervision team's review list: the page and the API
    supervisor = Phone(client, "super")
    flags = supervisor.get("/api/spot-checks/flags").json["flags"]
    assert {f["record_id"] for f in flags} == {big["id"], doubtful["id"]}
    by_record = {f["record_id"]: f for f in flags}
    assert by_record[big["id"]]["reasons"] == [
        {"field": "workers_met", "value": 1000, "limit": 500}
    ]
    web_login(client, "super")
    page = client.get("/spot-checks").get_data(as_text=True)
    assert "待复核的异常数值 (2)" in page and "workers_met 1000 &gt; 500" in page
    # a cadre may not decide
    assert (
        phone.client.post(
            f"/api/spot-checks/flags/{by_record[big['id']]['id']}",
            json={"decision": "accept"},
            headers=phone.headers,
        ).status_code
        == 403
    )

    r = supervisor.client.post(
        f"/api/spot-checks/flags/{by_record[big['id']]['id']}",
        json={"decision": "accept", "note": "全厂职工大会，核实属实"},
        headers=supervisor.headers,
    )
    assert r.status_code == 200 and r.json["status"] == "accepted"
    # the page's form rejects the other one
    page = client.post(
        f"/spot-checks/flags/{by_record[doubtful['id']]['id']}",
        data={"decision": "reject", "csrf_token": _csrf(client)},
    )
    assert page.status_code == 302
    figs = _figures()
    assert figs["visits"] == (2, 2) and figs["workers"] == (1040, 1040)
    assert figs["evaluation"] != score_before
    assert supervisor.get("/api/spot-checks/flags").json["flags"] == []
    # decided once: a second decision is refused
    again = supervisor.client.post(
        f"/api/spot-checks/flags/{by_record[big['id']]['id']}",
        json={"decision": "reject"},
        headers=supervisor.headers,
    )
    assert again.status_code == 400 and again.json["error"]["field"] == "decision"

    # an edit to another implausible value asks for a new review; back to normal counts
    r = phone.push([phone.mutation("update", "visit", big["id"], {"workers_met": 1200})])
    assert r.json["results"][0]["status"] == "applied"
    assert _figures()["workers"] == (40, 40)
    assert len(supervisor.get("/api/spot-checks/flags").json["flags"]) == 1
    r = phone.push([phone.mutation("update", "visit", big["id"], {"workers_met": 100})])
    assert _figures()["workers"] == (140, 140)
    assert supervisor.get("/api/spot-checks/flags").json["flags"] == []


def _csrf(client) -> str:
    with client.session_transaction() as s:
        return s["csrf"]


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [
        ("materials", 20_001, 20_000),
        ("consultations", 3001, 3000),
    ],
)
def test_each_visit_count_has_a_hard_limit(people, field, value, limit):
    phone = people
    r = phone.push([_visit(phone, **{field: value})])
    result = r.json["results"][0]
    assert (result["code"], result["field"], result["limit"]) == ("implausible_value", field, limit)


def test_each_focus_group_count_is_checked_alone():
    """A group count is at most workers_met; its own limits bite when set lower."""
    from server.plausibility import Implausible, Limits, check_values

    soft = dict.fromkeys(
        ("workers_met", "materials", "consultations", "amount_cents", "visits_per_day"), 1000
    )
    limits = Limits({**soft, "workers_by_group": 50}, {**soft, "workers_by_group": 100})
    changes = {"workers_met": 300, "workers_by_group": {"migrant": 80, "needy": 20}}
    assert check_values(limits, "visit", None, changes) == [
        {"field": "workers_by_group.migrant", "value": 80, "limit": 50}
    ]
    with pytest.raises(Implausible) as err:
        check_values(limits, "visit", None, {"workers_by_group": {"needy": 101}})
    assert (err.value.field, err.value.limit) == ("workers_by_group.needy", 100)


def test_condolence_money(client, people):
    """amount_cents: 8,000 yuan is held (soft 5,000), 60,000 yuan refused (hard 50,000)."""
    phone = people
    base = {"district_code": "510104", "visited_at": WHEN.isoformat(), "worker_name": "赵春花"}
    ok, held, refused = new_id(), new_id(), new_id()
    r = phone.push(
        [
            phone.mutation("create", "home_visit", ok, {**base, "amount_cents": 100_000}),
            phone.mutation("create", "home_visit", held, {**base, "amount_cents": 800_000}),
            phone.mutation("create", "home_visit", refused, {**base, "amount_cents": 6_000_000}),
        ]
    )
    res = r.json["results"]
    assert [x["status"] for x in res] == ["applied", "applied", "rejected"]
    assert (res[2]["code"], res[2]["field"], res[2]["limit"]) == (
        "implausible_value",
        "amount_cents",
        5_000_000,
    )
    assert _figures()["money"] == (100_000, 100_000) and _figures()["homes"] == (1, 1)
    flags = Phone(client, "super").get("/api/spot-checks/flags").json["flags"]
    assert [(f["entity"], f["record_id"]) for f in flags] == [("home_visit", held)]


def test_the_limits_are_settings_and_bad_ones_are_named():
    settings = load_settings({"PLAUSIBLE_SOFT": "workers_met=100"})
    from server.plausibility import current_limits

    limits = current_limits(settings)
    assert limits.soft["workers_met"] == 100 and limits.soft["materials"] == 2000
    for env, named in (
        ({"PLAUSIBLE_SOFT": "workers_met=9000"}, "PLAUSIBLE_SOFT: workers_met=9000 is above"),
        ({"PLAUSIBLE_HARD": "people=3"}, "PLAUSIBLE_HARD: 'people=3'"),
        ({"PLAUSIBLE_HARD": "workers_met=many"}, "PLAUSIBLE_HARD: workers_met='many'"),
        ({"PLAUSIBLE_SOFT": "materials=0"}, "PLAUSIBLE_SOFT: materials=0: must be at least 1"),
    ):
        with pytest.raises(SettingsError) as err:
            load_settings(env)
        assert str(err.value).startswith(named), err.value


def test_the_sqlite_statistics_indexes_cover_held(app):
    """The aggregates read `held` now: on SQLite it is in the covering indexes."""
    from server.extensions import db

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite-only indexes")
    rows = dict(
        db.session.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='visits'")
        ).all()
    )
    for name in (
        "ix_visits_stats",
        "ix_visits_enterprise_stats",
        "ix_visits_day_stats",
        "ix_visits_group_stats",
    ):
        assert "held" in rows[name], name


def test_a_held_duplicate_adds_nothing_to_its_canonical_visit(client, people):
    """Dedup takes the larger count of two reports of one visit: a held report must not
    bring its implausible count in through the canonical record until accepted."""
    from server.extensions import db
    from server.models import Visit
    from worker.merges import merge

    phone = people
    normal, big = _visit(phone, workers_met=40), _visit(phone, workers_met=1000)
    assert [x["status"] for x in phone.push([normal, big]).json["results"]] == ["applied"] * 2
    merge(db.session, "visit", big["id"], normal["id"], rule="test", score=1.0)
    db.session.commit()
    assert db.session.get(Visit, normal["id"]).workers_met == 40
    assert _figures()["workers"] == (40, 40)
    supervisor = Phone(client, "super")
    (flag,) = supervisor.get("/api/spot-checks/flags").json["flags"]
    r = supervisor.client.post(
        f"/api/spot-checks/flags/{flag['id']}",
        json={"decision": "accept"},
        headers=supervisor.headers,
    )
    assert r.status_code == 200
    assert db.session.get(Visit, normal["id"]).workers_met == 1000
    assert _figures()["workers"] == (1000, 1000) and _figures()["visits"] == (1, 1)


def test_visits_per_day_counts_across_pushes_and_local_midnight(client, people):
    """The day count reads only the days a push needs (not the author's history), and
    still agrees with counting every stored visit by its local (Shanghai) day: visits
    spread over several pushes, days far apart in one batch, times either side of
    local midnight (16:00 UTC)."""
    import random

    from server.extensions import db
    from server.models import Visit

    phone = people
    rng = random.Random(15)
    base = datetime.combine(TODAY.date() - timedelta(days=40), datetime.min.time(), UTC)
    # 15:59:59 UTC is 23:59:59 in Shanghai; 16:00:00 UTC is the next local day
    times = [base + timedelta(days=d, hours=15, minutes=59, seconds=59) for d in (0, 1, 20, 39)] + [
        base + timedelta(days=d, hours=16) for d in (0, 1, 20, 39)
    ]
    pushed = []
    for _ in range(4):
        batch = [rng.choice(times) for _ in range(rng.randint(5, 25))]
        pushed += batch
        r = phone.push([_visit(phone, visited_at=at.isoformat()) for at in batch])
        assert {x["status"] for x in r.json["results"]} == {"applied"}, r.json
    per_day: dict[date, int] = {}
    for at in pushed:
        local = (at + timedelta(hours=8)).date()
        per_day[local] = per_day.get(local, 0) + 1
    expected_held = sum(max(0, n - 8) for n in per_day.values())
    db.session.expire_all()
    held = db.session.scalars(select(Visit.held)).all()
    assert len(held) == len(pushed)
    assert sum(held) == expected_held
