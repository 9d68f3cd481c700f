"""Push: apply a device's batch of mutations exactly once, in one transaction.

Per-device mutation counter (`Device.last_mid`) advanced in the same transaction as the
effects; permanent failures are recorded and still advance it; a gap stops the batch.
The caller commits (and on any exception rolls back, so nothing is half-written).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
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
from sync.schemas import BIGINT_MAX, UUID_RE, PushSchema, unstorable
from sync.versioning import (
    current_version,
    defer_insert,
    lock_for_writing,
    write_new_records,
    written_version,
)

PROTOCOL_VERSION = 1
log = logging.getLogger(__name__)
_PUSH = PushSchema()
DEDUP_ENTITIES = ("enterprise", "visit", "home_visit")


class ProtocolError(Exception):
    """A whole-request error: nothing was applied and nothing advanced."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, **extra: Any
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.extra = (
            status,
            code,
            message,
            field,
            extra,
        )

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
    # Plausible dates (aware, low and high); None accepts any date a database can store.
    date_window: tuple[datetime, datetime] | None = None


def infrastructure_error(exc: BaseException) -> bool:
    """True for errors of the database itself (down, locked, connection lost): those
    answer 503 and the phone retries; anything else an entry causes is its own fault."""
    return isinstance(exc, (OperationalError, InterfaceError))


