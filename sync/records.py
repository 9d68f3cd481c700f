"""Applying one change to one synced record, and serialising records for phones.

Plain functions over a SQLAlchemy session: used by the sync push, by the REST API and
by tests alike. A change that cannot be applied raises `Rejected` *before* touching the
session, so a rejected change leaves nothing half-written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from server import deadlines, plausibility
from server.identifiers import (
    clean_code,
    phone_normalise,
    ric_keyed_hash,
    ric_normalise,
    uscc_is_valid,
)
from server.models import (
    OPEN_STAGES,
    SYNCED_MODELS,
    AuditEntry,
    Conflict,
    DistrictUnit,
    HomeVisit,
    Problem,
    ProblemStageChange,
    User,
    Visit,
    WorkGroup,
)
from server.models_dedup import REVIEW_OPEN, REVIEW_REJECTED, ReviewCandidate
from server.privacy import (
    HIDDEN,
    PERSONAL_FIELDS,
    mask_name,
    mask_phone,
    masked_home_visit,
    sees_home_visit_details,
)
from server.scope import Scope
from sync.pinyin import initials, initials_any
from sync.schemas import FAST_LOADERS, PARTIAL_FAST_LOADERS, outside_window
from sync.versioning import NewRecord, add_new_record, defer_insert, queued_new_records

# Fields whose values never go into the audit log in clear.
_SENSITIVE = {"id_number", "phone", "worker_name"}
# The problem ladder: a move to a lower rank (or between the two outcomes) goes back
# and needs a reason in stage_note.
STAGE_RANK = {"enterprise": 0, "government": 1, "source": 2, "resolved": 3, "closed": 3}
# Deleting a visit deletes these children with it, in the same transaction.
VISIT_CHILDREN = (("problem", Problem), ("home_visit", HomeVisit))


class Rejected(Exception):
    """A change that can never be applied; the phone shows `message` on the entry."""

    def __init__(self, code: str, message: str, field: str | None = None, **extra: Any):
        super().__init__(message)
        self.code, self.message, self.field, self.extra = code, message, field, extra

    def as_dict(self) -> dict[str, Any]:
        out = {"code": self.code, "message": self.message, **self.extra}
        if self.field:
            out["field"] = self.field
        return out


@dataclass
class Actor:
    """Who makes a change, from where: recorded in audit entries and conflicts."""

    user: User
    scope: Scope
    id_hash_key: str
    device_id: str | None = None
    source: str = "sync"
    request_id: str | None = None
    mid: int | None = None
    # Plausible dates (aware datetimes, low and high): a date outside is refused.
    date_window: tuple[datetime, datetime] | None = None


@dataclass
class Reference:
    """District and work-group codes ↔ ids and usernames ↔ users, loaded once per batch."""

    district_id: dict[str, int]
    district_code: dict[int, str]
    group_id: dict[str, int]
    group_code: dict[int, str]
    _users: dict[str, User | None] = field(default_factory=dict)
    # Records created or loaded in this batch: found without a flush or a query.
    local: dict[tuple[type, str], Any] = field(default_factory=dict)
    # (author id, local day's start) -> that author's visits of the day so far, this
    # batch's included: the visits_per_day plausibility limit.
    day_counts: dict[tuple[int | None, datetime], int] = field(default_factory=dict)
    # author -> the days whose stored visits are in day_counts already
    day_loaded: dict[int | None, set[datetime]] = field(default_factory=dict)
    # the local days (their starts) the batch's visits fall on: read together, once
    day_wanted: set[datetime] = field(default_factory=set)

    def expect_visit_days(self, times: list[Any]) -> None:
        """Note the visit times a batch will check against visits_per_day, so the
        author's stored visits of those days are read in one query."""
        tz = plausibility.current_limits().tz
        for at in times:
            if isinstance(at, datetime) and at.tzinfo is not None:
                self.day_wanted.add(plausibility.day_bounds(at, tz)[0])

    def find(self, session: Session, model: type, record_id: str) -> Any:
        """A record by id: from this batch first, then the database."""
        key = (model, record_id)
        if key not in self.local:
            self.local[key] = session.get(model, record_id)
        return self.local[key]

    @classmethod
    def load(cls, session: Session) -> Reference:
        districts = session.execute(select(DistrictUnit.id, DistrictUnit.code)).all()
        groups = session.execute(select(WorkGroup.id, WorkGroup.code)).all()
        return cls(
            district_id={c: i for i, c in districts},
            district_code={i: c for i, c in districts},
            group_id={c: i for i, c in groups},
            group_code={i: c for i, c in groups},
        )

    def users(self, session: Session, usernames: list[str]) -> dict[str, User | None]:
        missing = [u for u in usernames if u not in self._users]
        if missing:
            found = session.scalars(select(User).where(User.username.in_(missing))).all()
            by_name = {u.username: u for u in found}
            for name in missing:
                self._users[name] = by_name.get(name)
        return {u: self._users[u] for u in usernames}


