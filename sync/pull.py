"""Pull: everything in a device's scope changed since a server-issued cursor, by pages.

The cursor is `(epoch, version, entity rank, id)`. Only versions up to the committed
counter value read at the start are served, so rows of a transaction still in flight
can never be skipped (see sync/versioning.py).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.orm import Session

from server.models import (
    ENTITY_RANK,
    SYNCED_MODELS,
    HomeVisit,
    Problem,
    SyncState,
    User,
    Visit,
    utcnow,
    visit_participants,
)
from server.scope import Scope
from sync.records import Reference, serialize

PROTOCOL_VERSION = 1
_NOT_PULLED = {"field_versions", "created_at", "id_hash"}
OPEN_STAGES = ("enterprise", "government", "source")


@dataclass(frozen=True)
class PullView:
    """What a phone holds (docs/sync-protocol.md, "What a phone holds").

    `window_days` > 0 keeps visits and home visits of the last so many days or since
    `keep_from` (the campaign's first day), whichever reaches further back, plus every
    open problem with its visit; `own_user_id` (roles that read the whole city) limits
    visits, problems and home visits to those the user wrote or takes part in, the
    enterprises stay for search. A cursor remembers the view it was made under: a
    changed view (a cadre moved, a role changed, the window setting changed) answers
    `reset`, and the phone drops its copy and pulls the new view from the start.
    """

    window_days: int = 0
    keep_from: datetime | None = None
    own_user_id: int | None = None
    mask_personal: bool = False

    def fingerprint(self, scope: Scope) -> str:
        districts = "all" if scope.read is None else ",".join(map(str, sorted(scope.read)))
        keep = self.keep_from.isoformat() if self.keep_from and self.window_days > 0 else ""
        raw = f"{districts}|{self.window_days}|{keep}|{self.own_user_id}|{int(self.mask_personal)}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def window_start(self, now: datetime | None = None) -> datetime | None:
        if self.window_days <= 0:
            return None
        start = (now or utcnow()) - timedelta(days=self.window_days)
        return min(start, self.keep_from) if self.keep_from is not None else start


def encode_cursor(epoch: str, version: int, rank: int, record_id: str, view: str = "") -> str:
    raw = json.dumps([epoch, version, rank, record_id, view], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int, int, str, str] | None:
    """The cursor's parts, or None when it is not one of ours (a cursor of an earlier
    release, without the view, is not: it answers `reset` once)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        epoch, version, rank, record_id, view = json.loads(raw)
        if not (
            isinstance(epoch, str)
            and isinstance(version, int)
            and isinstance(rank, int)
            and isinstance(record_id, str)
            and isinstance(view, str)
            and len(record_id) <= 36
            and len(view) <= 16
            and record_id.isprintable()
            and 0 <= version <= 2**63 - 1
            and -1 <= rank < 100
        ):
            return None
        return epoch, version, rank, record_id, view
    except (ValueError, TypeError):
        return None


def _own_visits(user_id: int) -> Any:
    """Ids of the visits a user wrote or takes part in (a subquery)."""
    return (
        select(Visit.id)
        .where(Visit.created_by_id == user_id)
        .union(select(visit_participants.c.visit_id).where(visit_participants.c.user_id == user_id))
    )


def _open_problem_visits() -> Any:
    return select(Problem.visit_id).where(
        Problem.deleted == false(), Problem.stage.in_(OPEN_STAGES)
    )


