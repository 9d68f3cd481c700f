"""The city dashboard's numbers: one row per district unit, a weekly series, drill-downs.

Per-district progress reuses the briefing engineer's aggregates
(`worker.briefing.compute.compute_figures`) whenever the filters are only a period and
the user's scope: those are the figures the briefings mail out, so the dashboard and
the briefing never disagree. A work-group or enterprise-tag filter narrows the visits
themselves, which those functions cannot do; `_filtered_figures` then runs the same
aggregates (same definitions, same `DistrictFigures`) with the extra conditions, and
tests/coordination pin that both paths agree when no such filter applies.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, distinct, func, select
from sqlalchemy.orm import Session, aliased

from server import deadlines
from server.coordination.filters import (
    Filters,
    as_date,
    live,
    local_day,
    visit_conditions,
)
from server.models import (
    ENTERPRISE_TYPE_TAGS,
    FOCUS_GROUPS,
    OPEN_STAGES,
    PROBLEM_CATEGORIES,
    PROBLEM_STAGES,
    VISIT_METHODS,
    AuditEntry,
    Conflict,
    Device,
    DistrictUnit,
    Enterprise,
    HomeVisit,
    Problem,
    User,
    Visit,
    WorkGroup,
    visit_participants,
)
from server.models_supervision import SpotCheckItem
from worker.briefing.compute import (
    CADRE_ROLES,
    DistrictFigures,
    _json_array_values,
    _rank,
    compute_figures,
    vocabulary,
)

SORT_KEYS = (
    "code",
    "visits",
    "enterprises",
    "enterprise_types",
    "workers_met",
    "participation",
    "problems_raised",
    "problems_open",
    "problems_resolved",
    "home_visits",
    "condolence_cents",
    "score",
    *(f"method_{m}" for m in VISIT_METHODS),
    *(f"stage_{s}" for s in PROBLEM_STAGES),
)


def scoped_districts(session: Session, district_ids: frozenset[int] | None) -> list[DistrictUnit]:
    """Active district units inside a scope, in code order."""
    query = select(DistrictUnit).where(DistrictUnit.active.is_(True)).order_by(DistrictUnit.code)
    if district_ids is not None:
        query = query.where(DistrictUnit.id.in_(sorted(district_ids)))
    return list(session.scalars(query))


def district_figures(session: Session, f: Filters) -> dict[int, DistrictFigures]:
    """Every in-scope district's figures under the filters, keyed by district id."""
    districts = scoped_districts(session, f.district_ids)
    if not f.narrows_visits:
        figs = compute_figures(session, f.period, districts)
    else:
        figs = _filtered_figures(session, f, districts)
    for district_id, counts in deadline_colours(session, f).items():
        if district_id in figs:
            figs[district_id].deadline_colours = counts
    return figs


def deadline_colours(session: Session, f: Filters) -> dict[int, dict[str, int]]:
    """Per district, the open problems under the filters by colour (server/deadlines.py)
    on the period's last day (today at the latest): the problems the 未解决 column
    counts — raised (their visit) before the period ends, of the work group's visits or
    the tagged enterprises when those filters apply, still open."""
    rules = deadlines.current_rules()
    on = min(f.date_to, deadlines.today(None, rules.tz))
    _, end = f.bounds()
    sums = [
        func.coalesce(
            func.sum(case((deadlines.colour_condition(session, c, on, rules), 1), else_=0)), 0
        )
        for c in deadlines.COLOURS
    ]
    rows = session.execute(
        select(Problem.district_id, *sums)
        .select_from(Problem)
        .outerjoin(Visit, Visit.id == Problem.visit_id)
        .where(
            *live(Problem),
            *visit_conditions(f, dated=False, of_children=True),
            func.coalesce(Visit.visited_at, Problem.created_at) < end,
            Problem.stage.in_(OPEN_STAGES),
        )
        .group_by(Problem.district_id)
    )
    out = {
        d.id: dict.fromkeys(deadlines.COLOURS, 0) for d in scoped_districts(session, f.district_ids)
    }
    for district_id, *counts in rows:
        out[district_id] = {c: int(n) for c, n in zip(deadlines.COLOURS, counts, strict=True)}
    return out


def _blank(d: DistrictUnit) -> DistrictFigures:
    return DistrictFigures(
        d.id,
        d.code,
        d.name,
        visits_by_method=dict.fromkeys(VISIT_METHODS, 0),
        focus_groups=dict.fromkeys(FOCUS_GROUPS, 0),
        enterprises_by_type=dict.fromkeys(ENTERPRISE_TYPE_TAGS, 0),
        problems_by_category=dict.fromkeys(PROBLEM_CATEGORIES, 0),
        problems_by_stage=dict.fromkeys(PROBLEM_STAGES, 0),
    )