@dataclass
class Outcome:
    """What an applied change did: the status for the phone and records for the outbox."""

    status: str  # applied | conflict
    record: Any
    changed: bool = True
    conflict: dict[str, Any] | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [getattr(v, "username", v) for v in value]
    return value


def _validate(
    entity: str,
    fields_in: dict[str, Any],
    partial: bool,
    window: tuple[datetime, datetime] | None = None,
) -> dict[str, Any]:
    schema = PARTIAL_FAST_LOADERS[entity] if partial else FAST_LOADERS[entity]
    if not isinstance(fields_in, dict):
        raise Rejected("invalid", "fields must be an object", "fields")
    try:
        data = schema.load(fields_in)
    except ValidationError as err:
        name, reasons = next(iter(err.messages_dict.items()))
        reason = reasons
        while isinstance(reason, (list, dict)):
            reason = next(iter(reason.values())) if isinstance(reason, dict) else reason[0]
        code = "required" if "required" in str(reason).lower() else "invalid"
        if "Unknown field" in str(reason):
            code = "unknown_field"
        raise Rejected(code, f"{name}: {reason}", name) from None
    visited_at = data.get("visited_at")
    if visited_at is not None:
        why = outside_window(visited_at, window)
        if why:
            raise Rejected("implausible_date", f"visited_at: {why}", "visited_at")
    return data


@dataclass(frozen=True)
class Validated:
    """A change's fields validated ahead of the batch's write lock (validation reads no
    data): `partial` is the guess it was made for (an update), used only if it holds."""

    partial: bool
    data: dict[str, Any] | None = None
    error: Rejected | None = None


def validate_ahead(
    entity: str, op: str, fields_in: dict[str, Any], window: tuple[datetime, datetime] | None = None
) -> Validated | None:
    """Validate a create's or update's fields before any lock is taken (None: a delete)."""
    if op == "delete":
        return None
    partial = op == "update"
    try:
        return Validated(partial, data=_validate(entity, fields_in, partial, window))
    except Rejected as rej:
        return Validated(partial, error=rej)


def _district(ref: Reference, actor: Actor, code: str) -> int:
    district_id = ref.district_id.get(code)
    if district_id is None:
        raise Rejected(
            "unknown_district", f"district_code: no district unit {code!r}", "district_code"
        )
    if not actor.scope.can_write(district_id):
        raise Rejected("forbidden", f"district_code: {code} is outside your scope", "district_code")
    return district_id