def _held(entity: str, view: PullView, since: datetime | None) -> Any:
    """The condition a live row of `entity` meets to be on the phone (tombstones of the
    phone's districts always go: a phone may hold the record from an earlier window)."""
    uid = view.own_user_id
    if entity == "enterprise":
        return true()
    if entity == "visit":
        own = true() if uid is None else Visit.id.in_(_own_visits(uid))
        recent = (
            true()
            if since is None
            else or_(Visit.visited_at >= since, Visit.id.in_(_open_problem_visits()))
        )
        return or_(Visit.deleted == true(), and_(own, recent))
    if entity == "problem":
        own = (
            true()
            if uid is None
            else or_(Problem.created_by_id == uid, Problem.visit_id.in_(_own_visits(uid)))
        )
        recent = (
            true()
            if since is None
            else or_(
                Problem.stage.in_(OPEN_STAGES),
                Problem.visit_id.in_(select(Visit.id).where(Visit.visited_at >= since)),
            )
        )
        return or_(Problem.deleted == true(), and_(own, recent))
    if entity == "home_visit":
        own = true() if uid is None else HomeVisit.created_by_id == uid
        recent = true() if since is None else HomeVisit.visited_at >= since
        return or_(HomeVisit.deleted == true(), and_(own, recent))
    raise ValueError(entity)


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
    view: PullView | None = None,
) -> dict[str, Any]:
    """One page of changes after `cursor` within `scope` and `view`; with
    `mask_personal` (city staff: server/privacy.py) needy workers' details come masked.

    `last_mid` must be read before this call (see docs/sync-protocol.md: a page may then
    reflect more of the device's mutations than last_mid says, never fewer).
    """
    state = session.get(SyncState, 1)
    epoch, ceiling, horizon = (
        (state.epoch, state.version, state.purge_horizon) if state else ("", 0, 0)
    )
    view = view or PullView(mask_personal=mask_personal)
    mask_personal = mask_personal or view.mask_personal
    seen_as = view.fingerprint(scope)
    since = view.window_start()
    reset = False
    position = (0, -1, "")
    if cursor:
        parts = decode_cursor(cursor)
        if (
            parts is None
            or parts[0] != epoch
            or parts[1] > ceiling
            or parts[1] < horizon
            or parts[4] != seen_as
        ):
            reset = True
        else:
            position = parts[1:4]
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
        query = select(*columns).where(after, model.version <= ceiling, _held(entity, view, since))
        if scope.read is not None:
            query = query.where(model.district_id.in_(scope.read))
        query = query.order_by(model.version, model.id).limit(limit + 1)
        streams.append(_tagged(session.execute(query), own_rank, entity))
    # The four ordered streams merged lazily: only the rows of this page are decoded.
    rows = list(islice(heapq.merge(*streams, key=lambda r: r[:3]), limit + 1))
    page = rows[:limit]
    if since is not None or view.own_user_id is not None:
        page_items = _with_parent_visits(session, scope, page, version, since, view.own_user_id)
    else:
        page_items = page
    visit_ids = [r[2] for r in page_items if r[3] == "visit" and not r[4].deleted]
    participants = _participants(session, visit_ids)
    changes = []
    for obj_version, _, rid, entity, row in page_items:
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
        next_cursor = encode_cursor(epoch, last[0], last[1], last[2], seen_as)
    elif reset or not cursor:
        next_cursor = encode_cursor(epoch, 0, -1, "", seen_as)
    else:
        next_cursor = cursor
    return {
        "protocol": PROTOCOL_VERSION,
        "reset": reset,
        "cursor": next_cursor,
        "has_more": len(rows) > limit,
        "last_mid": last_mid,
        # Records dated before this left the phone's window: the phone drops its copies
        # that nothing pending holds (docs/sync-protocol.md).
        "window_start": since.isoformat() if since is not None else None,
        "changes": changes,
    }


def _with_parent_visits(
    session: Session,
    scope: Scope,
    page: list[tuple],
    start: int,
    since: datetime | None,
    own_user_id: int | None,
) -> list[tuple]:
    """The page with, ahead of its problems, the visits they belong to that the phone
    cannot have: an open problem of an old visit arrives with its visit (enterprise,
    date) although the cursor passed the visit's version while the window kept it off
    the phone. A visit after the cursor comes in its own place in the stream (every visit
    with an open problem is held), so it is not sent twice; for a city-wide role, the
    visits it did not record come along with its problems."""
    in_page = {r[2] for r in page if r[3] == "visit"}
    wanted = sorted({r[4].visit_id for r in page if r[3] == "problem"} - in_page)
    if not wanted:
        return page
    columns = [c for c in Visit.__table__.c if c.name not in _NOT_PULLED]
    parents: list[tuple] = []
    for i in range(0, len(wanted), 500):
        passed = Visit.version < start
        if since is not None:
            passed = and_(passed, Visit.visited_at < since)
        else:
            passed = false()
        if own_user_id is not None:
            passed = or_(passed, Visit.created_by_id != own_user_id)
        query = select(*columns).where(
            Visit.id.in_(wanted[i : i + 500]), Visit.deleted == false(), passed
        )
        if scope.read is not None:
            query = query.where(Visit.district_id.in_(scope.read))
        parents.extend(
            (row.version, ENTITY_RANK["visit"], row.id, "visit", row)
            for row in session.execute(query)
        )
    return parents + list(page)
