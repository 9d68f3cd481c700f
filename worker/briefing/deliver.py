"""Exactly-once sending of briefings: a delivery row per (district, period, recipient).

1. `plan_deliveries` inserts one row per recipient under a UNIQUE key, so a beat that
   fires twice, or two schedulers, create each row once. The Message-ID is chosen here.
2. `send_delivery` claims a row with one conditional UPDATE (pending/failed → sending)
   and commits before talking to SMTP: two workers never both hold the claim.
3. After the server accepted the message the row becomes `sent` in a second commit.

A worker that dies between 2 and 3 leaves the row `sending`; after
BRIEFING_STALE_SECONDS another attempt takes it over and sends again with the same
Message-ID (with the file outbox it sees the file and just marks the row sent). See
docs/briefings.md for the remaining window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config.settings import Settings
from server.models_briefing import CITY_SCOPE, BriefingDelivery, BriefingRecipient
from worker.briefing import mail
from worker.briefing.compute import Period, build_all, period_containing
from worker.briefing.render import render_city_email, render_district_email

log = logging.getLogger(__name__)


class DeliveryBusy(Exception):
    """Another attempt holds the claim and is not stale yet: try again after `retry_in`."""

    def __init__(self, delivery_id: int, retry_in: float):
        super().__init__(f"delivery {delivery_id} is being sent; retry in {retry_in:.0f}s")
        self.retry_in = retry_in


@dataclass
class PlanResult:
    """What a scheduling run did: rows it created and rows that still need sending."""

    created: int
    to_send: list[int]


def period_of(row: BriefingDelivery, settings: Settings) -> Period:
    """The period a delivery row reports on."""
    campaign = date.fromisoformat(settings.CAMPAIGN_START)
    return period_containing(row.period_kind, row.period_start, campaign, settings.TIMEZONE)


def plan_deliveries(
    session: Session, settings: Settings, period: Period, districts: list[str] | None = None
) -> PlanResult:
    """Create the delivery rows of a period for every subscribed recipient (idempotent).

    `districts` limits the run to some district codes (and/or CITY_SCOPE).
    """
    query = select(BriefingRecipient).where(
        BriefingRecipient.active.is_(True), BriefingRecipient.unsubscribed_at.is_(None)
    )
    if districts is not None:
        query = query.where(BriefingRecipient.district.in_(districts))
    created = 0
    for r in session.scalars(query.order_by(BriefingRecipient.id)).all():
        row = BriefingDelivery(
            district=r.district,
            period_kind=period.kind,
            period_start=period.key_date,
            recipient=r.email.lower(),
            recipient_id=r.id,
            status="pending",
            message_id=mail.new_message_id(settings),
        )
        try:
            # A savepoint per row: a duplicate (the key exists) rolls back only itself.
            with session.begin_nested():
                session.add(row)
            created += 1
        except IntegrityError:
            pass
    session.commit()
    to_send = list(
        session.scalars(
            select(BriefingDelivery.id)
            .where(
                BriefingDelivery.period_kind == period.kind,
                BriefingDelivery.period_start == period.key_date,
                BriefingDelivery.status == "pending",
            )
            .order_by(BriefingDelivery.id)
        )
    )
    return PlanResult(created, to_send)


def _claim(session: Session, delivery_id: int, now: datetime, stale: timedelta) -> bool:
    """pending/failed (or a stale sending) → sending, in its own committed transaction."""
    result = session.execute(
        update(BriefingDelivery)
        .where(
            BriefingDelivery.id == delivery_id,
            or_(
                BriefingDelivery.status.in_(("pending", "failed")),
                (BriefingDelivery.status == "sending")
                & (BriefingDelivery.sending_at < now - stale),
            ),
        )
        .values(
            status="sending", sending_at=now, attempts=BriefingDelivery.attempts + 1, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def _finish(session: Session, delivery_id: int, status: str, error: str | None = None) -> None:
    now = datetime.now(UTC)
    values: dict[str, object] = {"status": status, "last_error": error, "updated_at": now}
    if status == "sent":
        values["sent_at"] = now
    session.execute(
        update(BriefingDelivery)
        .where(BriefingDelivery.id == delivery_id, BriefingDelivery.status == "sending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def render_for(
    session: Session, settings: Settings, row: BriefingDelivery, recipient: BriefingRecipient | None
) -> tuple[str, str, str, str | None]:
    """(subject, text, html, unsubscribe URL) of a delivery."""
    period = period_of(row, settings)
    unsubscribe = (
        mail.unsubscribe_url(settings, recipient.id, recipient.email)
        if recipient is not None
        else None
    )
    url = mail.web_url(settings, row.district, period)
    city, by_code = build_all(session, period)
    if row.district == CITY_SCOPE:
        subject, text, html = render_city_email(city, url, unsubscribe)
    else:
        briefing = by_code.get(row.district)
        if briefing is None:
            raise mail.PermanentSendError(f"unknown district {row.district}")
        subject, text, html = render_district_email(briefing, url, unsubscribe)
    return subject, text, html, unsubscribe


def send_delivery(
    session: Session, settings: Settings, delivery_id: int, now: datetime | None = None
) -> str:
    """Send one delivery if nobody has; returns sent | already_sent | skipped | failed.

    Raises DeliveryBusy when another attempt holds a fresh claim, and re-raises
    transient SMTP errors (after recording them) so the caller can retry with backoff.
    """
    now = now or datetime.now(UTC)
    stale = timedelta(seconds=settings.BRIEFING_STALE_SECONDS)
    if not _claim(session, delivery_id, now, stale):
        row = session.get(BriefingDelivery, delivery_id)
        if row is None:
            return "missing"
        if row.status == "sending":
            sending_at = row.sending_at or now
            raise DeliveryBusy(delivery_id, max(1.0, (sending_at + stale - now).total_seconds()))
        return "already_sent" if row.status == "sent" else row.status
    row = session.get(BriefingDelivery, delivery_id)
    assert row is not None and row.message_id
    session.refresh(row)
    recipient = session.get(BriefingRecipient, row.recipient_id) if row.recipient_id else None
    if recipient is not None and (recipient.unsubscribed_at is not None or not recipient.active):
        _finish(session, delivery_id, "skipped", "recipient unsubscribed before sending")
        return "skipped"
    if row.attempts > 1 and mail.already_in_outbox(settings, row.message_id):
        # A previous attempt wrote the file and died before recording it.
        _finish(session, delivery_id, "sent")
        return "sent"
    try:
        subject, text, html, unsubscribe = render_for(session, settings, row, recipient)
        msg = mail.build_message(
            settings,
            to=row.recipient,
            subject=subject,
            text=text,
            html=html,
            message_id=row.message_id,
            unsubscribe=unsubscribe,
        )
        session.rollback()  # no transaction stays open while SMTP talks
        where = mail.deliver(settings, msg)
    except mail.PermanentSendError as exc:
        session.rollback()
        _finish(session, delivery_id, "failed", f"permanent: {exc}"[:2000])
        log.warning("briefing refused", extra={"delivery_id": delivery_id})
        return "failed"
    except Exception as exc:
        session.rollback()
        _finish(session, delivery_id, "failed", f"{type(exc).__name__}: {exc}"[:2000])
        raise
    _finish(session, delivery_id, "sent")
    log.info("briefing sent", extra={"delivery_id": delivery_id, "via": where})
    return "sent"


def due_for_sending(
    session: Session, settings: Settings, now: datetime | None = None, pending_age: float = 120
) -> list[int]:
    """Rows a sweep should (re-)enqueue: pending a while (a lost task) or stale sending."""
    now = now or datetime.now(UTC)
    stale = timedelta(seconds=settings.BRIEFING_STALE_SECONDS)
    return list(
        session.scalars(
            select(BriefingDelivery.id)
            .where(
                or_(
                    (BriefingDelivery.status == "pending")
                    & (BriefingDelivery.created_at < now - timedelta(seconds=pending_age)),
                    (BriefingDelivery.status == "sending")
                    & (BriefingDelivery.sending_at < now - stale),
                )
            )
            .order_by(BriefingDelivery.id)
            .limit(1000)
        )
    )


def retry_failed(session: Session, delivery_id: int) -> bool:
    """An admin's 'send again' of a failed row: back to pending."""
    result = session.execute(
        update(BriefingDelivery)
        .where(BriefingDelivery.id == delivery_id, BriefingDelivery.status == "failed")
        .values(status="pending", updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1