def apply_change(
    session: Session,
    ref: Reference,
    actor: Actor,
    entity: str,
    op: str,
    record_id: str,
    fields_in: dict[str, Any] | None,
    base_version: int | None = None,
    existing: Any = ...,
    validated: Validated | None = None,
    new_records: bool = False,
) -> Outcome:
    """Apply one create/update/delete; raise Rejected without touching the session.

    `validated` is the fields' validation done ahead (`validate_ahead`); it is used when
    its guess (create or update) matches whether the record exists, else they are
    validated here. With `new_records`, a created record is a `NewRecord` written by
    `sync.versioning.write_new_records` (the caller calls it before flushing)."""
    model = SYNCED_MODELS[entity]
    obj = session.get(model, record_id) if existing is ... else existing
    if op == "delete":
        if obj is None or obj.deleted:
            return Outcome("applied", obj, changed=False)
        if not actor.scope.can_write(obj.district_id):
            raise Rejected("forbidden", "this record is outside your scope")
        obj.deleted = True
        _audit(session, actor, entity, record_id, "delete", {})
        if entity == "visit":
            _delete_children(session, ref, actor, record_id)
        return Outcome("applied", obj)

    if obj is not None and obj.deleted:
        raise Rejected(
            "deleted", "this record was deleted on the server; the edit is kept in its conflict log"
        )
    if obj is None and op == "update":
        raise Rejected("not_found", "no such record on the server (was its creation rejected?)")
    if obj is not None and not actor.scope.can_write(obj.district_id):
        raise Rejected("forbidden", "this record is outside your scope")

    partial = obj is not None
    if validated is not None and validated.partial == partial:
        if validated.error is not None:
            raise validated.error
        data = validated.data
    else:
        data = _validate(entity, fields_in or {}, partial=partial, window=actor.date_window)
    separate = data.get("separate_from") if entity == "visit" else None
    if separate is not None:
        data = {k: v for k, v in data.items() if k != "separate_from"}
    builder = _BUILDERS[entity]
    values, extra = builder(session, ref, actor, data, obj)
    # Fields a builder merged with the stored value (a participant added): nothing of
    # another edit is overwritten, so no conflict is recorded and a replay keeps them.
    merged: set[str] = values.pop("_merged", set())
    # Hard plausibility limits refuse here, before anything is written; soft ones hold
    # the record for review below (server/plausibility.py).
    reasons = _plausible(session, ref, actor, entity, values, obj)
    creating = obj is None
    # A create for a record that exists (a replay under another mid or device, a queue
    # exported and re-imported) is merged like an update based on the record's first
    # version: a field someone changed since keeps its value, the replayed one goes to
    # the conflict log. It never undoes a later edit.
    replayed = op == "create" and not creating and base_version is None
    if creating and new_records:
        obj = NewRecord(
            model, id=record_id, created_by_id=actor.user.id, deleted=False, canonical_id=None
        )
    elif creating:
        obj = model(id=record_id, created_by_id=actor.user.id)
    conflict = None
    if "stage" in values and not creating and values["stage"] != obj.stage:
        last_stage_version = (obj.field_versions or {}).get("stage", 0)
        stale = base_version is None or base_version < last_stage_version
        if not stale and not replayed:
            _check_ladder(obj.stage, values["stage"], values.get("stage_note"))
            _check_outcome(
                values["stage"],
                values.get("resolution", obj.resolution),
                values.get("stage_note"),
            )
        if stale and not replayed:
            conflict = {
                "code": "stage_conflict",
                "field": "stage",
                "message": "the stage was changed by someone else since you saw it; "
                "a leader will resolve it",
                "server_value": obj.stage,
            }
            session.add(
                Conflict(
                    entity=entity,
                    record_id=record_id,
                    field="stage",
                    kind="stage",
                    server_value=obj.stage,
                    client_value={"stage": values["stage"], "stage_note": values.get("stage_note")},
                    device_id=actor.device_id,
                    user_id=actor.user.id,
                    mid=actor.mid,
                )
            )
            values.pop("stage")
            values.pop("stage_note", None)
    if creating and entity == "problem" and values.get("stage") in ("resolved", "closed"):
        _check_outcome(values["stage"], values.get("resolution"), values.get("stage_note"))
    changes: dict[str, Any] = {}
    kept: list[str] = []
    moved = creating
    for key, value in values.items():
        old = None if creating else getattr(obj, key)
        if not creating and old == value:
            continue
        if replayed and key in (obj.field_versions or {}) and key not in merged:
            kept.append(key)
            session.add(
                Conflict(
                    entity=entity,
                    record_id=record_id,
                    field=key,
                    kind="replayed",
                    server_value=_shown(entity, key, old),
                    client_value=_shown(entity, key, value),
                    device_id=actor.device_id,
                    user_id=actor.user.id,
                    mid=actor.mid,
                )
            )
            continue
        if (
            not creating
            and base_version is not None
            and key not in merged
            and (obj.field_versions or {}).get(key, 0) > base_version
        ):
            # Someone else changed this field after the device last saw it: arrival order
            # wins, but the overwritten value is kept where a person can see it.
            session.add(
                Conflict(
                    entity=entity,
                    record_id=record_id,
                    field=key,
                    kind="overwritten",
                    server_value=_shown(entity, key, old),
                    client_value=_shown(entity, key, value),
                    device_id=actor.device_id,
                    user_id=actor.user.id,
                    mid=actor.mid,
                )
            )
        if entity == "problem" and key == "stage":
            _stage_change(
                session,
                actor,
                record_id,
                None if creating else old,
                value,
                values.get("stage_note"),
            )
            obj.resolved_at = datetime.now(UTC) if value not in OPEN_STAGES else None
            moved = True
        setattr(obj, key, value)
        changes[key] = "***" if _hidden(entity, key) else [_jsonable(old), _jsonable(value)]
    if creating and entity == "problem" and "stage" not in values:
        obj.stage = "enterprise"
        _stage_change(session, actor, record_id, None, "enterprise", None)
    if entity == "problem":
        if moved:
            # A new stage (or a new problem) starts the stage's clock: server/deadlines.py.
            visit = ref.local.get((Visit, obj.visit_id)) or session.get(Visit, obj.visit_id)
            deadlines.start_clock(
                obj,
                obj.stage,
                datetime.now(UTC),
                deadlines.current_rules(),
                visit.work_group_id if visit is not None else None,
            )
        else:
            if "stage_note" in changes or "resolution" in changes:
                obj.progress_at = datetime.now(UTC)  # a follow-up recorded in this stage
            if "category" in changes or "tag" in changes:
                # Another category or tag has another period: same clock, new due date.
                deadlines.reschedule(obj, deadlines.current_rules())
    for key, value in extra.items():
        if creating or getattr(obj, key) != value:
            setattr(obj, key, value)
            changes[key] = "changed"
    if reasons is not None:
        was_held = bool(obj.held)
        held = plausibility.hold(session, entity, obj, obj.district_id, reasons, actor.user.id)
        if creating or held != was_held:
            obj.held = held
            if held != was_held:
                changes["held"] = [was_held, held]
    if creating:
        if new_records:
            add_new_record(session, obj)
        else:
            session.add(obj)
        ref.local[(model, record_id)] = obj
    if changes or creating:
        _audit(session, actor, entity, record_id, "create" if creating else "update", changes)
    if separate:
        keep_apart(session, ref, actor, record_id, separate)
    if kept and conflict is None:
        conflict = {
            "code": "replay_kept_newer",
            "field": kept[0],
            "fields": kept,
            "message": "this entry was already on the server and was changed since; "
            "the newer values were kept and yours are in the conflict log",
        }
    warnings = []
    if entity == "enterprise" and "uscc" in values and obj.uscc and not obj.uscc_valid:
        warnings.append(
            {
                "field": "uscc",
                "code": "uscc_check",
                "message": "uscc: the check character does not match "
                "(GB 32100-2015); the code is kept as typed",
            }
        )
    return Outcome(
        "conflict" if conflict else "applied",
        obj,
        changed=bool(changes) or creating,
        conflict=conflict,
        warnings=warnings,
    )


