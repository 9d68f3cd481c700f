"""Celery tasks: thin shells over plain functions that take a session."""

from __future__ import annotations

import logging

from celery import shared_task

from server.extensions import db
from server.logs import request_id_var
from worker import dedup_jobs  # noqa: F401  (registers the outbox handler for "dedup")
from worker.celery_app import TASK_DEFAULTS
from worker.outbox import drain

log = logging.getLogger(__name__)


@shared_task(name="worker.tasks.drain_outbox", **TASK_DEFAULTS)
def drain_outbox(request_id: str | None = None) -> int:
    """Do the work the sync ingest recorded (dedup...); safe to run twice at once."""
    request_id_var.set(request_id)
    done = drain(db.session)
    if done:
        log.info("outbox drained", extra={"rows": done})
    return done


# A full pass over a city's records takes minutes, not seconds: its own time limits.
_FULL_PASS_LIMITS = {**TASK_DEFAULTS, "soft_time_limit": 3300, "time_limit": 3600, "max_retries": 3}


@shared_task(name="worker.tasks.dedup_full_pass", **_FULL_PASS_LIMITS)
def dedup_full_pass() -> dict:
    """Scheduled pass matching every record again (DEDUP_FULL_PASS_CRON); idempotent."""
    stats = dedup_jobs.full_pass(db.session, dedup_jobs.DedupContext.from_app())
    log.info("dedup full pass done", extra={"stats": stats})
    return stats


@shared_task(name="worker.tasks.erase_personal_data", **TASK_DEFAULTS)
def erase_personal_data() -> int:
    """Empty the personal fields of home visits deleted more than
    HOME_VISIT_RETENTION_DAYS ago (beat, every 6 hours; server/privacy.py); idempotent."""
    from flask import current_app

    from server.privacy import erase_deleted_home_visits

    erased = erase_deleted_home_visits(
        db.session, current_app.config["FV"].HOME_VISIT_RETENTION_DAYS
    )
    db.session.commit()
    if erased:
        log.info("personal data of deleted home visits erased", extra={"records": erased})
    # The photos of deleted records follow the same sweep (ATTACHMENT_RETENTION_DAYS).
    from server.attachments import run_retention
    from server.attachments_store import store_from_settings

    settings = current_app.config["FV"]
    purged = run_retention(db.session, store_from_settings(settings), settings)
    if purged.attachments or purged.uploads:
        log.info(
            "attachments of deleted records removed",
            extra={"attachments": purged.attachments, "blobs": purged.blobs},
        )
    return erased


@shared_task(name="worker.tasks.deadline_reminders", **TASK_DEFAULTS)
def deadline_reminders() -> dict:
    """Plan deadline reminders once per problem and state, gather per-user digests and
    enqueue their sends (beat, every REMINDER_INTERVAL_SECONDS); safe to fire twice."""
    from flask import current_app

    from server.reminders import run_beat

    result = run_beat(db.session, current_app.config["FV"])
    for digest_id in result["to_send"]:
        reminder_digest_send.delay(digest_id)
    log.info(
        "reminders planned",
        extra={"reminders": result["created"], "digests": len(result["to_send"])},
    )
    return {**result, "to_send": len(result["to_send"])}


@shared_task(name="worker.tasks.reminder_digest_send", bind=True, **TASK_DEFAULTS)
def reminder_digest_send(self, digest_id: int) -> str:  # noqa: ANN001
    """Send one reminder digest exactly once (as briefings are sent)."""
    from flask import current_app

    from server.reminders import DigestBusy, send_digest

    try:
        return send_digest(db.session, current_app.config["FV"], digest_id)
    except DigestBusy as busy:
        raise self.retry(countdown=busy.retry_in, exc=busy) from None


from worker import nonreporters as _nonreporter_tasks  # noqa: E402,F401  (registers 催报 tasks)
from worker.briefing import tasks as _briefing_tasks  # noqa: E402,F401  (registers briefing tasks)
