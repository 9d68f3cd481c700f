"""Draining the outbox: work the sync ingest recorded in its transaction, done once.

Each handler runs in the same transaction that marks its row done, so a row's effects
are committed exactly once even when the drain task is retried, runs twice at once, or
the worker dies in the middle (the row then stays pending and is taken again).

One row per transaction: a row is claimed with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL (two drains never take the same row, and neither waits for the other), its
handler runs in a savepoint, and the row is marked done or failed in the same commit.
A failed row is not taken again before its back-off has passed (OUTBOX_RETRY_SECONDS,
doubling per attempt); after OUTBOX_MAX_ATTEMPTS it is *dead*: the drain leaves it
until an admin retries it (``retry()``: the ops page, ``POST /api/admin/queue/<id>/retry``).
A failing row never holds back the rows after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from server.logs import request_id_var
from server.models import OutboxMessage
from sync.versioning import lock_for_writing

log = logging.getLogger(__name__)
Handler = Callable[[Session, OutboxMessage], Any]
HANDLERS: dict[str, Handler] = {}

MAX_ATTEMPTS = 5  # OUTBOX_MAX_ATTEMPTS when no app is configured
RETRY_SECONDS = 30  # OUTBOX_RETRY_SECONDS likewise
MAX_BACKOFF = timedelta(hours=1)
ERROR_MAX = 500


def handler(topic: str) -> Callable[[Handler], Handler]:
    """Register the function that does a topic's work."""

    def register(fn: Handler) -> Handler:
        HANDLERS[topic] = fn
        return fn

    return register


def describe_error(exc: BaseException) -> str:
    """What went wrong, without the values involved (they may be personal data).

    A database error is told by its driver's class, SQLSTATE and constraint, never by
    the statement's parameters or the key's value (PostgreSQL's DETAIL carries those);
    any other error by its class and message, which our handlers keep free of values.
    """
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        orig = exc.orig
        parts = [type(orig).__name__]
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if code:
            parts.append(f"SQLSTATE {code}")
        diag = getattr(orig, "diag", None)
        primary = getattr(diag, "message_primary", None) if diag is not None else None
        constraint = getattr(diag, "constraint_name", None) if diag is not None else None
        if primary:
            parts.append(primary)
        elif not hasattr(orig, "diag"):
            # SQLite's messages name the table and columns, never the values.
            parts.append(str(orig).splitlines()[0] if str(orig) else "")
        if constraint and constraint not in (primary or ""):
            parts.append(f"constraint {constraint}")
        return ": ".join(p for p in parts if p)[:ERROR_MAX]
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {message}"[:ERROR_MAX] if message else type(exc).__name__


def limits() -> tuple[int, int]:
    """(OUTBOX_MAX_ATTEMPTS, OUTBOX_RETRY_SECONDS) of the app, or the defaults."""
    try:
        from flask import current_app

        fv = current_app.config["FV"]
        return int(fv["OUTBOX_MAX_ATTEMPTS"]), int(fv["OUTBOX_RETRY_SECONDS"])
    except (RuntimeError, KeyError, TypeError):  # no app (a script): the defaults
        return MAX_ATTEMPTS, RETRY_SECONDS


def backoff(attempts: int, retry_seconds: int) -> timedelta:
    """How long a row that failed ``attempts`` times waits before its next attempt."""
    return min(timedelta(seconds=retry_seconds * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def due(now: datetime):  # noqa: ANN201 - a SQL condition
    """Rows the drain may take now: not done, not dead, past their back-off."""
    return (
        OutboxMessage.done_at.is_(None),
        OutboxMessage.dead_at.is_(None),
        or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
    )


def _failed(row: OutboxMessage, error: str, now: datetime, bounds: tuple[int, int]) -> None:
    max_attempts, retry_seconds = bounds
    row.attempts = (row.attempts or 0) + 1
    row.last_error = error
    row.dispatched_at = now
    if row.attempts >= max_attempts:
        row.dead_at = now
        row.next_attempt_at = None
    else:
        row.next_attempt_at = now + backoff(row.attempts, retry_seconds)


def drain(session: Session, max_rows: int = 10_000, now: datetime | None = None) -> int:
    """Process due outbox rows, oldest first, one per transaction; returns how many
    were done. Each row is taken at most once per call, so a failing row cannot spin."""
    bounds = limits()
    postgres = session.get_bind().dialect.name == "postgresql"
    done = 0
    last_id = 0
    for _ in range(max_rows):
        at = now or datetime.now(UTC)
        query = (
            select(OutboxMessage)
            .where(*due(at), OutboxMessage.id > last_id)
            .order_by(OutboxMessage.id)
            .limit(1)
        )
        if postgres:
            query = query.with_for_update(skip_locked=True)
        else:
            # SQLite (WAL): a transaction that reads first and writes later fails at
            # once ("database is locked") if another writer committed in between; one
            # that writes first waits its turn. So the write lock comes before the read.
            lock_for_writing(session)
        row = session.scalars(query).first()
        if row is None:
            session.rollback()
            break
        last_id = row.id
        fn = HANDLERS.get(row.topic)
        token = request_id_var.set(row.request_id)
        try:
            if fn is None:
                _failed(row, f"no handler for topic {row.topic!r}", at, bounds)
            else:
                try:
                    with session.begin_nested():
                        fn(session, row)
                except (OperationalError, InterfaceError):
                    raise  # the database itself: the task is retried, the row untouched
                except Exception as exc:  # noqa: BLE001 - one bad row must not stop the rest
                    error = describe_error(exc)
                    _failed(row, error, at, bounds)
                    log.warning(
                        "outbox row failed",
                        extra={
                            "outbox_id": row.id,
                            "topic": row.topic,
                            "attempts": row.attempts,
                            "dead": row.dead_at is not None,
                            "error": error,
                        },
                    )
                else:
                    row.done_at = at
                    row.dispatched_at = at
                    done += 1
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            request_id_var.reset(token)
    return done


def retry(session: Session, outbox_id: int, now: datetime | None = None) -> OutboxMessage | None:
    """Make a dead or failing row due now, with its attempts counted afresh; None when
    there is no such row or it is already done. The caller commits."""
    row = session.get(OutboxMessage, outbox_id)
    if row is None or row.done_at is not None:
        return None
    row.dead_at = None
    row.attempts = 0
    row.next_attempt_at = now or datetime.now(UTC)
    return row


def pending_count(session: Session) -> int:
    """How many outbox rows wait, dead ones included (shown on admin pages)."""
    return (
        session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.done_at.is_(None))
        )
        or 0
    )


__all__ = [
    "HANDLERS",
    "backoff",
    "describe_error",
    "drain",
    "due",
    "handler",
    "limits",
    "pending_count",
    "retry",
]