def _hidden(entity: str, key: str) -> bool:
    """True for a field the audit trail and the conflict log never keep in clear: ID
    numbers and phones anywhere, every personal field of a home visit (server/privacy.py)."""
    return (
        key in _SENSITIVE or key == "id_hash" or (entity == "home_visit" and key in PERSONAL_FIELDS)
    )


def _shown(entity: str, key: str, value: Any) -> Any:
    """A value as the conflict log keeps it: personal data never in clear."""
    return "***" if _hidden(entity, key) else _jsonable(value)


def _check_ladder(old: str | None, new: str, note: str | None) -> None:
    """A stage move back down the ladder (or from one outcome to the other) needs a
    reason; forward moves, skips included, need none."""
    if old is None or old == new:
        return
    back = STAGE_RANK[new] < STAGE_RANK[old] or (STAGE_RANK[new] == STAGE_RANK[old] == 3)
    if back and not (note or "").strip():
        raise Rejected(
            "stage_reason_required",
            f"stage_note: moving a problem back from {old} to {new} needs a reason",
            "stage_note",
        )


def _check_outcome(new: str, resolution: str | None, note: str | None) -> None:
    """Resolving needs what was done (`resolution`); closing unresolved needs that and
    why (`stage_note`)."""
    if new not in ("resolved", "closed"):
        return
    if not (resolution or "").strip():
        raise Rejected(
            "required",
            f"resolution: moving a problem to {new} needs what was done",
            "resolution",
        )
    if new == "closed" and not (note or "").strip():
        raise Rejected(
            "required",
            "stage_note: closing a problem unresolved needs the reason",
            "stage_note",
        )


