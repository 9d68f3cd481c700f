"""Push: apply a device's batch of mutations exactly once, in one transaction.

Per-device mutation counter (`Device.last_mid`) advanced in the same transaction as the
effects; permanent failures are recorded and still advance it; a gap stops the batch.
The caller commits (and on any exception rolls back, so nothing is half-written).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from server.models import SYNCED_MODELS, Device, MutationResult, OutboxMessage, User
from server.scope import Scope
from sync.records import (
    Actor,
    Reference,
    Rejected,
    Validated,
    apply_change,
    keep_lost_edit,
    validate_ahead,
)
from sync.schemas import UUID_RE, PushSchema
from sync.versioning import current_version, transaction_version, write_new_records

PROTOCOL_VERSION = 1
log = logging.getLogger(__name__)
_PUSH = PushSchema()
DEDUP_ENTITIES = ("enterprise", "visit", "home_visit")


class ProtocolError(Exception):
    """A whole-request error: nothing was applied and nothing advanced."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.extra = (
            status, code, message, field, extra)

    def as_dict(self) -> dict[str, Any]:
        err = {"code": self.code, "message": self.message, **self.extra}
        if self.field:
            err["field"] = self.field
        return {"error": err}


@dataclass
class PushLimits:
    """Limits from settings."""

    min_protocol: int = 1
    max_batch: int = 500


def _first_error(messages: dict[str, Any], prefix: str = "") -> tuple[str, str]:
    key, value = next(iter(messages.items()))
    path = f"{prefix}.{key}" if prefix else str(key)
    if isinstance(value, dict):
        return _first_error(value, path)
    return path, value[0] if isinstance(value, list) else str(value)


def check_envelope(body: Any, limits: PushLimits) -> dict[str, Any]:
    """Validate the batch envelope; raise ProtocolError (400/413/426) naming the field."""
    if not isinstance(body, dict):
        raise ProtocolError(400, "malformed", "the body must be a JSON object")
    protocol = body.get("protocol")
    if not isinstance(protocol, int) or isinstance(protocol, bool):
        raise ProtocolError(400, "malformed", "protocol: an integer is required", "protocol")
    if protocol < limits.min_protocol:
        raise ProtocolError(426, "protocol_outdated",
                            "this app is too old for the server: please update it",
                            min_protocol=limits.min_protocol)
    if protocol > PROTOCOL_VERSION:
        raise ProtocolError(400, "protocol_unknown",
                            f"protocol {protocol} is newer than the server's {PROTOCOL_VERSION}",
                            "protocol")
    try:
        data = _PUSH.load(body)
    except ValidationError as err:
        field, reason = _first_error(err.messages_dict)
        raise ProtocolError(400, "malformed", f"{field}: {reason}", field) from None
    if len(data["mutations"]) > limits.max_batch:
        raise ProtocolError(413, "batch_too_large",
                            f"mutations: at most {limits.max_batch} per batch",
                            "mutations", max_batch=limits.max_batch)
    mids: set[int] = set()
    parsed = []
    for i, raw in enumerate(data["mutations"]):
        mid = raw.get("mid")
        if not isinstance(mid, int) or isinstance(mid, bool) or mid < 1:
            raise ProtocolError(400, "malformed", f"mutations[{i}].mid: a positive integer "
                                "is required", f"mutations[{i}].mid")
        if mid in mids:
            raise ProtocolError(400, "malformed", f"mutations[{i}].mid: {mid} appears twice",
                                f"mutations[{i}].mid")
        mids.add(mid)
        parsed.append((i, raw))
    data["mutations"] = sorted(parsed, key=lambda p: p[1]["mid"])
    return data


