"""Deadline reminders and escalation (server/reminders.py) on SQLite and PostgreSQL:
exactly once per problem, state and recipient with two beats a day, duplicate send tasks
and a killed sender, over a simulated month of problems; per-user digests through a
real SMTP server; acknowledgements in the app and from the mail."""

from __future__ import annotations

import random
import re
import threading
import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from server import deadlines, reminders
from server.models import DistrictUnit, Problem, Visit, WorkGroup
from server.models_deadlines import ProblemReminder, ReminderDigest
from tests.briefing.smtp import smtp_settings_for, start_smtp
from tests.conftest import Phone, create_user

TZ = ZoneInfo("Asia/Shanghai")
START = date(2026, 3, 2)
DAYS = 60  # the beat runs every day of two months; problems arrive in the first month


@pytest.fixture
def smtp():
    controller, recorder = start_smtp()
    yield controller, recorder
    controller.stop()


@pytest.fixture
def settings(app, smtp):
    controller, _ = smtp
    return smtp_settings_for(app, controller)


def _people():
    from server.extensions import db

    cadre = create_user("cadre1", "field_cadre", "510104", "WG01")
    leader = create_user("leader1", "group_leader", "510104", "WG01")
    head = create_user("head_a", "district_head", "510104")
    coord = create_user("coord", "city_coordinator")
    for u, mail in ((cadre, "c1"), (leader, "l1"), (head, "head"), (coord, "coord")):
        u.email = f"{mail}@example.cn"
    db.session.commit()
    return cadre, leader, head, coord


def _at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), TZ).astimezone(UTC)


def _problem(db, cadre, district_id: int, group_id: int | None, day: date, category, tag):  # noqa: ANN001
    v = Visit(
        id=str(uuid.uuid4()),
        method="symposium",
        visited_at=_at(day, 8),
        district_id=district_id,
        work_group_id=group_id,
        workers_met=5,
    )
    p = Problem(
        id=str(uuid.uuid4()),
        visit_id=v.id,
        category=category,
        tag=tag,
        stage="enterprise",
        description="（测试）职工反映的问题",
        district_id=district_id,
        created_by_id=cadre.id,
        created_at=_at(day, 8),
    )
    db.session.add_all([v, p])
    db.session.flush()
    return p


def _send_all(db, settings, ids: list[int], now: datetime) -> Counter:  # noqa: ANN001
    out: Counter = Counter()
    for digest_id in ids + ids:  # every send task is delivered twice
        try:
            out[reminders.send_digest(db.session, settings, digest_id, now=now)] += 1
        except reminders.DigestBusy:
            out["busy"] += 1
    return out


