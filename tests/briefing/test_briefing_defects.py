"""The briefing defects of issue 16, each on SQLite and PostgreSQL: failed deliveries
retried by the sweep and shown, the log call of the scheduled task, the oldest open
problem's local date, List-Unsubscribe on the wire, one computation per period (and the
admin's 立即发送 only queues), deleted visits' children, and the evaluation's period."""

from __future__ import annotations

import ast
import logging
import re
import sqlite3
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event, func, select

from config.settings import ROOT
from server.extensions import db
from server.models import DistrictUnit, Enterprise, HomeVisit, Problem, Visit
from server.models_briefing import CITY_SCOPE, BriefingDelivery, BriefingRecipient, BriefingRender
from tests.briefing.fixture_data import EXPECTED_A, WEEK, A, seed
from tests.briefing.smtp import smtp_settings_for, start_smtp
from tests.conftest import PASSWORD, create_user
from worker.briefing.compute import build_all, compute_figures, period_containing
from worker.briefing.deliver import (
    due_for_sending,
    ensure_renders,
    plan_deliveries,
    send_delivery,
)
from worker.briefing.render import render_district_email


@pytest.fixture
def smtp():
    controller, recorder = start_smtp()
    yield controller, recorder
    controller.stop()


@pytest.fixture
def smtp_settings(app, smtp):
    controller, _ = smtp
    return smtp_settings_for(app, controller)


def _period():
    return period_containing("week", WEEK, date(2026, 1, 1))


