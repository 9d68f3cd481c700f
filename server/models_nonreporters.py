"""Tables of the reminders to non-reporters (催报): one batch per click, one row per person.

Imported at the end of server/models.py so the tables register with the shared metadata.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.extensions import db
from server.models import UTCDateTime, utcnow

REMINDER_STATUSES = ("pending", "sending", "sent", "failed", "no_email")


class ReportReminderBatch(db.Model):
    """One click on 催报: who sent it, for which period, under the form's one-time key
    (a double click or a resent form creates nothing twice)."""

    __tablename__ = "report_reminder_batches"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    period_kind: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # exclusive


class ReportReminder(db.Model):
    """A reminder to one cadre: what is missing, and what became of it (sent, opened,
    reported afterwards). Sent exactly once by the worker (claim, send, mark)."""

    __tablename__ = "report_reminders"
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("report_reminder_batches.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # what is missing, as codes with numbers: [{"code": "no_visit"}, ...]
    missing: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    token: Mapped[str] = mapped_column(String(43), unique=True)
    message_id: Mapped[str] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sending_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        UniqueConstraint("batch_id", "user_id", name="uq_report_reminders_batch_user"),
    )
