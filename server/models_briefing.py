"""Tables of the district briefings: who receives them and what was sent to whom.

Imported at the end of server/models.py so the tables register with the shared metadata.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.extensions import db
from server.models import DistrictUnit, UTCDateTime, utcnow

CITY_SCOPE = "city"
"""The `district` value of the city-wide briefing (the coordination team's)."""

DELIVERY_STATUSES = ("pending", "sending", "sent", "failed", "skipped")


class BriefingRecipient(db.Model):
    """A mailbox that receives one district's briefing (or the city-wide one)."""

    __tablename__ = "briefing_recipients"
    id: Mapped[int] = mapped_column(primary_key=True)
    # A district unit code, or CITY_SCOPE for the coordination team's city-wide briefing.
    district: Mapped[str] = mapped_column(String(12), index=True)
    email: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(64), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    __table_args__ = (UniqueConstraint("district", "email", name="uq_briefing_recipients"),)


class BriefingDelivery(db.Model):
    """One briefing to one recipient; the unique key is what makes sending happen once.

    `period_start` is the first day of a week or month; for a campaign-to-date briefing
    it is the cut-off day (the last day counted), since the campaign start never moves.
    """

    __tablename__ = "briefing_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    district: Mapped[str] = mapped_column(String(12))
    period_kind: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[date] = mapped_column(Date)
    recipient: Mapped[str] = mapped_column(String(200))
    recipient_id: Mapped[int | None] = mapped_column(
        ForeignKey("briefing_recipients.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(10), default="pending")
    message_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sending_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # A failed row is sent again by the sweep from this time on (the back-off doubles per
    # attempt from BRIEFING_RETRY_SECONDS); None when it failed for good (a refused
    # recipient, or BRIEFING_MAX_ATTEMPTS reached): then only an admin's 重新发送 helps.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint(
            "district",
            "period_kind",
            "period_start",
            "recipient",
            name="uq_briefing_deliveries_key",
        ),
        Index("ix_briefing_deliveries_status", "status", "updated_at"),
    )


class BriefingRender(db.Model):
    """A period's briefing e-mail of one district (or the city), rendered once.

    The first send of a period computes every briefing of that period in one pass and
    stores them here; every recipient's mail is then this text with their own
    unsubscribe link put in (`UNSUBSCRIBE_MARK`), so 21 mails cost one computation and
    all recipients of a period read the same numbers.
    """

    __tablename__ = "briefing_renders"
    id: Mapped[int] = mapped_column(primary_key=True)
    district: Mapped[str] = mapped_column(String(12))
    period_kind: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[date] = mapped_column(Date)
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    __table_args__ = (
        UniqueConstraint("district", "period_kind", "period_start", name="uq_briefing_renders_key"),
    )


def district_unit(session, code: str) -> DistrictUnit | None:  # noqa: ANN001
    """The district unit with this code (None for unknown codes and CITY_SCOPE)."""
    from sqlalchemy import select

    return session.scalar(select(DistrictUnit).where(DistrictUnit.code == code))
