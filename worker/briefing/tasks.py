"""Celery tasks of the briefings: thin shells over worker.briefing.deliver.

Registered through worker/tasks.py (which Celery autodiscovers); beat entries live in
worker/celery_app.py.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from celery import shared_task
from flask import current_app

from server.extensions import db
from worker.briefing.compute import PERIOD_KINDS, last_completed, period_containing
from worker.briefing.deliver import (
    DeliveryBusy,
    due_for_sending,
    ensure_renders,
    plan_deliveries,
    send_delivery,
)
from worker.celery_app import TASK_DEFAULTS

log = logging.getLogger(__name__)


@shared_task(name="worker.tasks.briefings_scheduled", **TASK_DEFAULTS)
def briefings_scheduled(kind: str = "week", day: str | None = None) -> dict:
    """Plan the briefings of the period that just ended (or the one containing `day`)
    and enqueue one send per pending delivery. Safe to fire twice."""
    settings = current_app.config["FV"]
    if kind not in PERIOD_KINDS:
        raise ValueError(f"kind {kind!r}")
    campaign = date.fromisoformat(settings.CAMPAIGN_START)
    period = (
        period_containing(kind, date.fromisoformat(day), campaign, settings.TIMEZONE)
        if day
        else last_completed(kind, datetime.now(UTC), campaign, settings.TIMEZONE)
    )
    result = plan_deliveries(db.session, settings, period)
    if result.to_send:
        # The period's briefings computed once, here, before any send needs them.
        ensure_renders(db.session, settings, period)
    # Enqueued only after plan_deliveries committed, so a send never misses its row.
    for delivery_id in result.to_send:
        briefing_send.delay(delivery_id)
    # `extra` keys must not be LogRecord attributes ("created" is one: a KeyError).
    log.info(
        "briefings planned",
        extra={
            "period": period.label,
            "rows_created": result.created,
            "enqueued": len(result.to_send),
        },
    )
    return {
        "period": period.key_date.isoformat(),
        "created": result.created,
        "enqueued": len(result.to_send),
    }


@shared_task(name="worker.tasks.briefing_send", bind=True, **TASK_DEFAULTS)
def briefing_send(self, delivery_id: int) -> str:  # noqa: ANN001
    """Send one delivery exactly once; transient SMTP errors retry with backoff."""
    settings = current_app.config["FV"]
    try:
        return send_delivery(db.session, settings, delivery_id)
    except DeliveryBusy as busy:
        raise self.retry(countdown=busy.retry_in, exc=busy) from None


@shared_task(name="worker.tasks.briefings_sweep", **TASK_DEFAULTS)
def briefings_sweep() -> int:
    """Re-enqueue deliveries whose task was lost or whose sender died (beat, every 5 min)."""
    ids = due_for_sending(db.session, current_app.config["FV"])
    for delivery_id in ids:
        briefing_send.delay(delivery_id)
    return len(ids)