def _delete_children(session: Session, ref: Reference, actor: Actor, visit_id: str) -> None:
    """Tombstone a deleted visit's problems and home visits (pulled by phones like any
    delete), so no statistic counts a child of a deleted visit."""
    for entity, model in VISIT_CHILDREN:
        children = list(
            session.scalars(
                select(model).where(model.visit_id == visit_id, model.deleted.is_(False))
            )
        )
        children += [
            r
            for r in queued_new_records(session, model)
            if r.visit_id == visit_id and not r.deleted
        ]
        for child in children:
            child.deleted = True
            ref.local[(model, child.id)] = child
            _audit(session, actor, entity, child.id, "delete", {"with_visit": visit_id})


def keep_lost_edit(
    session: Session, actor: Actor, entity: str, record_id: str, fields_in: Any
) -> None:
    """Keep an edit that arrived after the record was deleted, for a person to see."""
    safe = (
        {k: v for k, v in (fields_in or {}).items() if not _hidden(entity, k)}
        if isinstance(fields_in, dict)
        else None
    )
    session.add(
        Conflict(
            entity=entity,
            record_id=record_id,
            field="*",
            kind="deleted",
            server_value=None,
            client_value=safe,
            device_id=actor.device_id,
            user_id=actor.user.id,
            mid=actor.mid,
        )
    )


def _stage_change(
    session: Session,
    actor: Actor,
    problem_id: str,
    from_stage: str | None,
    to_stage: str,
    note: str | None,
) -> None:
    """Record who moved a problem on the ladder (written after the problem's insert)."""
    defer_insert(
        session,
        ProblemStageChange.__table__,
        {
            "problem_id": problem_id,
            "from_stage": from_stage,
            "to_stage": to_stage,
            "note": note,
            "user_id": actor.user.id,
            "device_id": actor.device_id,
            "at": datetime.now(UTC),
        },
    )


def _audit(
    session: Session,
    actor: Actor,
    entity: str,
    record_id: str,
    action: str,
    changes: dict[str, Any],
) -> None:
    defer_insert(
        session,
        AuditEntry.__table__,
        {
            "entity": entity,
            "record_id": record_id,
            "action": action,
            "changes": changes,
            "user_id": actor.user.id,
            "device_id": actor.device_id,
            "source": actor.source,
            "request_id": actor.request_id,
            "at": datetime.now(UTC),
        },
    )


# Builders turn validated fields into column values (and checks that need the database).
# They return (values, extra): `values` are the person's fields, `extra` derived ones.


def _enterprise(session, ref, actor, data, obj):  # noqa: ANN001, ANN202
    values = dict(data)
    extra: dict[str, Any] = {}
    if "district_code" in values:
        values["district_id"] = _district(ref, actor, values.pop("district_code"))
    if "uscc" in values:
        code = clean_code(values["uscc"]) or None
        values["uscc"] = code
        extra["uscc_valid"] = bool(code) and uscc_is_valid(code)
    if "type_tags" in values:
        values["type_tags"] = sorted(set(values["type_tags"]))
    if "focus_tags" in values:
        values["focus_tags"] = sorted(set(values["focus_tags"]))
    return values, extra