def _filtered_figures(
    session: Session, f: Filters, districts: list[DistrictUnit]
) -> dict[int, DistrictFigures]:
    """compute_figures' aggregates over only the visits of a work group or tagged enterprises."""
    figs = {d.id: _blank(d) for d in districts}
    conds = visit_conditions(f)
    # One work group's visits on SQLite: a few SQLite plans need to be told to start from
    # that group's visits (ix_visits_group_stats, server/models.py).
    one_group = f.work_group_id is not None and session.get_bind().dialect.name == "sqlite"
    start, end = f.bounds()

    focus_cols = [
        func.coalesce(func.sum(Visit.workers_by_group[g].as_integer()), 0) for g in FOCUS_GROUPS
    ]
    for district_id, method, n, workers, *focus in session.execute(
        select(
            Visit.district_id,
            Visit.method,
            func.count(),
            func.coalesce(func.sum(Visit.workers_met), 0),
            *focus_cols,
        )
        .where(*conds)
        .group_by(Visit.district_id, Visit.method)
    ):
        fig = figs.get(district_id)
        if fig is None:
            continue
        fig.visits += n
        fig.visits_by_method[method] = fig.visits_by_method.get(method, 0) + n
        fig.workers_met += int(workers)
        for g, count in zip(FOCUS_GROUPS, focus, strict=True):
            fig.focus_groups[g] += int(count or 0)

    ent, canon = aliased(Enterprise), aliased(Enterprise)
    canon_id = func.coalesce(ent.canonical_id, ent.id)
    for district_id, n in session.execute(
        select(Visit.district_id, func.count(distinct(canon_id)))
        .join(ent, ent.id == Visit.enterprise_id)
        .where(*conds, ent.deleted.is_(False))
        .group_by(Visit.district_id)
    ):
        if district_id in figs:
            figs[district_id].enterprises = n
    tags = _json_array_values(session, canon.type_tags)
    from sqlalchemy import true

    by_tag = (
        select(Visit.district_id, tags.c.value, func.count(distinct(canon.id)))
        .join(ent, ent.id == Visit.enterprise_id)
        .join(canon, canon.id == canon_id)
        .join(tags, true())
        .where(*conds, ent.deleted.is_(False))
        .group_by(Visit.district_id, tags.c.value)
    )
    if one_group:
        # SQLite would walk the (district, method) statistics index over every visit.
        by_tag = by_tag.with_hint(Visit, "INDEXED BY ix_visits_group_stats", "sqlite")
    for district_id, tag, n in session.execute(by_tag):
        if district_id in figs:
            figs[district_id].enterprises_by_type[tag] = n
    for fig in figs.values():
        fig.enterprise_types = sum(1 for n in fig.enterprises_by_type.values() if n)

    cadre = [User.role.in_(CADRE_ROLES), User.active.is_(True)]
    for district_id, n in session.execute(
        select(User.district_id, func.count()).where(*cadre).group_by(User.district_id)
    ):
        if district_id in figs:
            figs[district_id].cadres_total = n
    for district_id, n in session.execute(
        select(User.district_id, func.count(distinct(User.id)))
        .join(visit_participants, visit_participants.c.user_id == User.id)
        .join(
            Visit,
            and_(Visit.id == visit_participants.c.visit_id, Visit.district_id == User.district_id),
        )
        .where(*cadre, *conds)
        .group_by(User.district_id)
    ):
        if district_id in figs:
            figs[district_id].cadres_active = n

    # Problems of the narrowed visits: raised when their visit took place (as briefings do).
    undated = visit_conditions(f, dated=False, of_children=True)
    pbase = (
        select()
        .select_from(Problem)
        .join(Visit, Visit.id == Problem.visit_id)
        .where(*live(Problem), *undated)
    )
    for district_id, category, stage, n in session.execute(
        pbase.add_columns(Problem.district_id, Problem.category, Problem.stage, func.count())
        .where(Visit.visited_at >= start, Visit.visited_at < end)
        .group_by(Problem.district_id, Problem.category, Problem.stage)
    ):
        fig = figs.get(district_id)
        if fig is None:
            continue
        fig.problems_raised += n
        fig.problems_by_category[category] = fig.problems_by_category.get(category, 0) + n
        fig.problems_by_stage[stage] = fig.problems_by_stage.get(stage, 0) + n
    for district_id, n in session.execute(
        pbase.add_columns(Problem.district_id, func.count())
        .where(Problem.stage == "resolved", Problem.resolved_at >= start, Problem.resolved_at < end)
        .group_by(Problem.district_id)
    ):
        if district_id in figs:
            figs[district_id].problems_resolved = n
    for district_id, n in session.execute(
        pbase.add_columns(Problem.district_id, func.count())
        .where(Visit.visited_at < end, Problem.stage.in_(OPEN_STAGES))
        .group_by(Problem.district_id)
    ):
        if district_id in figs:
            figs[district_id].problems_open = n

    homes = (
        select(
            HomeVisit.district_id, func.count(), func.coalesce(func.sum(HomeVisit.amount_cents), 0)
        )
        .join(Visit, Visit.id == HomeVisit.visit_id)
        .where(
            *live(HomeVisit), *undated, HomeVisit.visited_at >= start, HomeVisit.visited_at < end
        )
        .group_by(HomeVisit.district_id)
    )
    if one_group:
        # from the group's visits to their home visits, not every home visit to its visit
        homes = homes.with_hint(HomeVisit, "INDEXED BY ix_home_visits_visit_id", "sqlite")
    for district_id, n, cents in session.execute(homes):
        if district_id in figs:
            figs[district_id].home_visits, figs[district_id].condolence_cents = n, int(cents)

    _rank(figs, vocabulary()["targets"])
    return figs


