"""Operations over HTTP: how much background work waits, and what failed (admins only)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.settings import Settings
from server.auth import roles_required
from server.errors import ApiError
from server.extensions import db
from server.models import OutboxMessage, Role

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__, url_prefix="/api/admin")

# Celery's default queue: the Redis list the worker takes tasks from.
CELERY_QUEUE = "celery"
LAST_ERRORS = 20
DEAD_ROWS = 200


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite hands back naive UTC
        return value.replace(tzinfo=UTC)
    return value


def _iso(value: datetime | None) -> str | None:
    value = _aware(value)
    return value.isoformat() if value else None


def outbox_row(row: OutboxMessage) -> dict[str, Any]:
    """One outbox row as the queue view shows it (its error carries no values)."""
    return {
        "id": row.id,
        "topic": row.topic,
        "entity": row.entity,
        "record_id": row.record_id,
        "records": len((row.payload or {}).get("records", [])),
        "attempts": row.attempts,
        "request_id": row.request_id,
        "last_error": row.last_error,
        "created_at": _iso(row.created_at),
        "next_attempt_at": _iso(row.next_attempt_at),
        "dead_at": _iso(row.dead_at),
    }


def outbox_status(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """Pending outbox rows, the age of the oldest, the recent failures and the dead rows.

    A growing count or an old oldest row means the workers are down or behind; rows
    with last_error point at the handler that fails; dead rows failed
    OUTBOX_MAX_ATTEMPTS times and wait for an admin's retry.
    """
    now = now or datetime.now(UTC)
    live = (OutboxMessage.done_at.is_(None), OutboxMessage.dead_at.is_(None))
    pending = session.scalar(select(func.count()).select_from(OutboxMessage).where(*live)) or 0
    oldest = _aware(session.scalar(select(func.min(OutboxMessage.created_at)).where(*live)))
    failing = session.scalars(
        select(OutboxMessage)
        .where(*live, OutboxMessage.last_error.is_not(None))
        .order_by(OutboxMessage.id.desc())
        .limit(LAST_ERRORS)
    ).all()
    dead_filter = (OutboxMessage.done_at.is_(None), OutboxMessage.dead_at.is_not(None))
    dead = session.scalar(select(func.count()).select_from(OutboxMessage).where(*dead_filter))
    dead_rows = session.scalars(
        select(OutboxMessage).where(*dead_filter).order_by(OutboxMessage.id).limit(DEAD_ROWS)
    ).all()
    return {
        "pending": pending,
        "oldest_pending_at": oldest.isoformat() if oldest else None,
        "oldest_pending_age_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
        "last_errors": [outbox_row(row) for row in failing],
        "dead": dead or 0,
        "dead_rows": [outbox_row(row) for row in dead_rows],
    }


def broker_status(settings: Settings) -> dict[str, Any]:
    """The broker's kind and, for Redis, how many tasks wait in the Celery queue."""
    if not settings.REDIS_URL:
        # The embedded broker is a SQLite file read by the one local worker; its
        # backlog is the outbox's.
        return {"kind": "embedded", "queue_length": None, "status": "ok"}
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        return {"kind": "redis", "queue_length": int(client.llen(CELERY_QUEUE)), "status": "ok"}
    except redis.RedisError as exc:
        return {"kind": "redis", "queue_length": None, "status": f"error: {type(exc).__name__}"}


@bp.get("/queue")
@roles_required(Role.ADMIN)
def queue():  # noqa: ANN201
    """The outbox and the broker queue, for an admin page or a monitoring probe."""
    body = {"outbox": outbox_status(db.session), "broker": broker_status(current_app.config["FV"])}
    db.session.rollback()
    return jsonify(body)


@bp.post("/queue/<int:outbox_id>/retry")
@roles_required(Role.ADMIN)
def retry(outbox_id: int):  # noqa: ANN201
    """Make a dead (or failing) outbox row due now, its attempts counted afresh."""
    from worker.outbox import retry as retry_row

    row = retry_row(db.session, outbox_id)
    if row is None:
        raise ApiError(404, "not_found", f"no pending outbox row {outbox_id}")
    db.session.commit()
    log.info("outbox row retried", extra={"outbox_id": outbox_id})
    return jsonify(outbox_row(row))
