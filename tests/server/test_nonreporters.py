"""催报 (issue 17, item 4): non-reporters of a period at its Asia/Shanghai boundaries,
one click reminding each selected cadre exactly once with two workers, the link
recording that it was opened, and the page showing who reported afterwards."""

from __future__ import annotations

import threading
import uuid
from datetime import date

import pytest
from sqlalchemy import func, select

from tests.briefing.smtp import smtp_settings_for, start_smtp
from tests.conftest import PASSWORD, Phone, create_user, visit_fields


@pytest.fixture
def smtp():
    controller, recorder = start_smtp()
    yield controller, recorder
    controller.stop()


def web_login(client, username: str) -> None:  # noqa: ANN001
    from flask import g

    g.pop("web_user", None)  # the test's app context outlives a request
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code in (302, 303)


def people(db_session) -> None:  # noqa: ANN001
    for name, email in (("cadre1", "c1@example.cn"), ("cadre2", "c2@example.cn"), ("cadre3", None)):
        u = create_user(name, "field_cadre", "510104", "WG01")
        u.email = email
    create_user("other", "field_cadre", "510105", "WG02").email = "o@example.cn"
    create_user("head", "district_head", "510104")
    create_user("coord", "city_coordinator")
    db_session.commit()


def visit_at(phone: Phone, when: str) -> None:
    r = phone.push(
        [
            phone.mutation(
                "create",
                "visit",
                str(uuid.uuid4()),
                visit_fields(visited_at=when, work_group_code="WG01"),
            )
        ]
    )
    assert r.status_code == 200 and r.json["results"][0]["status"] == "applied", r.json


def test_non_reporters_at_the_week_boundaries(app, db_session):
    from server.nonreporters import non_reporters
    from worker.briefing.compute import period_containing

    people(db_session)
    client = app.test_client()
    # Sunday 23:30 Beijing time belongs to the week of 2 March; Monday 00:10 to the next
    visit_at(Phone(client, "cadre1"), "2026-03-08T23:30:00+08:00")
    visit_at(Phone(client, "cadre2"), "2026-03-09T00:10:00+08:00")
    week1 = period_containing("week", date(2026, 3, 4), date(2026, 3, 1), "Asia/Shanghai")
    week2 = period_containing("week", date(2026, 3, 10), date(2026, 3, 1), "Asia/Shanghai")
    names = lambda found: sorted(u.username for u in found.cadres)  # noqa: E731
    assert names(non_reporters(db_session, week1.bounds(), None)) == ["cadre2", "cadre3", "other"]
    assert names(non_reporters(db_session, week2.bounds(), None)) == ["cadre1", "cadre3", "other"]
    district = frozenset(
        {db_session.get(__import__("server.models", fromlist=["x"]).User, 1).district_id}
    )
    found = non_reporters(db_session, week1.bounds(), district)
    assert names(found) == ["cadre2", "cadre3"] and (found.reported, found.total) == (1, 3)
    groups = [g.code for g in non_reporters(db_session, week1.bounds(), None).groups]
    assert "WG01" not in groups and "WG02" in groups


def test_one_click_reminds_once_and_follows_up(app, db_session, smtp):
    from server.models_nonreporters import ReportReminder, ReportReminderBatch
    from worker.nonreporters import send_batch

    controller, recorder = smtp
    people(db_session)
    client = app.test_client()
    visit_at(Phone(client, "cadre1"), "2026-03-04T10:00:00+08:00")

    web = app.test_client()
    web_login(web, "head")
    html = web.get("/nonreporters?period=week&day=2026-03-04").get_data(as_text=True)
    assert "cadre2" in html and "cadre3" in html and "未登记，无法发送" in html
    assert "other" not in html  # another district's cadre is not the head's to remind
    assert 'value="cadre1"' not in html
    key = html.split('name="key" value="', 1)[1].split('"', 1)[0]
    csrf = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    ids = {
        u.username: u.id
        for u in db_session.scalars(select(__import__("server.models", fromlist=["x"]).User))
    }
    form = {
        "csrf_token": csrf,
        "key": key,
        "period": "week",
        "day": "2026-03-04",
        # the other district's cadre and a cadre who reported are ignored
        "user": [str(ids["cadre2"]), str(ids["cadre3"]), str(ids["other"]), str(ids["cadre1"])],
    }
    assert web.post("/nonreporters/remind", data=form).status_code in (302, 303)
    assert web.post("/nonreporters/remind", data=form).status_code in (302, 303)  # double click
    assert db_session.scalar(select(func.count()).select_from(ReportReminderBatch)) == 1
    rows = {r.user_id: r for r in db_session.scalars(select(ReportReminder))}
    assert set(rows) == {ids["cadre2"], ids["cadre3"]}
    assert rows[ids["cadre3"]].status == "no_email"

    # two workers at once: one mail

    settings = smtp_settings_for(app, controller)
    outcomes: list[dict] = []

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with app.app_context():
                from server.extensions import db

                outcomes.append(send_batch(db.session, settings))
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [], errors
    assert sum(o.get("sent", 0) for o in outcomes) == 1, outcomes
    assert len(recorder.messages) == 1
    msg = recorder.messages[0]
    assert msg["To"] == "c2@example.cn" and "催报" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    assert "还没有走访记录" in text and "cadre1" not in text
    db_session.expire_all()
    reminder = db_session.get(ReportReminder, rows[ids["cadre2"]].id)
    assert reminder.status == "sent" and reminder.sent_at is not None
    assert f"https://fv.example.cn/r/{reminder.token}" in text
    # a later sweep sends nothing again
    assert send_batch(db_session, settings).get("sent", 0) == 0 and len(recorder.messages) == 1

    # the link: opened, then the field app
    r = app.test_client().get(f"/r/{reminder.token}")
    assert r.status_code in (302, 303) and r.headers["Location"].endswith("/")
    assert app.test_client().get("/r/unknown-token").status_code == 404
    db_session.expire_all()
    assert db_session.get(ReportReminder, reminder.id).opened_at is not None

    # the cadre reports afterwards: the page says so
    visit_at(Phone(client, "cadre2"), "2026-03-05T10:00:00+08:00")
    web_login(web, "head")
    html = web.get("/nonreporters?period=week&day=2026-03-04").get_data(as_text=True)
    batch_table = html.split('class="data batch"', 1)[1]
    assert "已发送" in batch_table and "无邮箱" in batch_table
    assert batch_table.count("<td>是</td>") == 1  # cadre2 reported afterwards; cadre3 not


def test_the_remind_form_refuses_bad_input(app, db_session):
    people(db_session)
    web = app.test_client()
    web_login(web, "coord")
    html = web.get("/nonreporters").get_data(as_text=True)
    csrf = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert web.get("/nonreporters?period=year").status_code == 400
    assert web.get("/nonreporters?day=2026-13-01").status_code == 400
    r = web.post(
        "/nonreporters/remind", data={"csrf_token": csrf, "key": "short", "period": "week"}
    )
    assert r.status_code == 400
    r = web.post(
        "/nonreporters/remind",
        data={"csrf_token": csrf, "key": "k" * 20, "period": "week", "day": "3 March"},
    )
    assert r.status_code == 400
    web_login(web, "cadre1")
    assert web.get("/nonreporters").status_code == 403
