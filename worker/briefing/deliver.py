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

A row that failed on a transient error (SMTP down, 4xx) gets `next_attempt_at`: the
sweep sends it again every BRIEFING_RETRY_SECONDS for BRIEFING_GIVE_UP_HOURS after the
row was planned, long after the task's own quick retries ran out. A refused recipient
(5xx) or a row past that window keeps `next_attempt_at` empty: failed for good, listed
on the ops page until an admin sends it again.

A period's briefings are computed once (`ensure_renders`, table briefing_renders) and
every delivery of the period is that stored text with its recipient's unsubscribe link.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config.settings import Settings
from server.models_briefing import (
    CITY_SCOPE,
    BriefingDelivery,
    BriefingRecipient,
    BriefingRender,
)
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


def _finish(
    session: Session,
    delivery_id: int,
    status: str,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "status": status,
        "last_error": error,
        "updated_at": now,
        "next_attempt_at": next_attempt_at,
    }
    if status == "sent":
        values["sent_at"] = now
    session.execute(
        update(BriefingDelivery)
        .where(BriefingDelivery.id == delivery_id, BriefingDelivery.status == "sending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


# Put into the stored text where each recipient's own unsubscribe URL goes. URL-safe
# characters only, so HTML escaping leaves it as it is.
UNSUBSCRIBE_MARK = "https://unsubscribe.invalid/FV-UNSUBSCRIBE-MARK"


def ensure_renders(
    session: Session, settings: Settings, period: Period, now: datetime | None = None
) -> dict[str, BriefingRender]:
    """Every briefing e-mail of a period, keyed by district code (and CITY_SCOPE).

    Computed once per period: the first caller builds all of them in one pass and
    stores them; later callers (the other deliveries, a second beat, a resend) read
    them. Two workers racing both compute, and the unique key keeps the first.
    """
    key = (
        BriefingRender.period_kind == period.kind,
        BriefingRender.period_start == period.key_date,
    )
    stored = {r.district: r for r in session.scalars(select(BriefingRender).where(*key))}
    if stored:
        return stored
    city, by_code = build_all(session, period, now)
    rendered = {
        CITY_SCOPE: render_city_email(
            city, mail.web_url(settings, CITY_SCOPE, period), UNSUBSCRIBE_MARK
        )
    }
    for code, briefing in by_code.items():
        rendered[code] = render_district_email(
            briefing, mail.web_url(settings, code, period), UNSUBSCRIBE_MARK
        )
    for code, (subject, text, html) in rendered.items():
        try:
            with session.begin_nested():
                session.add(
                    BriefingRender(
                        district=code,
                        period_kind=period.kind,
                        period_start=period.key_date,
                        subject=subject,
                        text=text,
                        html=html,
                    )
                )
        except IntegrityError:
            pass  # another worker stored this period first: its text wins
    session.commit()
    return {r.district: r for r in session.scalars(select(BriefingRender).where(*key))}


def _without_unsubscribe(text: str) -> str:
    """The stored text for a recipient with no subscription row (deleted): no link."""
    return "\n".join(line for line in text.split("\n") if UNSUBSCRIBE_MARK not in line)


def render_for(
    session: Session, settings: Settings, row: BriefingDelivery, recipient: BriefingRecipient | None
) -> tuple[str, str, str, str | None]:
    """(subject, text, html, unsubscribe URL) of a delivery, from the period's renders."""
    period = period_of(row, settings)
    stored = ensure_renders(session, settings, period).get(row.district)
    if stored is None:
        raise mail.PermanentSendError(f"unknown district {row.district}")
    if recipient is None:
        return (
            stored.subject,
            _without_unsubscribe(stored.text),
            _without_unsubscribe(stored.html),
            None,
        )
    unsubscribe = mail.unsubscribe_url(settings, recipient.id, recipient.email)
    return (
        stored.subject,
        stored.text.replace(UNSUBSCRIBE_MARK, unsubscribe),
        stored.html.replace(UNSUBSCRIBE_MARK, unsubscribe),
        unsubscribe,
    )


def retry_time(settings: Settings, row_created: datetime, now: datetime) -> datetime | None:
    """When a transiently failed row is tried again; None once the give-up window ended."""
    at = now + timedelta(seconds=settings.BRIEFING_RETRY_SECONDS)
    if at > row_created + timedelta(hours=settings.BRIEFING_GIVE_UP_HOURS):
        return None
    return at


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
    planned_at = row.created_at
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
        _finish(
            session,
            delivery_id,
            "failed",
            f"{type(exc).__name__}: {exc}"[:2000],
            retry_time(settings, planned_at, now),
        )
        raise
    _finish(session, delivery_id, "sent")
    log.info("briefing sent", extra={"delivery_id": delivery_id, "via": where})
    return "sent"


def due_for_sending(
    session: Session, settings: Settings, now: datetime | None = None, pending_age: float = 120
) -> list[int]:
    """Rows a sweep should (re-)enqueue: pending a while (a lost task), stale sending,
    or failed on a transient error and due again (`next_attempt_at` passed)."""
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
                    (BriefingDelivery.status == "failed")
                    & (BriefingDelivery.next_attempt_at <= now),
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
        .values(status="pending", next_attempt_at=None, updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1
