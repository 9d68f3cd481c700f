"""Briefing emails through a real SMTP server: structure, numbers, masking, exactly-once."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models_briefing import CITY_SCOPE, BriefingDelivery, BriefingRecipient
from tests.briefing.fixture_data import EXPECTED_A, SENSITIVE, WEEK, A, seed
from tests.briefing.smtp import smtp_settings_for, start_smtp
from worker.briefing import mail
from worker.briefing.compute import period_containing
from worker.briefing.deliver import DeliveryBusy, plan_deliveries, send_delivery


@pytest.fixture
def smtp():
    controller, recorder = start_smtp()
    yield controller, recorder
    controller.stop()


@pytest.fixture
def smtp_settings(app, smtp):
    controller, _ = smtp
    return smtp_settings_for(app, controller)


def _recipients() -> None:
    db.session.add_all(
        [
            BriefingRecipient(district=A, email="head@a.example", name="区总工会"),
            BriefingRecipient(district=CITY_SCOPE, email="coord@city.example"),
        ]
    )
    db.session.commit()


def _period():
    return period_containing("week", WEEK, date(2026, 1, 1))


def _send_all(settings) -> list[str]:
    plan = plan_deliveries(db.session, settings, _period())
    return [send_delivery(db.session, settings, i) for i in plan.to_send]


def test_email_structure_numbers_and_masking(db_session, smtp, smtp_settings):
    seed()
    _recipients()
    assert _send_all(smtp_settings) == ["sent", "sent"]
    _, rec = smtp
    assert len(rec.messages) == 2
    msg = next(m for m in rec.messages if m["To"] == "head@a.example")
    raw = next(r for r in rec.raw if b"head@a.example" in r)
    # Subject: Chinese, RFC 2047 encoded on the wire, decodes back.
    subject_line = re.search(rb"^Subject: (.*(?:\r?\n[ \t].*)*)", raw, re.M).group(1)
    assert subject_line.startswith(b"=?utf-8?") and subject_line.isascii()
    assert msg["Subject"] == "【走访简报】锦江区周报：2026年第10周（3月2日—3月8日）"
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert msg["Message-ID"] and msg["List-Unsubscribe"].startswith("<https://fv.example.cn/")
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    # Numbers written into the fixture appear in the mail.
    assert f"走访：{EXPECTED_A['visits']}次" in text
    assert f"面对面接触职工：{EXPECTED_A['workers_met']}人" in text
    assert f"走访企业数：{EXPECTED_A['enterprises']}家" in text
    assert "干部参与率：75%（3/4人）" in text
    assert "农民工：15人" in text and "困难职工：4人" in text
    assert "本期收集3个，解决1个，期末尚未解决2个。" in text
    assert "工资：2个" in text
    assert "入户慰问2户，发放慰问金800.00元。" in text
    assert "全市排名：第1名" in text
    assert "最久未解决：就业类问题" in text
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "https://fv.example.cn/briefings/510104?period=week&amp;start=2026-03-02" in html
    # No personal data of needy workers anywhere, not even in problem descriptions.
    for secret in SENSITIVE:
        assert secret not in text and secret not in html, secret
    assert "王**" not in html  # not even masked: the email holds only counts and sums
    city = next(m for m in rec.messages if m["To"] == "coord@city.example")
    assert "全市走访7次" in city.get_body(("plain",)).get_content()


def test_mask_name():
    from worker.briefing.render import mask_name

    assert mask_name("王小明") == "王**"
    assert mask_name("李四") == "李*"
    assert mask_name("") == ""


def test_exactly_once_under_duplicate_beat_and_retries(db_session, smtp, smtp_settings):
    seed()
    _recipients()
    first = plan_deliveries(db.session, smtp_settings, _period())
    second = plan_deliveries(db.session, smtp_settings, _period())  # beat fired twice
    assert first.created == 2 and second.created == 0
    assert first.to_send == second.to_send
    for i in first.to_send + second.to_send:  # every enqueued task runs
        send_delivery(db.session, smtp_settings, i)
    for i in first.to_send:  # and a retry arrives late
        assert send_delivery(db.session, smtp_settings, i) == "already_sent"
    _, rec = smtp
    assert sorted(m["To"] for m in rec.messages) == ["coord@city.example", "head@a.example"]
    rows = db.session.scalars(select(BriefingDelivery)).all()
    assert {r.status for r in rows} == {"sent"} and all(r.message_id for r in rows)
    assert {m["Message-ID"] for m in rec.messages} == {r.message_id for r in rows}


def test_transient_failure_retries_then_sends_once(db_session, smtp, smtp_settings):
    seed()
    db.session.add(BriefingRecipient(district=A, email="head@a.example"))
    db.session.commit()
    _, rec = smtp
    rec.fail_next = 1
    plan = plan_deliveries(db.session, smtp_settings, _period())
    (delivery_id,) = plan.to_send
    with pytest.raises(Exception, match="451"):
        send_delivery(db.session, smtp_settings, delivery_id)
    row = db.session.get(BriefingDelivery, delivery_id)
    db.session.refresh(row)
    assert row.status == "failed" and "451" in row.last_error
    assert send_delivery(db.session, smtp_settings, delivery_id) == "sent"
    assert len(rec.messages) == 1


def test_crash_mid_send_is_taken_over_only_when_stale(db_session, smtp, smtp_settings):
    seed()
    db.session.add(BriefingRecipient(district=A, email="head@a.example"))
    db.session.commit()
    (delivery_id,) = plan_deliveries(db.session, smtp_settings, _period()).to_send
    row = db.session.get(BriefingDelivery, delivery_id)
    # A worker claimed the row and died: it stays 'sending'.
    now = datetime.now(UTC)
    row.status, row.sending_at, row.attempts = "sending", now, 1
    db.session.commit()
    with pytest.raises(DeliveryBusy):  # fresh claim: a redelivered task waits
        send_delivery(db.session, smtp_settings, delivery_id, now=now + timedelta(seconds=5))
    _, rec = smtp
    assert rec.messages == []
    later = now + timedelta(seconds=smtp_settings.BRIEFING_STALE_SECONDS + 1)
    assert send_delivery(db.session, smtp_settings, delivery_id, now=later) == "sent"
    assert len(rec.messages) == 1 and rec.messages[0]["Message-ID"] == row.message_id


def test_file_outbox_without_smtp(db_session, app):
    seed()
    db.session.add(BriefingRecipient(district=A, email="head@a.example"))
    db.session.commit()
    settings = app.config["FV"]
    assert not settings.SMTP_HOST
    (delivery_id,) = plan_deliveries(db.session, settings, _period()).to_send
    assert send_delivery(db.session, settings, delivery_id) == "sent"
    files = list(mail.outbox_dir(settings).glob("*.eml"))
    row = db.session.get(BriefingDelivery, delivery_id)
    assert any(f.name == mail._outbox_file(settings, row.message_id).name for f in files)
    # A crash after writing the file: the takeover sees the file and does not write again.
    row.status, row.sending_at = "sending", datetime(2020, 1, 1, tzinfo=UTC)
    db.session.commit()
    before = len(list(mail.outbox_dir(settings).glob("*.eml")))
    assert send_delivery(db.session, settings, delivery_id) == "sent"
    assert len(list(mail.outbox_dir(settings).glob("*.eml"))) == before


def test_unsubscribe_token_roundtrip(app):
    settings = app.config["FV"]
    token = mail.unsubscribe_token(settings, 7, "Head@A.example")
    assert mail.read_unsubscribe_token(settings, token) == (7, "head@a.example")
    assert mail.read_unsubscribe_token(settings, token[:-2] + "xx") is None