def _login(client, username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302, r.data


def _district_id(code: str) -> int:
    return db.session.scalar(select(DistrictUnit.id).where(DistrictUnit.code == code))


# ------------------------------------------------------------------ failed deliveries


def test_failed_deliveries_are_retried_by_the_sweep_and_listed(
    client, db_session, smtp, smtp_settings
):
    seed()
    emails = [f"r{i}@a.example" for i in range(5)]
    db.session.add_all(BriefingRecipient(district=A, email=e) for e in emails)
    db.session.add(BriefingRecipient(district=CITY_SCOPE, email="coord@city.example"))
    db.session.commit()
    _, rec = smtp
    ids = plan_deliveries(db.session, smtp_settings, _period()).to_send
    rec.fail_next = 10**6  # the SMTP server answers 451 for a while: an outage
    now = datetime.now(UTC)
    for i in ids:
        with pytest.raises(Exception, match="451"):
            send_delivery(db.session, smtp_settings, i, now=now)
    db.session.expire_all()
    rows = db.session.scalars(select(BriefingDelivery).order_by(BriefingDelivery.id)).all()
    retry = timedelta(seconds=smtp_settings.BRIEFING_RETRY_SECONDS)
    assert {r.status for r in rows} == {"failed"}
    assert all(r.next_attempt_at == now + retry for r in rows)
    # Not due before the slower schedule's interval; due after it.
    assert due_for_sending(db.session, smtp_settings, now=now + retry / 2) == []
    assert due_for_sending(db.session, smtp_settings, now=now + retry) == ids

    # The ops page shows them, with the next attempt, to coordinators as well.
    create_user("coord", "city_coordinator")
    _login(client, "coord")
    page = client.get("/briefings/admin/deliveries").get_data(as_text=True)
    assert 'id="failed-summary"' in page
    assert re.search(r'<span class="st-failed">6</span> 条将由后台自动重试', page), page
    assert "下次重试" in page and "不再自动重试" not in page

    # The outage ends; the sweep's sends go out once each.
    rec.fail_next = 0
    for i in due_for_sending(db.session, smtp_settings, now=now + retry):
        send_delivery(db.session, smtp_settings, i, now=now + retry)
    for i in due_for_sending(db.session, smtp_settings, now=now + 2 * retry):
        send_delivery(db.session, smtp_settings, i, now=now + 2 * retry)
    assert sorted(m["To"] for m in rec.messages) == sorted([*emails, "coord@city.example"])
    db.session.expire_all()
    assert {r.status for r in db.session.scalars(select(BriefingDelivery))} == {"sent"}
    assert due_for_sending(db.session, smtp_settings, now=now + 3 * retry) == []


def test_failures_past_the_give_up_window_and_refusals_stop(
    client, db_session, smtp_settings, smtp
):
    seed()
    db.session.add(BriefingRecipient(district=A, email="late@a.example"))
    db.session.commit()
    (late,) = plan_deliveries(db.session, smtp_settings, _period()).to_send
    _, rec = smtp
    rec.fail_next = 1
    after = datetime.now(UTC) + timedelta(hours=smtp_settings.BRIEFING_GIVE_UP_HOURS)
    with pytest.raises(Exception, match="451"):
        send_delivery(db.session, smtp_settings, late, now=after)
    db.session.expire_all()
    row = db.session.get(BriefingDelivery, late)
    assert row.status == "failed" and row.next_attempt_at is None
    assert due_for_sending(db.session, smtp_settings, now=after + timedelta(days=30)) == []
    create_user("root", "admin")
    _login(client, "root")
    page = client.get("/briefings/admin/deliveries?status=failed").get_data(as_text=True)
    assert re.search(r'<span class="st-failed">1</span> 条已停止自动重试', page)
    assert "不再自动重试" in page and "重新发送" in page


# ------------------------------------------------------------------ the log call


def test_scheduled_task_logs_at_info_without_keyerror(app, db_session, caplog):
    from worker.briefing.tasks import briefings_scheduled

    seed()  # no recipients: nothing is enqueued, but the task logs what it did
    caplog.set_level(logging.INFO, logger="worker.briefing.tasks")
    result = briefings_scheduled.run(kind="week", day=WEEK.isoformat())
    assert result == {"period": "2026-03-02", "created": 0, "enqueued": 0}
    (record,) = [r for r in caplog.records if r.getMessage() == "briefings planned"]
    assert record.rows_created == 0 and record.enqueued == 0


RESERVED = set(logging.LogRecord("x", 0, "x", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}


def test_no_log_call_passes_a_reserved_logrecord_key():
    """`extra` keys naming LogRecord attributes raise KeyError at INFO: none anywhere."""
    found = []
    for package in ("server", "worker", "sync"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                for kw in node.keywords:
                    if kw.arg == "extra" and isinstance(kw.value, ast.Dict):
                        for key in kw.value.keys:
                            if isinstance(key, ast.Constant) and key.value in RESERVED:
                                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {key.value}")
    assert found == []


# ------------------------------------------------------------------ local dates


def test_oldest_open_problem_is_dated_in_beijing_time(db_session):
    ids = seed()
    # Raised at 01:30 Beijing time on Tuesday 3 March = 17:30 UTC on Monday 2 March, and
    # older than every other open problem of the district.
    v = Visit(
        id=str(uuid.uuid4()),
        method="interview",
        visited_at=datetime.fromisoformat("2026-02-10T01:30:00+08:00"),
        district_id=ids["a"],
        workers_met=1,
    )
    db.session.add(v)
    db.session.add(
        Problem(
            id=str(uuid.uuid4()),
            visit_id=v.id,
            category="housing",
            stage="government",
            description="x",
            district_id=ids["a"],
        )
    )
    db.session.commit()
    _, by_code = build_all(db.session, _period())
    oldest = by_code[A].current.oldest_open
    assert oldest.opened_at.astimezone(UTC).date() == date(2026, 2, 9)  # the UTC day
    _, text, html = render_district_email(by_code[A], "https://x")
    assert "2026-02-10收集" in text and "2026-02-10收集" in html
    assert "2026-02-09" not in text


# ------------------------------------------------------------------ List-Unsubscribe


def test_list_unsubscribe_is_plain_ascii_and_one_click_works(
    client, db_session, smtp, smtp_settings
):
    seed()
    db.session.add(BriefingRecipient(district=A, email="head@a.example"))
    db.session.commit()
    (delivery_id,) = plan_deliveries(db.session, smtp_settings, _period()).to_send
    assert send_delivery(db.session, smtp_settings, delivery_id) == "sent"
    _, rec = smtp
    raw = rec.raw[0]
    line = re.search(rb"^List-Unsubscribe: (.*)$", raw, re.M).group(1).rstrip(b"\r")
    assert line.isascii() and b"=?" not in line
    assert re.fullmatch(rb"<https://fv\.example\.cn/briefings/unsubscribe/[\w.\-]+>", line)
    assert re.search(rb"^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r?$", raw, re.M)
    # Every header line within RFC 5322's 998, the Subject still RFC 2047-encoded.
    assert max(len(h) for h in raw.split(b"\r\n\r\n")[0].split(b"\r\n")) <= 998
    assert re.search(rb"^Subject: =\?utf-8\?", raw, re.M)
    # RFC 8058: the mail app POSTs the marker to the URL, with no cookie and no token.
    url = line[1:-1].decode()
    fresh = client.application.test_client()
    r = fresh.post(
        urlsplit(url).path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert r.status_code == 200
    recipient = db.session.scalar(select(BriefingRecipient))
    db.session.refresh(recipient)
    assert recipient.unsubscribed_at is not None


# ------------------------------------------------------------------ computed once


def test_a_period_is_computed_once_for_all_its_mails(db_session, smtp, smtp_settings):
    seed()
    db.session.add_all(
        [BriefingRecipient(district=A, email=f"h{i}@a.example") for i in range(4)]
        + [BriefingRecipient(district=CITY_SCOPE, email="coord@city.example")]
    )
    db.session.commit()
    ids = plan_deliveries(db.session, smtp_settings, _period()).to_send
    grouped: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001
        if "GROUP BY" in statement.upper():
            grouped.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert send_delivery(db.session, smtp_settings, ids[0]) == "sent"
        first = len(grouped)
        for i in ids[1:]:
            assert send_delivery(db.session, smtp_settings, i) == "sent"
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert first > 0 and len(grouped) == first  # the later four mails computed nothing
    n_units = db.session.scalar(
        select(func.count()).select_from(DistrictUnit).where(DistrictUnit.active.is_(True))
    )
    assert db.session.scalar(select(func.count()).select_from(BriefingRender)) == n_units + 1
    _, rec = smtp
    texts = {m["To"]: m.get_body(("plain",)).get_content() for m in rec.messages}
    assert f"走访：{EXPECTED_A['visits']}次" in texts["h0@a.example"]
    links = {re.search(r"退订：(\S+)", t).group(1) for t in texts.values()}
    assert len(links) == 5 and not any("invalid" in link for link in links)
    # A second beat reuses the stored renders as they are.
    before = {r.id: r.html for r in db.session.scalars(select(BriefingRender))}
    again = ensure_renders(db.session, smtp_settings, _period())
    assert {r.id: r.html for r in again.values()} == before


def test_admin_send_now_only_queues(client, app, db_session):
    seed()
    create_user("root", "admin")
    db.session.add(BriefingRecipient(district=A, email="head@a.example"))
    db.session.commit()
    _login(client, "root")
    page = client.get("/briefings/admin/deliveries").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    outbox = Path(app.config["FV"].DATA_DIR) / "outbox-mail"
    mails_before = set(outbox.glob("*.eml"))
    started = time.perf_counter()
    r = client.post(
        "/briefings/admin/send",
        data={"csrf_token": token, "period": "week", "start": WEEK.isoformat()},
    )
    elapsed = time.perf_counter() - started
    assert r.status_code == 302 and elapsed < 5
    row = db.session.scalar(select(BriefingDelivery))
    assert row.status == "pending" and row.attempts == 0
    # Nothing computed or sent inside the request...
    assert db.session.scalar(select(func.count()).select_from(BriefingRender)) == 0
    # (the data directory is shared by the session's tests: compare with before)
    assert set(outbox.glob("*.eml")) == mails_before
    # ...but the worker's task is on the (embedded) broker.
    broker = Path(app.config["FV"].DATA_DIR) / "broker.db"
    with sqlite3.connect(broker) as conn:
        payloads = [
            bytes(p) if not isinstance(p, str) else p.encode()
            for (p,) in conn.execute("SELECT payload FROM kombu_message")
        ]
    assert any(b"worker.tasks.briefings_scheduled" in p for p in payloads)
    flashed = client.get("/briefings/admin/deliveries").get_data(as_text=True)
    assert "已交后台发送" in flashed


# ------------------------------------------------------------------ one counting rule


def test_deleted_visits_children_count_nowhere(client, db_session):
    ids = seed()
    a = ids["a"]
    gone = Visit(
        id=str(uuid.uuid4()),
        method="home_visit",
        visited_at=datetime.fromisoformat("2026-03-04T10:00:00+08:00"),
        district_id=a,
        workers_met=3,
        deleted=True,
    )
    gone.enterprise_id = db.session.scalar(
        select(Enterprise.id).where(Enterprise.name == "星河机械有限公司")
    )
    db.session.add(gone)
    # Children left live (written before the delete rule, or by a path that deleted
    # only the visit): they must not count.
    db.session.add(
        Problem(
            id=str(uuid.uuid4()),
            visit_id=gone.id,
            category="wages",
            stage="resolved",
            resolved_at=datetime.fromisoformat("2026-03-05T10:00:00+08:00"),
            description="x",
            district_id=a,
        )
    )
    db.session.add(
        Problem(
            id=str(uuid.uuid4()),
            visit_id=gone.id,
            category="housing",
            stage="enterprise",
            description="x",
            district_id=a,
        )
    )
    db.session.add(
        HomeVisit(
            id=str(uuid.uuid4()),
            visit_id=gone.id,
            visited_at=gone.visited_at,
            worker_name="某",
            amount_cents=12345,
            district_id=a,
        )
    )
    db.session.commit()
    fig = compute_figures(db.session, _period())[a]
    for name in (
        "problems_raised",
        "problems_resolved",
        "problems_open",
        "home_visits",
        "condolence_cents",
        "problems_by_category",
    ):
        expected = EXPECTED_A[name]
        got = getattr(fig, name)
        if isinstance(expected, dict):
            got = {k: v for k, v in got.items() if v}
        assert got == expected, name
    # The dashboard, unfiltered and filtered by a tag, and the problem tracker agree.
    from server.coordination.dashboard import district_figures
    from server.coordination.filters import Filters
    from server.coordination.problems import ProblemFilters, list_problems

    week = Filters(WEEK, WEEK + timedelta(days=6), district_ids=frozenset({a}))
    assert district_figures(db.session, week)[a].condolence_cents == 80000
    tagged = Filters(WEEK, WEEK + timedelta(days=6), tags=("sme",), district_ids=frozenset({a}))
    # v1's two live problems and v2's (both at "sme" enterprises); not the deleted visit's
    assert district_figures(db.session, tagged)[a].problems_raised == 3
    listed = list_problems(
        db.session, ProblemFilters(district_ids=frozenset({a})), datetime.now(UTC)
    )
    assert gone.id not in {i["visit_id"] for i in listed["items"]}
    assert listed["total"] == 4  # the seed's live problems; the merged one is not


def test_evaluation_counts_spot_checks_of_its_period_only(db_session):
    from server.coordination.evaluation import evaluate
    from server.coordination.filters import Filters
    from server.models_supervision import SpotCheckItem, SpotCheckSample

    ids = seed()
    a = ids["a"]
    visits = {
        v.visited_at.date(): v.id
        for v in db.session.scalars(
            select(Visit).where(Visit.district_id == a, Visit.deleted.is_(False))
        )
    }
    inside = visits[date(2026, 3, 3)]  # 2026-03-03 09:00 Beijing (01:00 UTC)
    outside = visits[date(2026, 2, 25)]  # the week before
    sample = SpotCheckSample(seed="s", size=2)
    db.session.add(sample)
    db.session.flush()
    for visit_id, result in ((inside, "confirmed"), (outside, "not_confirmed")):
        db.session.add(
            SpotCheckItem(sample_id=sample.id, visit_id=visit_id, district_id=a, result=result)
        )
    db.session.commit()
    week = Filters(WEEK, WEEK + timedelta(days=6))
    (ev,) = [e for e in evaluate(db.session, week) if e.district_id == a]
    spot = next(p for p in ev.breakdown if p["code"] == "spot_checks")
    assert spot["value"] == 1.0 and spot["detail"] == "属实1 存疑0 不属实0"
    earlier = Filters(date(2026, 2, 23), date(2026, 3, 1))
    (ev,) = [e for e in evaluate(db.session, earlier) if e.district_id == a]
    spot = next(p for p in ev.breakdown if p["code"] == "spot_checks")
    assert spot["value"] == 0.0 and spot["detail"] == "属实0 存疑0 不属实1"
