"""Pull: everything in a device's scope changed since a server-issued cursor, by pages.

The cursor is `(epoch, version, entity rank, id)`. Only versions up to the committed
counter value read at the start are served, so rows of a transaction still in flight
can never be skipped (see sync/versioning.py).
"""

from __future__ import annotations

import base64
import heapq
import json
from itertools import islice
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from server.models import ENTITY_RANK, SYNCED_MODELS, SyncState, User, visit_participants
from server.scope import Scope
from sync.records import Reference, serialize

PROTOCOL_VERSION = 1
_NOT_PULLED = {"field_versions", "created_at", "id_hash"}


def encode_cursor(epoch: str, version: int, rank: int, record_id: str) -> str:
    raw = json.dumps([epoch, version, rank, record_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int, int, str] | None:
    """The cursor's parts, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        epoch, version, rank, record_id = json.loads(raw)
        if not (
            isinstance(epoch, str)
            and isinstance(version, int)
            and isinstance(rank, int)
            and isinstance(record_id, str)
            and len(record_id) <= 36
            and record_id.isprintable()
            and 0 <= version <= 2**63 - 1
            and 0 <= rank < 100
        ):
            return None
        return epoch, version, rank, record_id
    except (ValueError, TypeError):
        return None


def _tagged(result: Any, rank: int, entity: str) -> Any:
    """Rows of one entity as sortable (version, rank, id, entity, row) tuples."""
    for row in result:
        yield (row.version, rank, row.id, entity, row)


def _participants(session: Session, visit_ids: list[str]) -> dict[str, list[str]]:
    """Usernames of each visit's participants, for a page of visits."""
    out: dict[str, list[str]] = {}
    for start in range(0, len(visit_ids), 500):
        query = (
            select(visit_participants.c.visit_id, User.username)
            .join(User, User.id == visit_participants.c.user_id)
            .where(visit_participants.c.visit_id.in_(visit_ids[start : start + 500]))
            .order_by(visit_participants.c.visit_id, User.username)
        )
        for visit_id, username in session.execute(query):
            out.setdefault(visit_id, []).append(username)
    return out


def pull(
    session: Session,
    *,
    scope: Scope,
    last_mid: int,
    cursor: str | None,
    limit: int,
    mask_personal: bool = False,
) -> dict[str, Any]:
    """One page of changes after `cursor` within `scope`; with `mask_personal` (city
    staff: server/privacy.py) needy workers' details come masked.

    `last_mid` must be read before this call (see docs/sync-protocol.md: a page may then
    reflect more of the device's mutations than last_mid says, never fewer).
    """
    state = session.get(SyncState, 1)
    epoch, ceiling, horizon = (
        (state.epoch, state.version, state.purge_horizon) if state else ("", 0, 0)
    )
    reset = False
    position = (0, -1, "")
    if cursor:
        parts = decode_cursor(cursor)
        if parts is None or parts[0] != epoch or parts[1] > ceiling or parts[1] < horizon:
            reset = True
        else:
            position = parts[1:]
    version, rank, last_id = position

    ref = Reference.load(session)
    streams = []
    for entity, model in SYNCED_MODELS.items():
        own_rank = ENTITY_RANK[entity]
        if own_rank > rank:
            after = model.version >= version
        elif own_rank == rank:
            after = or_(model.version > version, and_(model.version == version, model.id > last_id))
        else:
            after = model.version > version
        # Core rows, not ORM objects, and only the columns phones see: a page of 2,000
        # records is serialised several times faster without identity-map bookkeeping
        # and without decoding the per-field versions.
        columns = [c for c in model.__table__.c if c.name not in _NOT_PULLED]
        query = select(*columns).where(after, model.version <= ceiling)
        if scope.read is not None:
            query = query.where(model.district_id.in_(scope.read))
        query = query.order_by(model.version, model.id).limit(limit + 1)
        streams.append(_tagged(session.execute(query), own_rank, entity))
    # The four ordered streams merged lazily: only the rows of this page are decoded.
    rows = list(islice(heapq.merge(*streams, key=lambda r: r[:3]), limit + 1))
    page = rows[:limit]
    visit_ids = [r[2] for r in page if r[3] == "visit" and not r[4].deleted]
    participants = _participants(session, visit_ids)
    changes = []
    for obj_version, _, rid, entity, row in page:
        change: dict[str, Any] = {
            "entity": entity,
            "id": rid,
            "version": obj_version,
            "deleted": bool(row.deleted),
        }
        if not row.deleted:
            change["data"] = serialize(
                entity,
                row,
                ref,
                participants.get(rid, []) if entity == "visit" else None,
                mask_personal=mask_personal and entity == "home_visit",
            )
        changes.append(change)
    if page:
        last = page[-1]
        next_cursor = encode_cursor(epoch, last[0], last[1], last[2])
    elif reset or not cursor:
        next_cursor = encode_cursor(epoch, 0, -1, "")
    else:
        next_cursor = cursor
    return {
        "protocol": PROTOCOL_VERSION,
        "reset": reset,
        "cursor": next_cursor,
        "has_more": len(rows) > limit,
        "last_mid": last_mid,
        "changes": changes,
    }
