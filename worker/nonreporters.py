"""Sending the reminders of a 催报 click, each exactly once (server/nonreporters.py).

The same three steps as the briefings (worker/briefing/deliver.py): claim a row with
one conditional UPDATE (pending/failed, or a stale sending → sending) committed before
SMTP is spoken to, send with the Message-ID chosen when the row was made, then mark it
sent. Two workers never both hold a claim; a worker killed after the claim leaves the
row `sending`, and after BRIEFING_STALE_SECONDS the sweep sends it again with the same
Message-ID. The mail names what is missing and links to /r/<token>, which records that
the reminder was opened and opens the field app.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime, timedelta

from celery import shared_task
from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from config.settings import Settings
from server.extensions import db
from server.models import User
from server.models_nonreporters import ReportReminder, ReportReminderBatch
from worker.briefing import mail
from worker.celery_app import TASK_DEFAULTS

log = logging.getLogger(__name__)

MISSING_TEXT = {
    "no_visit": "本期您还没有走访记录",
}


def _claim(session: Session, reminder_id: int, now: datetime, stale: timedelta) -> bool:
    result = session.execute(
        update(ReportReminder)
        .where(
            ReportReminder.id == reminder_id,
            or_(
                ReportReminder.status.in_(("pending", "failed")),
                (ReportReminder.status == "sending") & (ReportReminder.sending_at < now - stale),
            ),
        )
        .values(status="sending", sending_at=now, attempts=ReportReminder.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def _finish(session: Session, reminder_id: int, status: str, error: str | None = None) -> None:
    values: dict[str, object] = {"status": status, "last_error": error}
    if status == "sent":
        values["sent_at"] = datetime.now(UTC)
    session.execute(
        update(ReportReminder)
        .where(ReportReminder.id == reminder_id, ReportReminder.status == "sending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def open_url(settings: Settings, token: str) -> str:
    return f"{settings.PUBLIC_URL.rstrip('/')}/r/{token}"


def reminder_text(
    user: User, batch: ReportReminderBatch, missing: list, url: str
) -> tuple[str, str, str]:
    """(subject, text, html) of one reminder: names the period and what is missing; no
    personal data of anyone else."""
    last = batch.period_end - timedelta(days=1)
    period = f"{batch.period_start:%Y年%m月%d日}至{last:%m月%d日}"
    lines = [MISSING_TEXT.get(m.get("code"), m.get("code", "")) for m in missing] or [
        MISSING_TEXT["no_visit"]
    ]
    subject = f"【基层走访】催报提醒：{period}"
    text = (
        f"{user.display_name}，您好：\n\n{period}：\n"
        + "".join(f"- {line}\n" for line in lines)
        + f"\n请打开基层走访应用记录并同步：{url}\n\n（本邮件由基层走访系统发送，无需回复。）\n"
    )
    body = (
        f"<p>{html.escape(user.display_name)}，您好：</p><p>{html.escape(period)}：</p><ul>"
        + "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        + f'</ul><p><a href="{html.escape(url)}">打开基层走访应用</a>记录并同步。</p>'
        + "<p style='color:#777'>本邮件由基层走访系统发送，无需回复。</p>"
    )
    return subject, text, body


def send_reminder(session: Session, settings: Settings, reminder_id: int) -> str:
    """Send one reminder if it is due; returns what happened."""
    now = datetime.now(UTC)
    if not _claim(session, reminder_id, now, timedelta(seconds=settings.BRIEFING_STALE_SECONDS)):
        return "skipped"
    row = session.get(ReportReminder, reminder_id)
    user = session.get(User, row.user_id)
    batch = session.get(ReportReminderBatch, row.batch_id)
    if not user or not user.email:
        _finish(session, reminder_id, "no_email")
        return "no_email"
    if not settings.SMTP_HOST and mail.already_in_outbox(settings, row.message_id):
        _finish(session, reminder_id, "sent")  # the earlier attempt wrote it, then died
        return "sent"
    subject, text, body = reminder_text(user, batch, row.missing, open_url(settings, row.token))
    msg = mail.build_message(
        settings,
        to=user.email,
        subject=subject,
        text=text,
        html=body,
        message_id=row.message_id,
    )
    try:
        mail.deliver(settings, msg)
    except Exception as exc:  # noqa: BLE001 - recorded on the row; the sweep retries
        _finish(session, reminder_id, "failed", type(exc).__name__)
        log.warning("reminder not sent", extra={"reminder_id": reminder_id,
                                               "error": type(exc).__name__})  # fmt: skip
        return "failed"
    _finish(session, reminder_id, "sent")
    return "sent"


def send_batch(session: Session, settings: Settings, batch_id: int | None = None) -> dict:
    """Send every due reminder (of one batch, or all): pending, failed, stale sending."""
    query = select(ReportReminder.id).where(
        ReportReminder.status.in_(("pending", "failed", "sending"))
    )
    if batch_id is not None:
        query = query.where(ReportReminder.batch_id == batch_id)
    ids = list(session.scalars(query.order_by(ReportReminder.id)))
    session.rollback()
    outcomes: dict[str, int] = {}
    for rid in ids:
        out = send_reminder(session, settings, rid)
        outcomes[out] = outcomes.get(out, 0) + 1
    return outcomes


@shared_task(name="worker.tasks.report_reminders_send", **TASK_DEFAULTS)
def report_reminders_send(batch_id: int | None = None) -> dict:
    """Send a 催报 click's reminders (or, with no batch, every due one: the sweep)."""
    outcomes = send_batch(db.session, current_app.config["FV"], batch_id)
    log.info("report reminders", extra={"batch_id": batch_id, "outcomes": outcomes})
    return outcomes