def _visit(session, ref, actor, data, obj):  # noqa: ANN001, ANN202
    values = dict(data)
    if "district_code" in values:
        values["district_id"] = _district(ref, actor, values.pop("district_code"))
    if "work_group_code" in values:
        code = values.pop("work_group_code")
        if code:
            if code not in ref.group_id:
                raise Rejected(
                    "unknown_work_group",
                    f"work_group_code: no work group {code!r}",
                    "work_group_code",
                )
            values["work_group_id"] = ref.group_id[code]
        else:
            values["work_group_id"] = None
    ent_id = values.get("enterprise_id")
    if ent_id and (obj is None or ent_id != obj.enterprise_id):
        # Never a visit pointing at an enterprise the server does not have (its creation
        # was rejected, or never sent): the cadre is told and fixes the entry.
        enterprise = ref.find(session, SYNCED_MODELS["enterprise"], ent_id)
        if enterprise is None:
            raise Rejected(
                "enterprise_not_found",
                "enterprise_id: the enterprise is not on the server (was its creation rejected?)",
                "enterprise_id",
            )
        _reference_in_scope(actor, enterprise, "enterprise_id", "the enterprise")
    met = values.get("workers_met", obj.workers_met if obj else 0) or 0
    groups = values.get("workers_by_group", obj.workers_by_group if obj else {}) or {}
    for group, count in groups.items():
        if count > met:
            raise Rejected(
                "invalid",
                f"workers_by_group.{group}: {count} is more than workers_met ({met})",
                f"workers_by_group.{group}",
            )
    if "workers_by_group" in values:
        values["workers_by_group"] = {k: v for k, v in sorted(groups.items()) if v}
    added = values.pop("participants_add", None)
    if "participants" in values or obj is None or added:
        if "participants" in values or obj is None:
            names = list(dict.fromkeys(values.pop("participants", []) or []))
        else:
            # Only an addition: it starts from the participants as stored now (read under
            # the visit's row lock), so a concurrent addition is never dropped.
            names = [u.username for u in obj.participants]
            values["_merged"] = {"participants"}
        # The author always stays among the participants.
        author = actor.user if obj is None else session.get(User, obj.created_by_id)
        if author is not None and author.username not in names:
            names.insert(0, author.username)
        names += [n for n in dict.fromkeys(added or ()) if n not in names]
        users = ref.users(session, names)
        # A name newly added must be someone the author works with (the people of their
        # scope, as /api/reference lists them). Unknown and out-of-scope names answer
        # alike, so a push cannot tell which user names exist elsewhere in the city.
        kept = {u.username for u in obj.participants} if obj is not None else set()
        kept.update(u.username for u in (author, actor.user) if u is not None)
        refused = [n for n in names if n not in kept and not _nameable(actor, users[n])]
        if refused:
            field = "participants_add" if refused[0] in (added or ()) else "participants"
            raise Rejected(
                "invalid_participant",
                f"{field}: {refused[0]!r} is not a user you can name as a participant",
                field,
            )
        values["participants"] = [users[n] for n in names]
    return values, {}


def keep_apart(
    session: Session, ref: Reference, actor: Actor, visit_id: str, others: list[str]
) -> None:
    """The cadre said `visit_id` is another meeting than each of `others` (the phone's
    duplicate-visit warning): each pair is recorded as a person's rejection, so the dedup
    workers never merge them (worker/merges.is_rejected), as a coordinator's "not the
    same" in the review queue does. Ids the actor cannot read are ignored alike."""
    done: set[tuple[str, str]] = session.info.setdefault("fieldvisit.kept_apart", set())
    for other_id in dict.fromkeys(others):
        if other_id == visit_id:
            continue
        other = ref.local.get((Visit, other_id)) or session.get(Visit, other_id)
        if other is None or not actor.scope.can_read(other.district_id):
            continue
        a, b = sorted((visit_id, other_id))
        if (a, b) in done:
            continue
        done.add((a, b))
        row = session.scalar(
            select(ReviewCandidate).where(
                ReviewCandidate.entity == "visit",
                ReviewCandidate.a_id == a,
                ReviewCandidate.b_id == b,
            )
        )
        now = datetime.now(UTC)
        note = "the cadre said: another meeting (duplicate-visit warning)"
        if row is None:
            session.add(
                ReviewCandidate(
                    entity="visit",
                    a_id=a,
                    b_id=b,
                    score=0.0,
                    rule="cadre_separate",
                    features={},
                    status=REVIEW_REJECTED,
                    decided_by_id=actor.user.id,
                    decided_at=now,
                    note=note,
                )
            )
        elif row.status in REVIEW_OPEN:
            row.status, row.decided_by_id, row.decided_at, row.note = (
                REVIEW_REJECTED,
                actor.user.id,
                now,
                note,
            )