def fingerprint(m: dict[str, Any]) -> str:
    """What a mutation changes (entity, id, op, fields), hashed: the same mid sent again
    with another change is told apart from a replay."""
    text = json.dumps(
        [m["entity"], m["id"], m["op"], m["fields_"]],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


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
    if protocol is None:
        # An app from before the protocol field: it must update itself.
        raise ProtocolError(
            426,
            "protocol_outdated",
            "protocol: missing; this app is too old for the server: please update it",
            "protocol",
            min_protocol=limits.min_protocol,
        )
    if not isinstance(protocol, int) or isinstance(protocol, bool):
        raise ProtocolError(400, "malformed", "protocol: an integer is required", "protocol")
    if protocol < limits.min_protocol:
        raise ProtocolError(
            426,
            "protocol_outdated",
            "this app is too old for the server: please update it",
            min_protocol=limits.min_protocol,
        )
    if protocol > PROTOCOL_VERSION:
        raise ProtocolError(
            400,
            "protocol_unknown",
            f"protocol {protocol} is newer than the server's {PROTOCOL_VERSION}",
            "protocol",
        )
    try:
        data = _PUSH.load(body)
    except ValidationError as err:
        field, reason = _first_error(err.messages_dict)
        raise ProtocolError(400, "malformed", f"{field}: {reason}", field) from None
    if len(data["mutations"]) > limits.max_batch:
        raise ProtocolError(
            413,
            "batch_too_large",
            f"mutations: at most {limits.max_batch} per batch",
            "mutations",
            max_batch=limits.max_batch,
        )
    mids: set[int] = set()
    parsed = []
    for i, raw in enumerate(data["mutations"]):
        mid = raw.get("mid")
        if not isinstance(mid, int) or isinstance(mid, bool) or not 1 <= mid <= BIGINT_MAX:
            raise ProtocolError(
                400,
                "malformed",
                f"mutations[{i}].mid: a positive integer up to {BIGINT_MAX} is required",
                f"mutations[{i}].mid",
            )
        if mid in mids:
            raise ProtocolError(
                400, "malformed", f"mutations[{i}].mid: {mid} appears twice", f"mutations[{i}].mid"
            )
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
        raise ProtocolError(
            403, "device_mismatch", "device_id: this token belongs to another device", "device_id"
        )
    mutations = data["mutations"]
    if mutations and mutations[-1][1]["mid"] <= device.last_mid:
        # A pure replay (the answer to an earlier push was lost): answer from what is
        # stored, without taking any lock or writing anything. The counter only grows,
        # so a value read without a lock can only make this path rarer, never wrong.
        stored = _stored_results(session, device.id, [m["mid"] for _, m in mutations])
        return {
            "protocol": PROTOCOL_VERSION,
            "last_mid": device.last_mid,
            "server_version": current_version(session),
            "results": [_replayed(m, stored.get(m["mid"])) for _, m in mutations],
        }
    # Envelopes and fields are checked before any lock: validation reads no data, so
    # concurrent pushes validate in parallel and hold the write lock only to write.
    checked = {
        m["mid"]: _check(m, limits.date_window) for _, m in mutations if m["mid"] > device.last_mid
    }
    # Same-device pushes serialise on the device row. The global version (and its row
    # lock) is taken only at the flush, so devices validate and build in parallel and
    # hold the global lock just for the write (see sync/versioning.py).
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has one writer at a time anyway: take the write lock (through the
        # version bump) before reading, so every read below is current.
        lock_for_writing(session)
    last_mid = session.execute(
        select(Device.last_mid).where(Device.id == device.id).with_for_update()
    ).scalar_one()
    actor = Actor(
        user=user,
        scope=scope,
        id_hash_key=id_hash_key,
        device_id=device.id,
        source="sync",
        request_id=request_id,
        date_window=limits.date_window,
    )
    stored = _stored_results(
        session, device.id, [m["mid"] for _, m in mutations if m["mid"] <= last_mid]
    )
    try:
        # Fast path: apply everything, flush once. A database error in one entry rolls
        # the savepoint back and the batch is applied again entry by entry.
        with session.begin_nested():
            results, new_last, touched = _apply_batch(
                session, actor, mutations, last_mid, stored, checked, careful=False
            )
            _finish(session, device, new_last, touched, request_id)
    except Exception as exc:
        # Whatever one entry did to the write (a value the driver cannot bind, a key
        # violation, a bug), the batch is applied again entry by entry, each in its own
        # savepoint, so that entry alone is rejected. Only a database that is down or
        # locked fails the request (503: the phone retries).
        if infrastructure_error(exc):
            raise
        if not isinstance(exc, _EntryFailed):
            log.warning("batch hit an error (%s); applying entry by entry", type(exc).__name__)
        results, new_last, touched = _apply_batch(
            session, actor, mutations, last_mid, stored, checked, careful=True
        )
        _finish(session, device, new_last, touched, request_id)
    for result in results:
        record = result.pop("_record", None)
        if record is not None:
            result["version"] = record.version
    return {
        "protocol": PROTOCOL_VERSION,
        "last_mid": new_last,
        "server_version": written_version(session),
        "results": results,
    }


def _replayed(m: dict[str, Any], stored: tuple[str | None, dict] | None) -> dict[str, Any]:
    """The answer to a mutation whose mid was already used: `duplicate` with the stored
    result, or `mid_reused` when that mid carried another change (an app whose counter
    restarted): nothing is applied and the app renumbers and resends."""
    mid = m["mid"]
    if stored is None:
        return {"mid": mid, "status": "duplicate", "original": {"status": "applied"}}
    print_, result = stored
    env = _envelope(m)
    if print_ is not None and (isinstance(env, tuple) or fingerprint(env) != print_):
        return {
            "mid": mid,
            "status": "rejected",
            "code": "mid_reused",
            "field": "mid",
            "message": f"mid {mid} was already used by this device for another entry; "
            "renumber after last_mid and send again",
        }
    return {"mid": mid, "status": "duplicate", "original": result}


def _finish(
    session: Session,
    device: Device,
    last_mid: int,
    touched: dict[tuple[str, str], None],
    request_id: str | None,
) -> None:
    write_new_records(session)  # before the flush: updates may refer to new records
    session.execute(
        Device.__table__.update().where(Device.id == device.id).values(last_mid=last_mid)
    )
    dedup = [[e, i] for (e, i) in touched if e in DEDUP_ENTITIES]
    if dedup:
        session.add(OutboxMessage(topic="dedup", payload={"records": dedup}, request_id=request_id))
    session.flush()


def _check(
    raw: dict[str, Any], window: tuple[datetime, datetime] | None = None
) -> tuple[dict[str, Any] | tuple[str, str, str], Validated | None]:
    """A mutation's envelope and its fields' validation, done before the write lock."""
    m = _envelope(raw)
    if isinstance(m, tuple):
        return m, None
    m["print_"] = fingerprint(m)  # hashed here too, not under the write lock
    return m, validate_ahead(m["entity"], m["op"], m["fields_"], window)


def _apply_batch(
    session: Session,
    actor: Actor,
    mutations: list[tuple[int, dict]],
    last_mid: int,
    stored: dict[int, dict],
    checked: dict[int, tuple[Any, Validated | None]],
    careful: bool,
) -> tuple[list[dict[str, Any]], int, dict[tuple[str, str], None]]:
    ref = Reference.load(session)
    pending = [m for _, m in mutations if m["mid"] > last_mid]
    ref.expect_visit_days(
        [
            validated.data.get("visited_at")
            for m, validated in (checked[raw["mid"]] for raw in pending)
            if validated is not None and validated.data is not None and m["entity"] == "visit"
        ]
    )
    prefetched = _prefetch(
        session,
        [checked[m["mid"]][0] for m in pending if not isinstance(checked[m["mid"]][0], tuple)],
    )
    for (entity, rid), obj in prefetched.items():
        ref.local[(SYNCED_MODELS[entity], rid)] = obj
    names = {actor.user.username}
    for raw in pending:
        m = checked[raw["mid"]][0]
        if isinstance(m, tuple):  # refused envelope: nothing of it reaches the database
            continue
        fields_in = m["fields_"]
        if isinstance(fields_in.get("participants"), list):
            names.update(n for n in fields_in["participants"] if isinstance(n, str))
    ref.users(session, sorted(names))
    results: list[dict[str, Any]] = []
    touched: dict[tuple[str, str], None] = {}
    gap = reused = False
    # An entry (a visit with the enterprise, home visit and problems saved with it) is
    # all or nothing: one rejected record rejects the others, so the server never keeps
    # a visit pointing at an enterprise it refused. See docs/sync-protocol.md, "Entries".
    runs = _entry_runs(mutations, last_mid)
    run: _Run | None = None
    rows: list[dict[str, Any]] = []
    with session.no_autoflush:
        for index, raw in mutations:
            mid = raw["mid"]
            if mid <= last_mid:
                results.append(_replayed(raw, stored.get(mid)))
                reused = reused or results[-1]["status"] == "rejected"
                continue
            if reused:
                # Entries after a reused mid wait until the app has renumbered the
                # reused ones, so the queue keeps its order (a problem after its visit).
                results.append(
                    {
                        "mid": mid,
                        "status": "skipped",
                        "code": "after_mid_reused",
                        "message": "send again after renumbering the reused entries",
                    }
                )
                continue
            if gap or mid != last_mid + 1:
                gap = True
                results.append(
                    {
                        "mid": mid,
                        "status": "skipped",
                        "code": "gap",
                        "message": f"expected mutation {last_mid + 1} first",
                    }
                )
                continue
            actor.mid = mid
            # every mid above the locked counter was checked: the counter only grows
            m, _ = checked[mid]
            envelope_ok = not isinstance(m, tuple)
            if mid in runs and runs[mid][0] == mid:
                run = _Run(session.begin_nested() if careful else None)
            in_run = run if mid in runs else None
            if in_run is not None and in_run.cause is not None:
                result = _entry_rejected(mid, in_run.cause, m["entity"] if envelope_ok else None)
            else:
                result = _apply_one(
                    session, ref, actor, index, raw, prefetched, touched, checked[mid], careful
                )
            if in_run is not None and in_run.cause is None and result["status"] == "rejected":
                in_run.cause = {
                    "mid": mid,
                    "entity": m["entity"] if envelope_ok else None,
                    "id": m["id"] if envelope_ok else None,
                    **{k: result.get(k) for k in ("code", "field", "message")},
                }
                if in_run.applied:
                    if not careful:
                        raise _EntryFailed()
                    in_run.undo(session, ref, prefetched, touched, actor, m, result)
                    for pos, (earlier_m, earlier_mid) in in_run.applied.items():
                        results[pos] = _entry_rejected(earlier_mid, in_run.cause, earlier_m)
                    in_run.applied.clear()
            elif in_run is not None and in_run.cause is None:
                in_run.applied[len(results)] = (m["entity"] if envelope_ok else None, mid)
                in_run.keys.append((m["entity"], m["id"]))
            results.append(result)
            last_mid = mid
            rows.append(
                {
                    "device_id": actor.device_id,
                    "mid": mid,
                    "entity": m["entity"] if envelope_ok else "",
                    "record_id": m["id"] if envelope_ok else "",
                    "result_pos": len(results) - 1,
                    "fingerprint": m["print_"] if envelope_ok else None,
                }
            )
            if in_run is not None and runs[mid][1] == mid:
                if in_run.tx is not None and in_run.tx.is_active:
                    in_run.tx.commit()
                run = None
            if in_run is None or runs[mid][1] == mid:
                _write_rows(session, rows, results, careful)
    if run is not None and run.tx is not None and run.tx.is_active:
        run.tx.commit()  # a run cut short by a gap: what was applied of it stays
    _write_rows(session, rows, results, careful)
    return results, last_mid, touched


def _write_rows(
    session: Session, rows: list[dict[str, Any]], results: list[dict[str, Any]], careful: bool
) -> None:
    """Store each decided mutation's result (an entry's once the whole entry is decided)."""
    for row in rows:
        result = results[row.pop("result_pos")]
        row["status"] = result["status"]
        row["result"] = {k: v for k, v in result.items() if k != "_record"}
        if careful:
            # written now: a deferred row could be flushed inside the next entry's
            # savepoint and rolled back with it
            session.execute(MutationResult.__table__.insert(), [row])
        else:
            defer_insert(session, MutationResult.__table__, row)
    rows.clear()


@dataclass
class _Run:
    """One entry's mutations being applied: its savepoint (careful path), what of it was
    applied so far (result position -> entity, mid) and the first rejection."""

    tx: Any
    cause: dict[str, Any] | None = None
    applied: dict[int, tuple[str | None, int]] = dataclasses.field(default_factory=dict)
    keys: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def undo(
        self,
        session: Session,
        ref: Reference,
        prefetched: dict[tuple[str, str], Any],
        touched: dict[tuple[str, str], None],
        actor: Actor,
        m: Any,
        result: dict[str, Any],
    ) -> None:
        """Roll the entry back: nothing of it stays, the batch's maps read the database."""
        self.tx.rollback()
        for entity, rid in self.keys:
            model = SYNCED_MODELS[entity]
            ref.local.pop((model, rid), None)
            prefetched[(entity, rid)] = ref.find(session, model, rid)
            touched.pop((entity, rid), None)
        if isinstance(m, dict) and result.get("code") in ("deleted", "parent_deleted"):
            # the lost edit was kept inside the rolled-back savepoint: keep it again
            keep_lost_edit(session, actor, m["entity"], m["id"], m["fields_"])


def _apply_one(
    session: Session,
    ref: Reference,
    actor: Actor,
    index: int,
    raw: dict[str, Any],
    prefetched: dict[tuple[str, str], Any],
    touched: dict[tuple[str, str], None],
    checked: tuple[Any, Validated | None],
    careful: bool,
) -> dict[str, Any]:
    mid = raw["mid"]
    m, validated = checked
    if isinstance(m, tuple):
        code, field, reason = m
        return {
            "mid": mid,
            "status": "rejected",
            "code": code,
            "field": field,
            "message": f"mutations[{index}].{field}: {reason}",
        }
    key = (m["entity"], m["id"])
    try:
        if careful:
            # A savepoint keeps a database error in one entry from spoiling the batch.
            with session.begin_nested():
                outcome = apply_change(
                    session,
                    ref,
                    actor,
                    m["entity"],
                    m["op"],
                    m["id"],
                    m["fields_"],
                    m["base_version"],
                    existing=prefetched.get(key, ...),
                    validated=validated,
                )
                session.flush()
        else:
            outcome = apply_change(
                session,
                ref,
                actor,
                m["entity"],
                m["op"],
                m["id"],
                m["fields_"],
                m["base_version"],
                existing=prefetched.get(key, ...),
                validated=validated,
                new_records=True,
            )
    except Rejected as rej:
        if rej.code in ("deleted", "parent_deleted"):
            keep_lost_edit(session, actor, m["entity"], m["id"], m["fields_"])
        return {"mid": mid, "status": "rejected", **rej.as_dict()}
    except Exception as exc:
        if not careful or infrastructure_error(exc):
            raise
        # The savepoint is rolled back: forget what this entry put in the batch's maps
        # and read the record as the database has it.
        model = SYNCED_MODELS[m["entity"]]
        ref.local.pop((model, m["id"]), None)
        prefetched[key] = ref.find(session, model, m["id"])
        # The exception's text may quote the entry's values (personal data): only its type.
        log.warning(
            "entry rejected by the database: %s",
            type(exc).__name__,
            extra={"mid": mid, "entity": m["entity"], "record_id": m["id"]},
        )
        return {
            "mid": mid,
            "status": "rejected",
            "code": "unstorable",
            "message": "the server could not store this entry; check its values",
        }
    prefetched[key] = outcome.record
    if outcome.changed:
        touched[key] = None
    # "_record" is replaced by the record's version once the batch is flushed.
    out: dict[str, Any] = {"mid": mid, "status": outcome.status, "_record": outcome.record}
    if outcome.conflict:
        out.update(outcome.conflict)
    if outcome.warnings:
        out["warnings"] = outcome.warnings
    return out


_OPS = frozenset(("create", "update", "delete"))
_KEYS = frozenset(("mid", "op", "entity", "id", "fields", "base_version", "entry"))


def _envelope(raw: dict[str, Any]) -> dict[str, Any] | tuple[str, str, str]:
    """One mutation's envelope checked (the same rules as MutationSchema, which documents
    it in the OpenAPI), or (code, field, reason). Hand-written because it runs for every
    entry of every batch and a schema load costs as much as the record's own validation.
    Also refused here: what no database stores alike (NUL, lone surrogates, too deep)."""
    bad = unstorable(raw)
    if bad is not None:
        return "unstorable", bad[0], bad[1]
    unknown = set(raw) - _KEYS
    if unknown:
        return "malformed", sorted(unknown)[0], "Unknown field."
    op, entity, rid = raw.get("op"), raw.get("entity"), raw.get("id")
    if op not in _OPS:
        return "malformed", "op", "Must be one of: create, update, delete."
    if entity not in SYNCED_MODELS:
        return "malformed", "entity", f"Must be one of: {', '.join(SYNCED_MODELS)}."
    if not isinstance(rid, str) or not UUID_RE.match(rid):
        return "malformed", "id", "not a UUID"
    fields_in = raw.get("fields", {})
    if fields_in is None:
        fields_in = {}
    if not isinstance(fields_in, dict):
        return "malformed", "fields", "Not a valid mapping type."
    base = raw.get("base_version")
    if base is not None and (
        not isinstance(base, int) or isinstance(base, bool) or not 0 <= base <= BIGINT_MAX
    ):
        return "malformed", "base_version", "Not a valid integer."
    entry = raw.get("entry")
    if entry is not None and (not isinstance(entry, str) or not UUID_RE.match(entry)):
        return "malformed", "entry", "not a UUID"
    return {
        "mid": raw["mid"],
        "op": op,
        "entity": entity,
        "id": rid,
        "fields_": fields_in,
        "base_version": base,
        "entry": entry,
    }


def _entry_of(raw: dict[str, Any]) -> str | None:
    """The entry a mutation belongs to (read from the raw mutation, so an entry whose
    envelope is refused still fails its whole entry)."""
    entry = raw.get("entry")
    return entry if isinstance(entry, str) and UUID_RE.match(entry) else None


def _entry_runs(mutations: list[tuple[int, dict]], last_mid: int) -> dict[int, tuple[int, int]]:
    """For each pending mid that belongs to an entry of two or more mutations: (first,
    last) mid of its run. A run is consecutive mutations (in mid order) with the same
    `entry`: the phone saves an entry in one transaction, so its mids are consecutive;
    a run never spans another entry's mutation, so rolling a run back touches nothing
    else."""
    runs: dict[int, tuple[int, int]] = {}
    current: list[int] = []
    current_entry = None

    def close() -> None:
        if len(current) > 1:
            for mid in current:
                runs[mid] = (current[0], current[-1])

    for _, raw in mutations:
        if raw["mid"] <= last_mid:
            continue
        entry = _entry_of(raw)
        if entry is None or entry != current_entry:
            close()
            current, current_entry = [], entry
        if entry is not None:
            current.append(raw["mid"])
    close()
    return runs


class _EntryFailed(Exception):
    """Fast path only: an entry's record was rejected after another record of the same
    entry was applied; the batch is applied again carefully, entry by entry."""


def _entry_rejected(mid: int, cause: dict[str, Any], entity: str | None) -> dict[str, Any]:
    """The answer for a record whose entry failed because of another record in it."""
    what = cause.get("entity") or "record"
    return {
        "mid": mid,
        "status": "rejected",
        "code": "entry_rejected",
        "field": None,
        "message": f"another record of this entry ({what}, mutation {cause['mid']}) was "
        f"rejected: {cause.get('message') or cause.get('code')}; "
        "fix it and send the entry again",
        "cause": cause,
    }


def _stored_results(
    session: Session, device_id: str, mids: list[int]
) -> dict[int, tuple[str | None, dict]]:
    """The stored (fingerprint, result) of each of the device's mids that has one."""
    found: dict[int, tuple[str | None, dict]] = {}
    for start in range(0, len(mids), 500):
        rows = session.execute(
            select(MutationResult.mid, MutationResult.fingerprint, MutationResult.result).where(
                MutationResult.device_id == device_id,
                MutationResult.mid.in_(mids[start : start + 500]),
            )
        ).all()
        found.update((mid, (print_, result)) for mid, print_, result in rows)
    return found


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
            chunk = sorted(id_list[start : start + 500])
            # Row locks (PostgreSQL) keep two batches from editing one record from the
            # same stale read; sorted ids keep lock order stable.
            query = select(model).where(model.id.in_(chunk)).order_by(model.id)
            for obj in session.scalars(query.with_for_update()):
                found[(entity, obj.id)] = obj
        for rid in ids:
            found.setdefault((entity, rid), None)
    return found
