"""Operations over HTTP: how much background work waits, and what failed (admins only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.settings import Settings
from server.auth import roles_required
from server.extensions import db
from server.models import OutboxMessage, Role

bp = Blueprint("ops", __name__, url_prefix="/api/admin")

# Celery's default queue: the Redis list the worker takes tasks from.
CELERY_QUEUE = "celery"
LAST_ERRORS = 20


def outbox_status(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """Pending outbox rows, the age of the oldest, and the most recent failures.

    A growing count or an old oldest row means the workers are down or behind; rows
    with last_error point at the handler that fails.
    """
    now = now or datetime.now(UTC)
    pending = (
        session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.done_at.is_(None))
        )
        or 0
    )
    oldest = session.scalar(
        select(func.min(OutboxMessage.created_at)).where(OutboxMessage.done_at.is_(None))
    )
    if oldest is not None and oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=UTC)
    failing = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.done_at.is_(None), OutboxMessage.last_error.is_not(None))
        .order_by(OutboxMessage.id.desc())
        .limit(LAST_ERRORS)
    ).all()
    return {
        "pending": pending,
        "oldest_pending_at": oldest.isoformat() if oldest else None,
        "oldest_pending_age_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
        "last_errors": [
            {
                "id": row.id,
                "topic": row.topic,
                "attempts": row.attempts,
                "request_id": row.request_id,
                "last_error": row.last_error,
                "created_at": row.created_at.isoformat(),
            }
            for row in failing
        ],
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