def _plausible(
    session: Session, ref: Reference, actor: Actor, entity: str, values: dict[str, Any], obj: Any
) -> list[dict[str, Any]] | None:
    """The soft plausibility reasons of a visit or home visit after this change (None for
    other entities); raise Rejected("implausible_value") beyond a hard limit."""
    if entity not in plausibility.MODELS:
        return None
    limits = plausibility.current_limits()
    try:
        reasons = plausibility.check_values(limits, entity, obj, values)
        at = values.get("visited_at")
        if entity == "visit" and at is not None:
            start, _ = plausibility.day_bounds(at, limits.tz)
            same_day = (
                obj is not None and plausibility.day_bounds(obj.visited_at, limits.tz)[0] == start
            )
            if not same_day:
                author = obj.created_by_id if obj is not None else actor.user.id
                key = (author, start)
                loaded = ref.day_loaded.setdefault(author, set())
                if start not in loaded:
                    days = ({start} | ref.day_wanted) - loaded
                    stored = plausibility.stored_visits_by_day(session, author, limits.tz, days)
                    for day, n in stored.items():
                        ref.day_counts.setdefault((author, day), n)
                    loaded |= days
                count = ref.day_counts.get(key, 0)
                reasons += plausibility.check_day_count(limits, count + 1)
                ref.day_counts[key] = count + 1
            elif obj.held:
                # the day's count that held it still applies
                reasons += _day_reason_kept(session, entity, obj)
    except plausibility.Implausible as exc:
        raise Rejected(
            "implausible_value", str(exc), exc.field, limit=exc.limit, value=exc.value
        ) from None
    return reasons


def _day_reason_kept(session: Session, entity: str, obj: Any) -> list[dict[str, Any]]:
    """The visits_per_day reason of the record's latest flag, if it had one."""
    from server.models_supervision import PlausibilityFlag

    latest = session.scalars(
        select(PlausibilityFlag.reasons)
        .where(PlausibilityFlag.entity == entity, PlausibilityFlag.record_id == obj.id)
        .order_by(PlausibilityFlag.id.desc())
        .limit(1)
    ).first()
    return [r for r in latest or [] if r.get("field") == "visits_per_day"]


def _reference_in_scope(actor: Actor, target: Any, field: str, what: str) -> None:
    """A record may point only at records its author may write (issue 13, item 4): a
    link to another district's visit or enterprise would show that district's data on
    pages of this one, and this record's on theirs."""
    if not actor.scope.can_write(target.district_id):
        raise Rejected(
            "reference_out_of_scope",
            f"{field}: {what} belongs to a district outside your scope",
            field,
        )


def _nameable(actor: Actor, user: User | None) -> bool:
    """True when `user` is one of the people of the actor's scope: of a district it
    reads, or of a work group serving one (server/api/reference.people_in_scope)."""
    if user is None:
        return False
    read = actor.scope.read
    if read is None or user.district_id in read:
        return True
    group = user.work_group
    return group is not None and any(d.id in read for d in group.districts)


def _parent_visit(session: Session, ref: Reference, visit_id: str) -> Any:
    visit = ref.find(session, Visit, visit_id)
    if visit is None:
        raise Rejected("visit_not_found", "visit_id: the visit is not on the server", "visit_id")
    if visit.deleted:
        raise Rejected(
            "parent_deleted",
            "visit_id: the visit was deleted; this entry is kept in its conflict log",
            "visit_id",
        )
    return visit


def _problem(session, ref, actor, data, obj):  # noqa: ANN001, ANN202
    values = dict(data)
    extra: dict[str, Any] = {}
    if "visit_id" in values:
        visit = _parent_visit(session, ref, values["visit_id"])
        _reference_in_scope(actor, visit, "visit_id", "the visit")
        extra["district_id"] = visit.district_id
    return values, extra


def _masked_echoes(actor: Actor, data: dict[str, Any], obj: Any) -> dict[str, Any]:
    """A home visit's fields without the masked values a phone sends back unchanged.

    City staff phones pull needy workers masked (王**, 138****5678, no ID digits,
    hardship or notes: server/privacy.py). An edit of such a copy carries those values
    back; they must never overwrite the real ones. A value that is the stored value's
    masked form is dropped (the stored one stays); a masked value that is not (stars in
    a phone or name, or in an ID number whose last four differ, or on a new record) is
    refused as `masked_value`. A masked viewer's empty hardship, notes or ID are what it
    was shown, not an erasure: dropped too."""
    out = dict(data)
    for key in ("worker_name", "phone", "id_number"):
        value = out.get(key)
        if not isinstance(value, str) or "*" not in value:
            continue
        if obj is not None and (
            (key == "worker_name" and value == mask_name(obj.worker_name))
            or (key == "phone" and value == mask_phone(obj.phone))
            or (key == "id_number" and obj.id_last4 and value[-4:].upper() == obj.id_last4)
        ):
            out.pop(key)
            continue
        raise Rejected(
            "masked_value",
            f"{key}: a masked value (as a city staff phone shows it) cannot be stored; "
            "type the full value or leave the field unchanged",
            key,
        )
    if obj is not None and not sees_home_visit_details(actor.user):
        for key, stored in (
            ("hardship", obj.hardship),
            ("notes", obj.notes),
            ("id_number", obj.id_last4),
        ):
            if key in out and out[key] in (None, "", HIDDEN) and stored:
                out.pop(key)
    return out


