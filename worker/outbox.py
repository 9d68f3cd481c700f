"""Draining the outbox: work the sync ingest recorded in its transaction, done once.

Each handler runs in the same transaction that marks its row done, so a row's effects
are committed exactly once even when the drain task is retried, runs twice at once, or
the worker dies in the middle (the row then stays pending and is taken again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.logs import request_id_var
from server.models import OutboxMessage

log = logging.getLogger(__name__)
Handler = Callable[[Session, OutboxMessage], Any]
HANDLERS: dict[str, Handler] = {}


def handler(topic: str) -> Callable[[Handler], Handler]:
    """Register the function that does a topic's work."""

    def register(fn: Handler) -> Handler:
        HANDLERS[topic] = fn
        return fn

    return register


def drain(session: Session, batch: int = 50, max_rows: int = 10_000) -> int:
    """Process pending outbox rows, oldest first; returns how many were done."""
    done = 0
    while done < max_rows:
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.done_at.is_(None))
            .order_by(OutboxMessage.id)
            .limit(batch)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = session.scalars(query).all()
        if not rows:
            break
        progressed = False
        for row in rows:
            fn = HANDLERS.get(row.topic)
            if fn is None:
                row.attempts += 1
                row.last_error = f"no handler for topic {row.topic!r}"
                continue
            token = request_id_var.set(row.request_id)
            try:
                with session.begin_nested():
                    fn(session, row)
                row.done_at = datetime.now(UTC)
                done += 1
                progressed = True
            except Exception as exc:  # noqa: BLE001 - one bad row must not stop the rest
                row.attempts += 1
                row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                log.exception("outbox row failed", extra={"outbox_id": row.id, "topic": row.topic})
            finally:
                request_id_var.reset(token)
        session.commit()
        if not progressed:
            break
    return done


def pending_count(session: Session) -> int:
    """How many outbox rows wait (shown on admin pages and /readyz-style checks)."""
    from sqlalchemy import func

    return (
        session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.done_at.is_(None))
        )
        or 0
    )