# ---------------------------------------------------------------------------- rows


def row_dict(fig: DistrictFigures, targets: dict[str, Any]) -> dict[str, Any]:
    """One dashboard row: the district's figures flattened for a table, JSON or export."""
    row: dict[str, Any] = {
        "district_id": fig.district_id,
        "code": fig.code,
        "name": fig.name,
        "visits": fig.visits,
        "enterprises": fig.enterprises,
        "enterprise_types": fig.enterprise_types,
        "workers_met": fig.workers_met,
        "cadres_total": fig.cadres_total,
        "cadres_active": fig.cadres_active,
        "participation": fig.participation,
        "problems_raised": fig.problems_raised,
        "problems_open": fig.problems_open,
        "problems_resolved": fig.problems_resolved,
        "home_visits": fig.home_visits,
        "condolence_cents": fig.condolence_cents,
        "score": fig.score,
        "progress": fig.progress(targets),
    }
    # Open problems by deadline colour (server/deadlines.py): red overdue, yellow
    # behind, blue near.
    for colour in ("red", "yellow", "blue"):
        row[f"deadline_{colour}"] = (fig.deadline_colours or {}).get(colour, 0)
    row["targets_met"] = (
        fig.enterprises >= targets["enterprises"]
        and fig.enterprise_types >= targets["enterprise_types"]
        and fig.workers_met >= targets["workers_met"]
    )
    for m in VISIT_METHODS:
        row[f"method_{m}"] = fig.visits_by_method.get(m, 0)
    for s in PROBLEM_STAGES:
        row[f"stage_{s}"] = fig.problems_by_stage.get(s, 0)
    return row


def dashboard(
    session: Session, f: Filters, sort: str = "code", descending: bool = False
) -> dict[str, Any]:
    """The dashboard table: rows (sorted), a city total row and the targets."""
    targets = vocabulary()["targets"]
    figs = district_figures(session, f)
    rows = [row_dict(fig, targets) for fig in figs.values()]
    if sort not in SORT_KEYS:
        sort = "code"
    # None (no cadres) sorts as the lowest value in either direction's meaning.
    rows.sort(
        key=lambda r: (
            (r[sort] is not None, r[sort] if r[sort] is not None else 0, r["code"])
            if sort != "code"
            else (True, r["code"], "")
        ),
        reverse=descending,
    )
    total: dict[str, Any] = {"code": "", "name": "合计"}
    for key in rows[0] if rows else ():
        if (
            isinstance(rows[0][key], int)
            and not isinstance(rows[0][key], bool)
            and key != "district_id"
        ):
            total[key] = sum(r[key] for r in rows)
    if rows:
        # The city reached a type when any district did: the districts' counts do not add
        # up (five types in each of twenty districts are five types, not a hundred).
        total["enterprise_types"] = len(
            {t for fig in figs.values() for t, n in fig.enterprises_by_type.items() if n}
        )
        total["participation"] = (
            total["cadres_active"] / total["cadres_total"] if total["cadres_total"] else None
        )
    return {
        "filters": f.as_dict(),
        "targets": targets,
        "sort": sort,
        "descending": descending,
        "rows": rows,
        "total": total,
    }


def weekly_series(session: Session, f: Filters, until: date | None = None) -> list[dict[str, Any]]:
    """Cumulative visits and workers met per week (Monday first) over the filter period,
    stopping at `until` (today: a chart of the future would only show a flat line).

    SQL sums per local day (at most a few hundred rows); weeks are folded here.
    """
    day = local_day(session, Visit.visited_at, f.tz)
    per_day = session.execute(
        select(day.label("day"), func.count(), func.coalesce(func.sum(Visit.workers_met), 0))
        .where(*visit_conditions(f))
        .group_by(day)
    )
    by_week: dict[date, list[int]] = {}
    for raw, n, workers in per_day:
        d = as_date(raw)
        week = d - timedelta(days=d.weekday())
        acc = by_week.setdefault(week, [0, 0])
        acc[0] += n
        acc[1] += int(workers)
    first = f.date_from - timedelta(days=f.date_from.weekday())
    out, cum_v, cum_w, week = [], 0, 0, first
    last = min(f.date_to, until) if until else f.date_to
    while week <= last:
        v, w = by_week.get(week, (0, 0))
        cum_v, cum_w = cum_v + v, cum_w + w
        out.append(
            {
                "week": week.isoformat(),
                "visits": v,
                "workers_met": w,
                "cum_visits": cum_v,
                "cum_workers": cum_w,
            }
        )
        week += timedelta(days=7)
    return out