def _home_visit(session, ref, actor, data, obj):  # noqa: ANN001, ANN202
    values = _masked_echoes(actor, data, obj)
    extra: dict[str, Any] = {}
    if "district_code" in values:
        values["district_id"] = _district(ref, actor, values.pop("district_code"))
    if values.get("visit_id"):
        visit = _parent_visit(session, ref, values["visit_id"])
        if obj is None or values["visit_id"] != obj.visit_id:
            _reference_in_scope(actor, visit, "visit_id", "the visit")
    if "id_number" in values:
        number = values.pop("id_number")
        if number:
            extra["id_hash"] = ric_keyed_hash(number, actor.id_hash_key)
            extra["id_last4"] = ric_normalise(number)[-4:]
        else:
            extra["id_hash"] = extra["id_last4"] = None
    if "phone" in values and values["phone"]:
        phone = phone_normalise(values["phone"])
        if not phone:
            raise Rejected("invalid", "phone: not a mainland mobile number", "phone")
        values["phone"] = phone
    return values, extra


_BUILDERS = {
    "enterprise": _enterprise,
    "visit": _visit,
    "problem": _problem,
    "home_visit": _home_visit,
}


def serialize(
    entity: str,
    obj: Any,
    ref: Reference,
    participants: list[str] | None = None,
    mask_personal: bool = False,
) -> dict[str, Any]:
    """A record as phones and the API see it (never an ID number in clear; with
    `mask_personal`, a home visit's personal fields masked: server/privacy.py).

    `obj` is an ORM object or a Core row of the entity's table (pull reads rows: no ORM
    overhead); for a row, a visit's `participants` (usernames) are passed in.
    """
    out: dict[str, Any] = {
        "id": obj.id,
        "version": obj.version,
        "district_code": ref.district_code.get(obj.district_id),
        "canonical_id": obj.canonical_id,
        "created_by": obj.created_by_id,
        "updated_at": _jsonable(obj.updated_at),
    }
    if entity == "enterprise":
        out.update(
            name=obj.name,
            uscc=obj.uscc,
            uscc_valid=obj.uscc_valid,
            address=obj.address,
            type_tags=obj.type_tags or [],
            focus_tags=obj.focus_tags or [],
            head_count=obj.head_count,
            has_union=obj.has_union,
            initials=initials(obj.name),
            initials_any=initials_any(obj.name),
        )
    elif entity == "visit":
        if participants is None:
            participants = sorted(u.username for u in obj.participants)
        out.update(
            method=obj.method,
            visited_at=_jsonable(obj.visited_at),
            work_group_code=ref.group_code.get(obj.work_group_id),
            enterprise_id=obj.enterprise_id,
            place=obj.place,
            participants=participants,
            workers_met=obj.workers_met,
            workers_by_group=obj.workers_by_group or {},
            materials=obj.materials,
            consultations=obj.consultations,
            notes=obj.notes,
            lat=obj.lat,
            lng=obj.lng,
        )
    elif entity == "problem":
        out.update(
            visit_id=obj.visit_id,
            category=obj.category,
            tag=obj.tag,
            description=obj.description,
            stage=obj.stage,
            stage_note=obj.stage_note,
            resolution=obj.resolution,
            resolved_at=_jsonable(obj.resolved_at),
            # The deadline of the current stage; the colour changes with the day, so the
            # app reads it from GET /api/problems/deadlines (server/deadlines.py).
            stage_started_at=_jsonable(obj.stage_started_at),
            due_date=obj.due_date.isoformat() if obj.due_date else None,
            owner_level=obj.owner_level,
        )
    elif entity == "home_visit":
        out.update(
            visit_id=obj.visit_id,
            visited_at=_jsonable(obj.visited_at),
            worker_name=obj.worker_name,
            phone=obj.phone,
            id_last4=obj.id_last4,
            hardship=obj.hardship,
            amount_cents=obj.amount_cents,
            notes=obj.notes,
        )
        if mask_personal:
            return masked_home_visit(out)
    return out
