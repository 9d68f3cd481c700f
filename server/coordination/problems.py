"""The problem tracker: every problem workers raised, where it stands on the ladder, how
long it has been open, and which categories recur across enterprises (candidates for
"从源头上推动解决", handling at the source as policy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, literal, select
from sqlalchemy.orm import Session, aliased

from server import deadlines
from server.coordination.filters import live
from server.counting import visit_not_deleted
from server.models import (
    OPEN_STAGES,
    DistrictUnit,
    Enterprise,
    Problem,
    ProblemStageChange,
    User,
    UTCDateTime,
    Visit,
)

DEFAULT_RECUR_MIN = 3


@dataclass(frozen=True)
class ProblemFilters:
    """Narrowing of the tracker; `district_ids` is the user's scope (None: every one)."""

    district_ids: frozenset[int] | None = None
    district_id: int | None = None
    category: str | None = None
    tag: str | None = None
    stage: str | None = None  # a ladder stage, or "open" for any open stage
    min_days: int | None = None
    recurring_only: bool = False
    overdue_only: bool = False  # red: open and past the due date (server/deadlines.py)
    # today's colour (server/deadlines.py): red, yellow, blue, or "none" (open, 正常)
    colour: str | None = None


COLOUR_FILTERS = (*deadlines.COLOURS, "none")


def opened_at() -> Any:
    """When a problem was raised: its visit's time, else when it was recorded."""
    return func.coalesce(Visit.visited_at, Problem.created_at)


def days_between(session: Session, start: Any, end: Any) -> Any:
    """Whole-and-fractional days from `start` to `end`, as SQL, per dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start) / 86400.0
    return func.julianday(end) - func.julianday(start)


def recurring_categories(
    session: Session, district_ids: frozenset[int] | None, min_enterprises: int = DEFAULT_RECUR_MIN
) -> dict[str, dict[str, int]]:
    """Categories raised in at least `min_enterprises` distinct canonical enterprises.

    Counted over live problems whose visit names an enterprise; an enterprise merged into
    another by dedup counts as its canonical one, so duplicates never inflate the count.
    """
    ent = aliased(Enterprise)
    canon_id = func.coalesce(ent.canonical_id, ent.id)
    n_ent = func.count(distinct(canon_id))
    query = (
        select(
            Problem.category,
            n_ent,
            func.count(distinct(Problem.id)),
            func.count(distinct(Problem.id)).filter(Problem.stage.in_(OPEN_STAGES)),
            func.count(distinct(Problem.id)).filter(Problem.stage == "source"),
        )
        .join(Visit, Visit.id == Problem.visit_id)
        .join(ent, ent.id == Visit.enterprise_id)
        .where(*live(Problem), Visit.deleted.is_(False), ent.deleted.is_(False))
        .group_by(Problem.category)
        .having(n_ent >= min_enterprises)
    )
    if district_ids is not None:
        query = query.where(Problem.district_id.in_(sorted(district_ids)))
    return {
        cat: {"enterprises": e, "problems": p, "open": o, "at_source": s}
        for cat, e, p, o, s in session.execute(query)
    }


def list_problems(
    session: Session,
    f: ProblemFilters,
    now: datetime,
    page: int = 1,
    per_page: int = 50,
    min_enterprises: int = DEFAULT_RECUR_MIN,
    oldest_first: bool = False,
) -> dict[str, Any]:
    """A page of problems under the filters, with age and the recurrence flag."""
    recurring = recurring_categories(session, f.district_ids, min_enterprises)
    opened = opened_at()
    until = func.coalesce(Problem.resolved_at, literal(now, UTCDateTime()))
    age = days_between(session, opened, until)
    conds = list(live(Problem))
    if f.district_ids is not None:
        conds.append(Problem.district_id.in_(sorted(f.district_ids)))
    if f.district_id is not None:
        conds.append(Problem.district_id == f.district_id)
    if f.category:
        conds.append(Problem.category == f.category)
    if f.tag:
        conds.append(Problem.tag == f.tag)
    if f.stage == "open":
        conds.append(Problem.stage.in_(OPEN_STAGES))
    elif f.stage:
        conds.append(Problem.stage == f.stage)
    if f.min_days:
        conds.append(age >= f.min_days)
    rules = deadlines.current_rules()
    on = deadlines.today(now, rules.tz)
    if f.overdue_only:
        conds.append(deadlines.overdue_condition(on))
    if f.colour:
        colour = None if f.colour == "none" else f.colour
        conds.append(deadlines.colour_condition(session, colour, on, rules))
    if f.recurring_only:
        conds.append(Problem.category.in_(sorted(recurring) or [""]))
    base = (
        select()
        .select_from(Problem)
        .outerjoin(Visit, Visit.id == Problem.visit_id)
        .where(*conds, visit_not_deleted(Visit))
    )
    total = session.scalar(base.add_columns(func.count())) or 0
    order = (opened.asc() if oldest_first else opened.desc(), Problem.id)
    rows = session.execute(
        base.add_columns(
            Problem.id,
            Problem.category,
            Problem.tag,
            Problem.stage,
            Problem.description,
            Problem.visit_id,
            DistrictUnit.name,
            Enterprise.name,
            opened.label("opened"),
            age.label("age"),
            Problem.stage_started_at,
            Problem.due_date,
            Problem.progress_at,
            Problem.owner_level,
            Problem.owner_work_group_id,
        )
        .outerjoin(DistrictUnit, DistrictUnit.id == Problem.district_id)
        .outerjoin(Enterprise, Enterprise.id == Visit.enterprise_id)
        .order_by(*order)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    items = [
        {
            "id": r[0],
            "category": r[1],
            "tag": r[2],
            "stage": r[3],
            "description": r[4],
            "visit_id": r[5],
            "district": r[6],
            "enterprise": r[7],
            "opened_at": _as_dt(r[8]),
            "days_open": int(float(r[9] or 0)),
            "open": r[3] in OPEN_STAGES,
            "source_candidate": r[1] in recurring and r[3] in ("enterprise", "government"),
            # server/deadlines.py: due date, colour and owner of the current stage
            "deadline": deadlines.state(r[3], r[11], r[10], r[12], on, rules).as_dict(),
            "owner": deadlines.owner_name(session, r[13], r[14]),
        }
        for r in rows
    ]
    return {
        "total": total,
        "page": page,
        "per_page": per_page,
        "items": items,
        "recurring": recurring,
        "min_enterprises": min_enterprises,
    }


def _as_dt(value: Any) -> datetime | None:
    from worker.briefing.compute import _as_datetime

    return None if value is None else _as_datetime(value)


def problem_history(session: Session, problem_id: str) -> list[dict[str, Any]]:
    """A problem's ladder history: who moved it, when, from which stage to which, why."""
    rows = session.execute(
        select(ProblemStageChange, User.display_name)
        .outerjoin(User, User.id == ProblemStageChange.user_id)
        .where(ProblemStageChange.problem_id == problem_id)
        .order_by(ProblemStageChange.at, ProblemStageChange.id)
    )
    return [
        {
            "from": c.from_stage,
            "to": c.to_stage,
            "note": c.note,
            "user": name or "",
            "device_id": c.device_id,
            "at": c.at,
        }
        for c, name in rows
    ]
