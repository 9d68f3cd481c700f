"""Celery tasks: thin shells over plain functions that take a session."""

from __future__ import annotations

import logging

from celery import shared_task

from server.extensions import db
from server.logs import request_id_var
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

from worker.briefing import tasks as _briefing_tasks  # noqa: E402,F401  (registers briefing tasks)
