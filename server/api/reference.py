"""Reference data for offline use, and the signed-in user's district progress."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from flask import Blueprint, current_app, g, jsonify
from sqlalchemy import func, or_, select

from config.settings import ROOT
from server.auth import login_required
from server.extensions import db
from server.models import (
    DistrictUnit,
    Enterprise,
    User,
    Visit,
    WorkGroup,
    work_group_districts,
)
from sync.pinyin import initials_table
from sync.records import Reference, serialize

bp = Blueprint("reference", __name__, url_prefix="/api")


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, Any]:
    """Methods, categories, tags, stages, focus groups and targets (config/vocabulary.json)."""
    return json.loads((ROOT / "config" / "vocabulary.json").read_text(encoding="utf-8"))


@bp.get("/reference")
@login_required
def reference():  # noqa: ANN201
    districts = db.session.scalars(select(DistrictUnit).order_by(DistrictUnit.code)).all()
    groups = db.session.scalars(select(WorkGroup).order_by(WorkGroup.code)).all()
    query = select(Enterprise).where(
        Enterprise.deleted.is_(False), Enterprise.canonical_id.is_(None)
    )
    if g.scope.read is not None:
        query = query.where(Enterprise.district_id.in_(g.scope.read))
    ref = Reference.load(db.session)
    vocab = vocabulary()
    return jsonify(
        {
            "districts": [
                {"code": d.code, "name": d.name, "name_en": d.name_en, "short": d.short}
                for d in districts
            ],
            "work_groups": [
                {
                    "code": w.code,
                    "name": w.name,
                    "district_codes": sorted(d.code for d in w.districts),
                }
                for w in groups
            ],
            **{
                k: vocab[k]
                for k in (
                    "methods",
                    "categories",
                    "problem_tags",
                    "stages",
                    "focus_groups",
                    "enterprise_type_tags",
                    "enterprise_focus_tags",
                    "targets",
                )
            },
            "enterprises": [serialize("enterprise", e, ref) for e in db.session.scalars(query)],
            # letter -> common characters read with it: the phone indexes the enterprises
            # it creates itself with this (every reading of a polyphonic character).
            "initials_table": initials_table(),
            # The duplicate-visit warning: how many days back, and who is who (a pulled
            # visit names its participants by username).
            "duplicate_visit_days": current_app.config["FV"].DUPLICATE_VISIT_DAYS,
            "people": people_in_scope(g.scope.read),
        }
    )


def people_in_scope(read: frozenset[int] | None) -> list[dict[str, str]]:
    """Username and display name of everyone who may have recorded a visit the phone
    pulls: users of the districts in scope and of the work groups serving them. None for
    roles that read the whole city: their phones hold only their own visits (sync/pull.py),
    and the whole city's staff list would weigh on every reference download."""
    if read is None:
        return []
    groups = select(work_group_districts.c.work_group_id).where(
        work_group_districts.c.district_id.in_(read)
    )
    query = (
        select(User.username, User.display_name)
        .where(or_(User.district_id.in_(read), User.work_group_id.in_(groups)))
        .order_by(User.username)
    )
    return [{"username": u, "name": n} for u, n in db.session.execute(query)]


def district_progress(district_id: int) -> dict[str, Any]:
    """Distinct enterprises visited (and of how many types) and workers met in a district.

    Reads canonical records only: merged duplicates count once.
    """
    visits = (
        select(Visit)
        .where(
            Visit.district_id == district_id, Visit.deleted.is_(False), Visit.canonical_id.is_(None)
        )
        .subquery()
    )
    workers = db.session.execute(
        select(func.coalesce(func.sum(visits.c.workers_met), 0))
    ).scalar_one()
    enterprise_key = func.coalesce(Enterprise.canonical_id, Enterprise.id)
    rows = db.session.execute(
        select(enterprise_key, Enterprise.type_tags)
        .join(visits, visits.c.enterprise_id == Enterprise.id)
        .where(Enterprise.deleted.is_(False))
    ).all()  # no DISTINCT: PostgreSQL cannot compare json values (type_tags); sets dedupe
    visited = {key for key, _ in rows}
    types = {tag for _, tags in rows for tag in (tags or [])}
    targets = vocabulary()["targets"]
    return {
        "enterprises_visited": len(visited),
        "enterprise_types": len(types),
        "workers_met": int(workers),
        "target_enterprises": targets["enterprises"],
        "target_workers": targets["workers_met"],
    }


@bp.get("/progress")
@login_required
def progress():  # noqa: ANN201
    district = g.user.district
    if district is None and g.user.work_group is not None and g.user.work_group.districts:
        district = g.user.work_group.districts[0]
    if district is None:
        return jsonify({"district_code": None})
    return jsonify(
        {
            "district_code": district.code,
            "district_name": district.name,
            **district_progress(district.id),
        }
    )