def push(
    session: Session,
    *,
    device: Device,
    user: User,
    scope: Scope,
    body: Any,
    id_hash_key: str,
    limits: PushLimits | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Apply a push body for `device`; return the answer. The caller commits."""
    limits = limits or PushLimits()
    data = check_envelope(body, limits)
    if data["device_id"] != device.id:
        raise ProtocolError(403, "device_mismatch",
                            "device_id: this token belongs to another device", "device_id")
    mutations = data["mutations"]
    if mutations and mutations[-1][1]["mid"] <= device.last_mid:
        # A pure replay (the answer to an earlier push was lost): answer from what is
        # stored, without taking any lock or writing anything. The counter only grows,
        # so a value read without a lock can only make this path rarer, never wrong.
        stored = _stored_results(session, device.id, [m["mid"] for _, m in mutations])
        return {"protocol": PROTOCOL_VERSION, "last_mid": device.last_mid,
                "server_version": current_version(session),
                "results": [{"mid": m["mid"], "status": "duplicate",
                             "original": stored.get(m["mid"], {"status": "applied"})}
                            for _, m in mutations]}
    # Envelopes and fields are checked before any lock: validation reads no data, so
    # concurrent pushes validate in parallel and hold the write lock only to write.
    checked = {m["mid"]: _check(m) for _, m in mutations if m["mid"] > device.last_mid}
    # Same-device pushes serialise on the device row. The global version (and its row
    # lock) is taken only at the flush, so devices validate and build in parallel and
    # hold the global lock just for the write (see sync/versioning.py).
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has one writer at a time anyway: take the write lock (through the
        # version bump) before reading, so every read below is current.
        transaction_version(session)
    last_mid = session.execute(
        select(Device.last_mid).where(Device.id == device.id).with_for_update()
    ).scalar_one()
    actor = Actor(user=user, scope=scope, id_hash_key=id_hash_key, device_id=device.id,
                  source="sync", request_id=request_id)
    stored = _stored_results(session, device.id,
                             [m["mid"] for _, m in mutations if m["mid"] <= last_mid])
    try:
        # Fast path: apply everything, flush once. A database error in one entry rolls
        # the savepoint back and the batch is applied again entry by entry.
        with session.begin_nested():
            results, new_last, touched = _apply_batch(session, actor, mutations, last_mid,
                                                      stored, checked, careful=False)
            _finish(session, device, new_last, touched, request_id)
    except (IntegrityError, DataError):
        log.warning("batch hit a database error; applying entry by entry")
        results, new_last, touched = _apply_batch(session, actor, mutations, last_mid, stored,
                                                  checked, careful=True)
        _finish(session, device, new_last, touched, request_id)
    for result in results:
        record = result.pop("_record", None)
        if record is not None:
            result["version"] = record.version
    return {"protocol": PROTOCOL_VERSION, "last_mid": new_last,
            "server_version": transaction_version(session), "results": results}


def _finish(session: Session, device: Device, last_mid: int,
            touched: dict[tuple[str, str], None], request_id: str | None) -> None:
    write_new_records(session)  # before the flush: updates may refer to new records
    session.execute(Device.__table__.update().where(Device.id == device.id)
                    .values(last_mid=last_mid))
    dedup = [[e, i] for (e, i) in touched if e in DEDUP_ENTITIES]
    if dedup:
        session.add(OutboxMessage(topic="dedup", payload={"records": dedup},
                                  request_id=request_id))
    session.flush()


def _check(raw: dict[str, Any]) -> tuple[dict[str, Any] | tuple[str, str], Validated | None]:
    """A mutation's envelope and its fields' validation, done before the write lock."""
    m = _envelope(raw)
    if isinstance(m, tuple):
        return m, None
    return m, validate_ahead(m["entity"], m["op"], m["fields_"])


def _apply_batch(session: Session, actor: Actor, mutations: list[tuple[int, dict]],
                 last_mid: int, stored: dict[int, dict],
                 checked: dict[int, tuple[Any, Validated | None]], careful: bool
                 ) -> tuple[list[dict[str, Any]], int, dict[tuple[str, str], None]]:
    ref = Reference.load(session)
    pending = [m for _, m in mutations if m["mid"] > last_mid]
    prefetched = _prefetch(session, pending)
    for (entity, rid), obj in prefetched.items():
        ref.local[(SYNCED_MODELS[entity], rid)] = obj
    names = {actor.user.username}
    for m in pending:
        fields_in = m.get("fields")
        if isinstance(fields_in, dict) and isinstance(fields_in.get("participants"), list):
            names.update(n for n in fields_in["participants"] if isinstance(n, str))
    ref.users(session, sorted(names))
    results: list[dict[str, Any]] = []
    touched: dict[tuple[str, str], None] = {}
    gap = False
    with session.no_autoflush:
        for index, raw in mutations:
            mid = raw["mid"]
            if mid <= last_mid:
                original = stored.get(mid, {"status": "applied"})
                results.append({"mid": mid, "status": "duplicate", "original": original})
                continue
            if gap or mid != last_mid + 1:
                gap = True
                results.append({"mid": mid, "status": "skipped", "code": "gap",
                                "message": f"expected mutation {last_mid + 1} first"})
                continue
            actor.mid = mid
            # every mid above the locked counter was checked: the counter only grows
            result = _apply_one(session, ref, actor, index, raw, prefetched, touched,
                                checked[mid], careful)
            if result["status"] != "applied":
                session.add(MutationResult(device_id=actor.device_id, mid=mid,
                                           entity=str(raw.get("entity", ""))[:20],
                                           record_id=str(raw.get("id", ""))[:36],
                                           status=result["status"],
                                           result={k: v for k, v in result.items()
                                                   if k != "_record"}))
            results.append(result)
            last_mid = mid
    return results, last_mid, touched


def _apply_one(session: Session, ref: Reference, actor: Actor, index: int,
               raw: dict[str, Any], prefetched: dict[tuple[str, str], Any],
               touched: dict[tuple[str, str], None],
               checked: tuple[Any, Validated | None], careful: bool) -> dict[str, Any]:
    mid = raw["mid"]
    m, validated = checked
    if isinstance(m, tuple):
        field, reason = m
        return {"mid": mid, "status": "rejected", "code": "malformed",
                "field": field, "message": f"mutations[{index}].{field}: {reason}"}
    key = (m["entity"], m["id"])
    try:
        if careful:
            # A savepoint keeps a database error in one entry from spoiling the batch.
            with session.begin_nested():
                outcome = apply_change(session, ref, actor, m["entity"], m["op"], m["id"],
                                       m["fields_"], m["base_version"],
                                       existing=prefetched.get(key, ...), validated=validated)
                session.flush()
        else:
            outcome = apply_change(session, ref, actor, m["entity"], m["op"], m["id"],
                                   m["fields_"], m["base_version"],
                                   existing=prefetched.get(key, ...), validated=validated,
                                   new_records=True)
    except Rejected as rej:
        if rej.code == "deleted":
            keep_lost_edit(session, actor, m["entity"], m["id"], m["fields_"])
        return {"mid": mid, "status": "rejected", **rej.as_dict()}
    except (IntegrityError, DataError):
        if not careful:
            raise
        log.warning("entry rejected by the database", extra={"mid": mid,
                                                             "entity": m["entity"]})
        return {"mid": mid, "status": "rejected", "code": "invalid",
                "message": "the server could not store this entry"}
    prefetched[key] = outcome.record
    if outcome.changed:
        touched[key] = None
    # "_record" is replaced by the record's version once the batch is flushed.
    out: dict[str, Any] = {"mid": mid, "status": outcome.status, "_record": outcome.record}
    if outcome.conflict:
        out.update(outcome.conflict)
    return out


_OPS = frozenset(("create", "update", "delete"))
_KEYS = frozenset(("mid", "op", "entity", "id", "fields", "base_version"))


def _envelope(raw: dict[str, Any]) -> dict[str, Any] | tuple[str, str]:
    """One mutation's envelope checked (the same rules as MutationSchema, which documents
    it in the OpenAPI), or (field, reason). Hand-written because it runs for every entry
    of every batch and a schema load costs as much as the record's own validation."""
    unknown = set(raw) - _KEYS
    if unknown:
        return sorted(unknown)[0], "Unknown field."
    op, entity, rid = raw.get("op"), raw.get("entity"), raw.get("id")
    if op not in _OPS:
        return "op", "Must be one of: create, update, delete."
    if entity not in SYNCED_MODELS:
        return "entity", f"Must be one of: {', '.join(SYNCED_MODELS)}."
    if not isinstance(rid, str) or not UUID_RE.match(rid):
        return "id", "not a UUID"
    fields_in = raw.get("fields", {})
    if fields_in is None:
        fields_in = {}
    if not isinstance(fields_in, dict):
        return "fields", "Not a valid mapping type."
    base = raw.get("base_version")
    if base is not None and (not isinstance(base, int) or isinstance(base, bool)):
        return "base_version", "Not a valid integer."
    return {"mid": raw["mid"], "op": op, "entity": entity, "id": rid, "fields_": fields_in,
            "base_version": base}


