"""Read access to visits, problems and enterprises: filtered, paginated, in scope."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.api.common import paginate
from server.auth import login_required
from server.errors import ApiError
from server.extensions import db
from server.models import (
    PROBLEM_CATEGORIES,
    PROBLEM_STAGES,
    PROBLEM_TAGS,
    SYNCED_MODELS,
    VISIT_METHODS,
    AuditEntry,
    Conflict,
    Enterprise,
    Problem,
    Visit,
)
from server.params import choice_arg, datetime_arg, flag_arg, text_arg
from server.privacy import mask_changes, mask_conflict_value
from sync.records import Reference, serialize

bp = Blueprint("records", __name__, url_prefix="/api")


def _in_scope(query: Any, model: Any, ref: Reference) -> Any:
    query = query.where(model.deleted.is_(False))
    if g.scope.read is not None:
        query = query.where(model.district_id.in_(g.scope.read))
    code = text_arg("district")
    if code:
        if code not in ref.district_id:
            raise ApiError(400, "invalid", f"district: no district unit {code!r}", "district")
        query = query.where(model.district_id == ref.district_id[code])
    return query


def _one(entity: str, record_id: str) -> Any:
    obj = db.session.get(SYNCED_MODELS[entity], record_id)
    if obj is None or not g.scope.can_read(obj.district_id):
        # Out of scope looks the same as absent: no probing other districts' ids.
        raise ApiError(404, "not_found", f"no {entity} {record_id}")
    return obj


@bp.get("/visits")
@login_required
def visits():  # noqa: ANN201
    ref = Reference.load(db.session)
    query = _in_scope(select(Visit).options(selectinload(Visit.participants)), Visit, ref)
    if method := choice_arg("method", VISIT_METHODS):
        query = query.where(Visit.method == method)
    if group := text_arg("work_group"):
        query = query.where(Visit.work_group_id == ref.group_id.get(group, -1))
    if start := datetime_arg("from"):
        query = query.where(Visit.visited_at >= start)
    if end := datetime_arg("to"):
        query = query.where(Visit.visited_at < end)
    if flag_arg("canonical"):
        query = query.where(Visit.canonical_id.is_(None))
    query = query.order_by(Visit.visited_at.desc(), Visit.id)
    return jsonify(paginate(query, lambda v: serialize("visit", v, ref)))


@bp.get("/visits/<record_id>")
@login_required
def visit(record_id: str):  # noqa: ANN201
    ref = Reference.load(db.session)
    obj = _one("visit", record_id)
    problems = [
        p
        for p in db.session.scalars(
            select(Problem).where(Problem.visit_id == obj.id, Problem.deleted.is_(False))
        )
        if g.scope.can_read(p.district_id)  # another district's problem stays theirs
    ]
    return jsonify(
        {
            **serialize("visit", obj, ref),
            "problems": [serialize("problem", p, ref) for p in problems],
        }
    )


@bp.get("/problems")
@login_required
def problems():  # noqa: ANN201
    ref = Reference.load(db.session)
    query = _in_scope(select(Problem), Problem, ref)
    if category := choice_arg("category", PROBLEM_CATEGORIES):
        query = query.where(Problem.category == category)
    if tag := choice_arg("tag", PROBLEM_TAGS):
        query = query.where(Problem.tag == tag)
    if stage := choice_arg("stage", PROBLEM_STAGES):
        query = query.where(Problem.stage == stage)
    query = query.order_by(Problem.created_at.desc(), Problem.id)
    return jsonify(paginate(query, lambda p: serialize("problem", p, ref)))


@bp.get("/problems/<record_id>")
@login_required
def problem(record_id: str):  # noqa: ANN201
    ref = Reference.load(db.session)
    obj = _one("problem", record_id)
    history = [
        {
            "from": h.from_stage,
            "to": h.to_stage,
            "note": h.note,
            "by": h.user.username if h.user else None,
            "at": h.at.isoformat(),
        }
        for h in obj.history
    ]
    return jsonify({**serialize("problem", obj, ref), "history": history})


@bp.get("/enterprises")
@login_required
def enterprises():  # noqa: ANN201
    ref = Reference.load(db.session)
    query = _in_scope(select(Enterprise), Enterprise, ref)
    if q := text_arg("q"):
        query = query.where(Enterprise.name.contains(q))
    query = query.order_by(Enterprise.name, Enterprise.id)
    return jsonify(paginate(query, lambda e: serialize("enterprise", e, ref)))


def _record(entity: str, record_id: str) -> None:
    if entity not in SYNCED_MODELS:
        raise ApiError(404, "not_found", f"no entity {entity!r}")
    _one(entity, record_id)


def _conflicts(entity: str, record_id: str) -> list[dict[str, Any]]:
    conflicts = db.session.scalars(
        select(Conflict)
        .where(Conflict.entity == entity, Conflict.record_id == record_id)
        .order_by(Conflict.id)
    )
    return [
        {
            "field": c.field,
            "kind": c.kind,
            # Personal data of needy workers masked, in older rows too (server/privacy.py).
            "server_value": mask_conflict_value(entity, c.field, c.server_value),
            "client_value": mask_conflict_value(entity, c.field, c.client_value),
            "device_id": c.device_id,
            "at": c.created_at.isoformat(),
            "resolved": c.resolved_at is not None,
        }
        for c in conflicts
    ]


@bp.get("/records/<entity>/<record_id>/history")
@login_required
def record_history(entity: str, record_id: str):  # noqa: ANN201
    """The record's audit entries and its conflict log."""
    _record(entity, record_id)
    audit = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity == entity, AuditEntry.record_id == record_id)
        .order_by(AuditEntry.id)
    )
    return jsonify(
        {
            "audit": [
                {
                    "action": a.action,
                    "changes": mask_changes(entity, a.changes),
                    "user_id": a.user_id,
                    "device_id": a.device_id,
                    "source": a.source,
                    "at": a.at.isoformat(),
                }
                for a in audit
            ],
            "conflicts": _conflicts(entity, record_id),
        }
    )


@bp.get("/records/<entity>/<record_id>/conflicts")
@login_required
def record_conflicts(entity: str, record_id: str):  # noqa: ANN201
    """The record's conflict log (docs/sync-protocol.md): overwritten or rejected values."""
    _record(entity, record_id)
    return jsonify({"conflicts": _conflicts(entity, record_id)})