def test_a_simulated_month_reminds_exactly_once(app, settings, smtp):
    from server.extensions import db

    cadre, leader, head, coord = _people()
    a = db.session.scalar(select(DistrictUnit.id).where(DistrictUnit.code == "510104"))
    wg = db.session.scalar(select(WorkGroup.id).where(WorkGroup.code == "WG01"))
    rules = deadlines.current_rules(settings)
    rng = random.Random(16)
    # The month's problems: (day raised, category, tag, with a work group, plan) where the
    # plan moves it to the government after some days, resolves it, or leaves it.
    specs = []
    for _ in range(40):
        specs.append(
            (
                START + timedelta(days=rng.randrange(30)),
                rng.choice(["wages", "safety", "employment", "housing", "schooling"]),
                rng.choice([None, None, "urgent", "hope", "worry"]),
                rng.random() < 0.8,
                rng.choice(["stay", "stay", "escalate", "resolve"]),
                rng.randrange(2, 14),
            )
        )
    created: dict[int, Problem] = {}
    clocks: dict[int, list[tuple[str, date, date, bool, int]]] = {}
    killed = None
    for n in range(DAYS):
        day = START + timedelta(days=n)
        # The day's field work: new problems, moves on the ladder.
        for i, (raised, category, tag, grouped, plan, after) in enumerate(specs):
            if raised == day:
                p = _problem(db, cadre, a, wg if grouped else None, day, category, tag)
                deadlines.start_clock(p, "enterprise", _at(day, 8), rules, wg if grouped else None)
                created[i] = p
                clocks[i] = [("enterprise", day, p.due_date, grouped, 0)]
            elif i in created and raised + timedelta(days=after) == day and plan != "stay":
                p = created[i]
                if plan == "escalate":
                    p.stage = "government"
                    deadlines.start_clock(p, "government", _at(day, 10), rules, None)
                    clocks[i].append(("government", day, p.due_date, False, 0))
                else:
                    p.stage, p.resolution = "resolved", "已协调解决"
                    p.resolved_at = _at(day, 10)
                    deadlines.start_clock(p, "resolved", _at(day, 10), rules, None)
                    clocks[i].append(("resolved", day, None, False, 0))
        db.session.commit()
        # Two beats fire every day (two schedulers), each sends what it planned.
        now = _at(day, 9)
        for beat in range(2):
            result = reminders.run_beat(db.session, settings, now + timedelta(minutes=beat))
            if n == 20 and beat == 0 and result["to_send"] and killed is None:
                # A worker claims the first digest and is killed before sending.
                killed = result["to_send"][0]
                db.session.execute(
                    ReminderDigest.__table__.update()
                    .where(ReminderDigest.id == killed)
                    .values(status="sending", sending_at=now, attempts=1)
                )
                db.session.commit()
                result["to_send"] = result["to_send"][1:]
            _send_all(db, settings, result["to_send"], now + timedelta(minutes=beat))
    # The killed sender's digest was taken over by the next beat once it was stale, and
    # sent once with the Message-ID fixed when it was planned.
    assert killed is not None
    lost = db.session.get(ReminderDigest, killed)
    db.session.refresh(lost)
    assert lost.status == "sent" and lost.attempts == 2

    # An independent recount from the clocks written down above.
    expected: Counter = Counter()
    last_day = START + timedelta(days=DAYS - 1)
    for history in clocks.values():
        for k, (stage, begun, due, grouped, _) in enumerate(history):
            if due is None:
                continue
            ended = history[k + 1][1] if k + 1 < len(history) else last_day + timedelta(days=1)
            active = [begun + timedelta(days=d) for d in range((ended - begun).days)]
            # the beat of the day the stage moved ran after the move
            active = [d for d in active if d != ended]
            period = (due - begun).days
            owners = 2 if stage == "enterprise" and grouped else 1  # cadre+leader / head
            above = 3 if stage == "enterprise" and grouped else 1  # + district head
            if any(0 <= (due - d).days <= rules.near_days for d in active):
                expected["near"] += owners
            if any(d > due for d in active):
                expected["overdue"] += above
            if any((d - due).days >= period for d in active):
                expected["escalated"] += 1
    got = Counter(
        dict(
            db.session.execute(
                select(ProblemReminder.kind, func.count()).group_by(ProblemReminder.kind)
            ).all()
        )
    )
    assert got == expected, (got, expected)
    # Every reminder went out in exactly one digest; one mail per digest; one digest per
    # user and day at most.
    assert db.session.scalar(select(func.count()).where(ProblemReminder.digest_id.is_(None))) == 0
    digests = db.session.scalars(select(ReminderDigest)).all()
    assert {d.status for d in digests} == {"sent"}
    _, rec = smtp
    ids = [m["Message-ID"] for m in rec.messages]
    assert len(ids) == len(set(ids)) == len(digests)
    assert sum(d.reminders for d in digests) == sum(expected.values())
    per_user_day = Counter((d.user_id, d.created_at.astimezone(TZ).date()) for d in digests)
    assert max(per_user_day.values()) == 1
    assert ids.count(lost.message_id) == 1
    mails = Counter(m["To"] for m in rec.messages)
    counts = reminders.counts(db.session)
    # The figures the report quotes.
    print(
        f"\nsimulated {DAYS} days, {len(specs)} problems: reminders {dict(got)}, "
        f"digests {len(digests)}, mails per recipient {dict(mails)}, counts {counts}"
    )
    assert got["near"] > 0 and got["overdue"] > 0 and got["escalated"] > 0
    assert set(mails) == {"c1@example.cn", "l1@example.cn", "head@example.cn", "coord@example.cn"}


def test_acknowledgements_in_the_app_and_from_the_mail(client, app, settings, smtp):
    from server.extensions import db

    cadre, leader, head, coord = _people()
    a = db.session.scalar(select(DistrictUnit.id).where(DistrictUnit.code == "510104"))
    wg = db.session.scalar(select(WorkGroup.id).where(WorkGroup.code == "WG01"))
    rules = deadlines.current_rules(settings)
    raised = START
    p = _problem(db, cadre, a, wg, raised, "wages", "urgent")
    deadlines.start_clock(p, "enterprise", _at(raised, 8), rules, wg)
    db.session.commit()
    now = _at(raised + timedelta(days=7))  # 5 days allowed: red for 2 days
    result = reminders.run_beat(db.session, settings, now)
    assert result["created"] == {"near": 0, "overdue": 3, "escalated": 0}
    for digest_id in result["to_send"]:
        assert reminders.send_digest(db.session, settings, digest_id, now=now) == "sent"
    _, rec = smtp
    head_mail = next(m for m in rec.messages if m["To"] == "head@example.cn")
    text = head_mail.get_body(("plain",)).get_content()
    assert "到期催办" in text and "工资类问题（最急）" in text and "已超期2天" in text
    assert "（测试）职工反映的问题" not in text  # no description in mail
    # The cadre acknowledges in the app.
    phone = Phone(client, "cadre1")
    mine = phone.get("/api/reminders").json
    assert mine["unacknowledged"] == 1 and mine["items"][0]["kind"] == "overdue"
    rid = mine["items"][0]["id"]
    other = db.session.scalar(select(ProblemReminder.id).where(ProblemReminder.user_id == head.id))
    assert (
        phone.client.post(f"/api/reminders/{other}/ack", headers=phone.headers).status_code == 404
    )
    r = phone.client.post(f"/api/reminders/{rid}/ack", headers=phone.headers)
    assert r.status_code == 200 and r.json["newly"] == 1
    assert phone.get("/api/reminders").json["unacknowledged"] == 0
    # The district head acknowledges from the mail: GET shows, POST records.
    link = re.search(r"确认收到：(\S+)", text).group(1)
    path = urlsplit(link).path
    fresh = app.test_client()
    page = fresh.get(path)
    assert page.status_code == 200 and "未确认" in page.get_data(as_text=True)
    row = db.session.scalar(select(ProblemReminder).where(ProblemReminder.user_id == head.id))
    db.session.refresh(row)
    assert row.acknowledged_at is None  # a prefetching scanner acknowledges nothing
    done = fresh.post(path).get_data(as_text=True)
    assert "已确认收到1件提醒" in done
    db.session.refresh(row)
    assert row.acknowledged_via == "mail" and row.acknowledged_at is not None
    assert fresh.get(path[:-4] + "abcd").status_code == 404
    # Acknowledged or not, the same state never reminds again; a new stage may.
    again = reminders.run_beat(db.session, settings, now + timedelta(days=1))
    assert sum(again["created"].values()) == 0
    p.stage = "government"
    deadlines.start_clock(p, "government", now + timedelta(days=1), rules, None)
    db.session.commit()
    # 10 days with the government (最急), due on the 18th day: the head is the owner.
    near = reminders.run_beat(db.session, settings, _at(raised + timedelta(days=16)))
    assert near["created"] == {"near": 1, "overdue": 0, "escalated": 0}
    late = reminders.run_beat(db.session, settings, _at(raised + timedelta(days=19)))
    assert late["created"] == {"near": 0, "overdue": 1, "escalated": 0}