def visits_page(
    session: Session, f: Filters, district_id: int, page: int = 1, per_page: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """A district's visits under the filters, newest first, with enterprise and problems."""
    conds = [*visit_conditions(f), Visit.district_id == district_id]
    total = session.scalar(select(func.count()).select_from(Visit).where(*conds)) or 0
    n_problems = (
        select(func.count())
        .where(Problem.visit_id == Visit.id, *live(Problem))
        .correlate(Visit)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Visit.id,
            Visit.visited_at,
            Visit.method,
            Visit.workers_met,
            Enterprise.name,
            WorkGroup.name,
            n_problems,
        )
        .outerjoin(Enterprise, Enterprise.id == Visit.enterprise_id)
        .outerjoin(WorkGroup, WorkGroup.id == Visit.work_group_id)
        .where(*conds)
        .order_by(Visit.visited_at.desc(), Visit.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return [
        {
            "id": r[0],
            "visited_at": r[1],
            "method": r[2],
            "workers_met": r[3],
            "enterprise": r[4],
            "work_group": r[5],
            "problems": r[6],
        }
        for r in rows
    ], total


def audit_trail(session: Session, records: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every AuditEntry of the given (entity, record id) pairs, oldest first, with names."""
    if not records:
        return []
    from sqlalchemy import tuple_

    rows = session.execute(
        select(AuditEntry, User.display_name, Device.name)
        .outerjoin(User, User.id == AuditEntry.user_id)
        .outerjoin(Device, Device.id == AuditEntry.device_id)
        .where(tuple_(AuditEntry.entity, AuditEntry.record_id).in_(records))
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    return [
        {
            "entity": a.entity,
            "record_id": a.record_id,
            "action": a.action,
            "changes": a.changes or {},
            "user": user or "",
            "device_id": a.device_id,
            "device": device or "",
            "source": a.source,
            "request_id": a.request_id,
            "at": a.at,
        }
        for a, user, device in rows
    ]


def visit_detail(
    session: Session, visit_id: str, read: frozenset[int] | None = None
) -> dict[str, Any] | None:
    """A visit with its enterprise, problems (and their ladder history), home visits,
    audit history, conflicts and spot checks; None when there is no such visit.

    `read` is the reader's districts (None: every district). Linked records of other
    districts (a home visit, problem or enterprise written before links were kept in
    scope, or by city staff) are left out with their audit entries and conflicts: the
    page shows another district's data only to readers of that district."""
    visit = session.get(Visit, visit_id)
    if visit is None:
        return None

    def readable(obj: Any) -> bool:
        return read is None or obj.district_id in read

    enterprise = session.get(Enterprise, visit.enterprise_id) if visit.enterprise_id else None
    if enterprise is not None and not readable(enterprise):
        enterprise = None
    problems = [
        p
        for p in session.scalars(
            select(Problem)
            .where(Problem.visit_id == visit_id)
            .order_by(Problem.created_at, Problem.id)
        )
        if readable(p)
    ]
    homes = [
        h
        for h in session.scalars(
            select(HomeVisit).where(HomeVisit.visit_id == visit_id).order_by(HomeVisit.visited_at)
        )
        if readable(h)
    ]
    records = [
        ("visit", visit.id),
        *(("problem", p.id) for p in problems),
        *(("home_visit", h.id) for h in homes),
    ]
    ids = [r for _, r in records]
    conflicts = list(
        session.scalars(
            select(Conflict)
            .where(Conflict.record_id.in_(ids))
            .order_by(Conflict.created_at, Conflict.id)
        )
    )
    checks = list(
        session.scalars(
            select(SpotCheckItem)
            .where(SpotCheckItem.visit_id == visit_id)
            .order_by(SpotCheckItem.id)
        )
    )
    return {
        "visit": visit,
        "enterprise": enterprise,
        "problems": problems,
        "home_visits": homes,
        "audit": audit_trail(session, records),
        "conflicts": conflicts,
        "checks": checks,
    }


def now_utc() -> datetime:
    """Aware UTC now (one place, so tests and pages agree on 'today')."""
    return datetime.now(UTC)
