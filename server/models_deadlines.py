"""Tables of the deadline reminders (督办提醒): one row per reminder owed, a per-user
digest mail that carries them, and the recipients' acknowledgements; and the lookups
of the public status page (查询码), for its rate limit.

Imported at the end of server/models.py so the tables register with the shared metadata.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.extensions import db
from server.models import UTCDateTime, utcnow

REMINDER_KINDS = ("near", "overdue", "escalated")
"""临近提醒 (blue: the owner), 到期催办 (red: owner, group leader, district head),
升级督办 (red for a second period: the city coordination team)."""
DIGEST_STATUSES = ("pending", "sending", "sent", "failed", "skipped")


class ProblemReminder(db.Model):
    """A reminder owed to one user about one problem in one state.

    `state_key` names the problem's stage clock (stage and when it started), so the
    UNIQUE key (problem, state, kind, user) makes each reminder happen once per problem
    and state change, however often the beat runs; a new stage starts a new clock and
    so may remind again.
    """

    __tablename__ = "problem_reminders"
    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[str] = mapped_column(ForeignKey("problems.id"), index=True)
    state_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # why this user: owner | group_leader | district_head | city
    role: Mapped[str] = mapped_column(String(16))
    district_id: Mapped[int] = mapped_column(ForeignKey("district_units.id"))
    stage: Mapped[str] = mapped_column(String(12))
    due_date_text: Mapped[str | None] = mapped_column(String(10))
    days_overdue: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    digest_id: Mapped[int | None] = mapped_column(
        ForeignKey("reminder_digests.id", ondelete="SET NULL"), index=True
    )
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_via: Mapped[str | None] = mapped_column(String(8))  # app | mail | web
    __table_args__ = (
        UniqueConstraint(
            "problem_id", "state_key", "kind", "user_id", name="uq_problem_reminders_key"
        ),
        Index("ix_problem_reminders_user", "user_id", "digest_id"),
    )


class ReminderDigest(db.Model):
    """One mail to one user carrying every reminder owed to them when it was planned.

    Sent as the briefings are (worker/briefing/deliver.py): claimed with a conditional
    UPDATE, Message-ID fixed before sending, a stale `sending` taken over with the same
    Message-ID.
    """

    __tablename__ = "reminder_digests"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    message_id: Mapped[str] = mapped_column(String(200))
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sending_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_reminder_digests_status", "status", "created_at"),)


class StatusLookup(db.Model):
    """One lookup of the public status page (查询码), by a keyed hash of the client's
    address, kept for the rate limit's window only."""

    __tablename__ = "status_lookups"
    id: Mapped[int] = mapped_column(primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    __table_args__ = (Index("ix_status_lookups_client", "client", "at"),)
