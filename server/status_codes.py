"""The worker's status code (查询码): a short code a cadre shows or reads out when a
problem is recorded; with it anyone can look up where that one problem stands, on a
public page with no sign-in (server/status_web.py).

- Unguessable: 12 characters from a 30-character alphabet without look-alikes (no 0/O,
  1/I/L, U), about 59 bits, drawn by `secrets`; lookups are rate-limited per client.
- Only a keyed hash is stored (HMAC-SHA256 with SECRET_KEY), never the code: a copy of
  the database does not give the codes away. Issuing a new code replaces the old one.
- Revocable: a revoked code answers exactly as an unknown one.
- The page shows the category, the stage, the day it last moved and, once resolved,
  what was done; nothing else of the problem (no description, names, district) and
  nothing of any other problem.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server import deadlines
from server.models import Problem
from server.models_deadlines import StatusLookup

ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: 30 characters
LENGTH = 12


def new_code() -> str:
    """A fresh code, shown in groups of four: ABCD-EFGH-JKMN."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, LENGTH, 4))


def normalise(text: str) -> str | None:
    """What a person typed, as stored: upper case, no spaces or dashes; None when it
    cannot be a code (so nothing is looked up)."""
    cleaned = "".join(ch for ch in (text or "").upper() if ch not in " -\t")
    if len(cleaned) != LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return None
    return cleaned


def code_hash(secret_key: str, code: str) -> str:
    """The stored form of a (normalised) code: HMAC-SHA256, hex."""
    return hmac.new(secret_key.encode(), code.encode(), hashlib.sha256).hexdigest()


def issue(session: Session, secret_key: str, problem: Problem) -> str:
    """Give a problem a new code (the old one stops working); returns it, once."""
    code = new_code()
    problem.status_code_hash = code_hash(secret_key, normalise(code) or "")
    problem.status_code_revoked_at = None
    session.commit()
    return code


def revoke(session: Session, problem: Problem, now: datetime | None = None) -> bool:
    """Stop a problem's code from working; False when it had none in force."""
    if problem.status_code_hash is None or problem.status_code_revoked_at is not None:
        return False
    problem.status_code_revoked_at = now or datetime.now(UTC)
    session.commit()
    return True


def allowed(
    session: Session, client: str, limit: int, window: int, now: datetime | None = None
) -> bool:
    """Count one lookup from `client` (a keyed hash of its address); False once it made
    `limit` lookups in the last `window` seconds. Rows older than the window go."""
    now = now or datetime.now(UTC)
    since = now - timedelta(seconds=window)
    session.execute(delete(StatusLookup).where(StatusLookup.at < since))
    used = session.scalar(
        select(func.count()).where(StatusLookup.client == client, StatusLookup.at >= since)
    )
    if used >= limit:
        session.commit()
        return False
    session.add(StatusLookup(client=client, at=now))
    session.commit()
    return True


def lookup(session: Session, secret_key: str, typed: str, tz: str) -> dict[str, Any] | None:
    """The public view of the problem a code names, or None (unknown, revoked, deleted)."""
    from worker.briefing.compute import labels

    code = normalise(typed)
    if code is None:
        return None
    problem = session.scalar(
        select(Problem).where(
            Problem.status_code_hash == code_hash(secret_key, code),
            Problem.status_code_revoked_at.is_(None),
            Problem.deleted.is_(False),
        )
    )
    if problem is None:
        return None
    moved = problem.stage_started_at or problem.resolved_at or problem.created_at
    resolved = problem.stage == "resolved"
    return {
        "category": labels("categories").get(problem.category, problem.category),
        "stage": labels("stages").get(problem.stage, problem.stage),
        "stage_code": problem.stage,
        "last_moved": deadlines.local_day(moved, tz).isoformat() if moved else None,
        "resolution": problem.resolution if resolved else None,
    }