def test_two_beats_at_the_same_moment_remind_once(app, settings):
    """Two planners in two threads (two sessions) at once: the UNIQUE key and the
    conditional digest UPDATE keep every reminder and digest single."""
    from server.extensions import db

    cadre, *_ = _people()
    a = db.session.scalar(select(DistrictUnit.id).where(DistrictUnit.code == "510104"))
    wg = db.session.scalar(select(WorkGroup.id).where(WorkGroup.code == "WG01"))
    rules = deadlines.current_rules(settings)
    for k in range(30):
        p = _problem(db, cadre, a, wg if k % 2 else None, START, "employment", None)
        deadlines.start_clock(p, "enterprise", _at(START, 8), rules, wg if k % 2 else None)
    db.session.commit()
    now = _at(START + timedelta(days=40))
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def beat() -> None:
        with app.app_context():
            try:
                barrier.wait()
                reminders.run_beat(db.session, settings, now)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    db.session.expire_all()
    # 15 with a work group: overdue to cadre, leader, head, escalated to coord (4 each);
    # 15 without: overdue to the head, escalated to coord (2 each). Nothing near: the
    # beat runs only on day 40.
    kinds = Counter(k for (k,) in db.session.execute(select(ProblemReminder.kind)))
    assert kinds == {"overdue": 15 * 3 + 15, "escalated": 30}
    in_digests = db.session.scalar(select(func.sum(ReminderDigest.reminders)))
    assert in_digests == 90
    users = Counter(u for (u,) in db.session.execute(select(ReminderDigest.user_id)))
    assert max(users.values()) == 1  # one digest per user


def test_district_heads_digest_screenshot(app, settings, playwright_instance, chromium_path):
    """The mail a district head gets, as a phone's mail app shows it (looked at)."""
    from server.extensions import db

    cadre, leader, head, coord = _people()
    a = db.session.scalar(select(DistrictUnit.id).where(DistrictUnit.code == "510104"))
    wg = db.session.scalar(select(WorkGroup.id).where(WorkGroup.code == "WG01"))
    rules = deadlines.current_rules(settings)
    for k, (category, tag) in enumerate(
        [("wages", "urgent"), ("safety", None), ("employment", "worry")]
    ):
        p = _problem(db, cadre, a, wg if k else None, START, category, tag)
        deadlines.start_clock(p, "enterprise", _at(START, 8), rules, wg if k else None)
        p.created_at = _at(START)
        if k == 2:
            p.stage = "government"
            deadlines.start_clock(p, "government", _at(START, 9), rules, None)
        db.session.commit()
    now = _at(START + timedelta(days=27))
    reminders.run_beat(db.session, settings, now)
    digest = db.session.scalar(select(ReminderDigest).where(ReminderDigest.user_id == head.id))
    subject, text, html = reminders.render_digest(db.session, settings, digest)
    assert subject.startswith("【问题督办】") and "到期催办" in subject
    out = Path(__file__).resolve().parents[1] / "screenshots" / "reminders-digest-district-head.png"
    browser = playwright_instance.chromium.launch(
        executable_path=chromium_path,
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    )
    try:
        page = browser.new_page(viewport={"width": 412, "height": 800})
        page.set_content(html)
        assert page.locator("text=已阅，确认收到").count() == 1
        page.screenshot(path=str(out), full_page=True)
    finally:
        browser.close()
    assert out.stat().st_size > 10_000