def _stored_results(session: Session, device_id: str, mids: list[int]) -> dict[int, dict]:
    if not mids:
        return {}
    rows = session.execute(
        select(MutationResult.mid, MutationResult.result).where(
            MutationResult.device_id == device_id, MutationResult.mid.in_(mids))
    ).all()
    return {mid: result for mid, result in rows}


def _prefetch(session: Session, mutations: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """Load every record the batch touches with one query per entity."""
    wanted: dict[str, set[str]] = {}
    for m in mutations:
        entity, rid = m.get("entity"), m.get("id")
        if entity in SYNCED_MODELS and isinstance(rid, str):
            wanted.setdefault(entity, set()).add(rid)
    found: dict[tuple[str, str], Any] = {}
    for entity, ids in wanted.items():
        model = SYNCED_MODELS[entity]
        id_list = list(ids)
        for start in range(0, len(id_list), 500):
            chunk = sorted(id_list[start:start + 500])
            # Row locks (PostgreSQL) keep two batches from editing one record from the
            # same stale read; sorted ids keep lock order stable.
            query = select(model).where(model.id.in_(chunk)).order_by(model.id)
            for obj in session.scalars(query.with_for_update()):
                found[(entity, obj.id)] = obj
        for rid in ids:
            found.setdefault((entity, rid), None)
    return found
