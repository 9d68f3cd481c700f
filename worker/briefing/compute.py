"""The numbers of the district briefings: plain functions over a session, no Flask.

Every figure is an SQL aggregate grouped by district unit, so building the 20 district
briefings and the city-wide one costs a fixed handful of queries, however many visits
there are; the period and its comparison period are read in the same pass. Statistics
read only canonical, live records: a record merged into another by dedup
(`canonical_id` set) or deleted is not counted, a problem or home visit of a deleted
visit neither (server/counting.py, the rule the dashboard shares), and an enterprise is
counted by `coalesce(canonical_id, id)` so two records of one enterprise count once.
"""

from __future__ import annotations

import calendar
import json
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    cast,
    distinct,
    exists,
    func,
    literal_column,
    null,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from config.settings import ROOT
from server.counting import visit_not_deleted
from server.models import (
    ENTERPRISE_TYPE_TAGS,
    FOCUS_GROUPS,
    OPEN_STAGES,
    PROBLEM_CATEGORIES,
    PROBLEM_STAGES,
    PROBLEM_TAGS,
    VISIT_METHODS,
    DistrictUnit,
    Enterprise,
    HomeVisit,
    Problem,
    Role,
    User,
    Visit,
    sqlite_focus_count,
    visit_participants,
)
from sync.health import district_freshness

PERIOD_KINDS = ("week", "month", "campaign")
CADRE_ROLES = (Role.FIELD_CADRE.value, Role.GROUP_LEADER.value)


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, Any]:
    """Labels and targets (config/vocabulary.json), read once."""
    return json.loads((ROOT / "config" / "vocabulary.json").read_text(encoding="utf-8"))


def labels(kind: str) -> dict[str, str]:
    """Chinese labels of one vocabulary list: methods, categories, stages, focus_groups..."""
    return {row["code"]: row["name"] for row in vocabulary()[kind]}


# ---------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A reporting period: local calendar days [start, end) in the campaign's time zone."""

    kind: str
    start: date
    end: date  # exclusive
    tz: str = "Asia/Shanghai"

    @property
    def key_date(self) -> date:
        """The date in a delivery's unique key: the first day, or the cut-off of a campaign."""
        return self.last_day if self.kind == "campaign" else self.start

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def bounds(self) -> tuple[datetime, datetime]:
        """The period as aware UTC instants (visits are stored in UTC)."""
        zone = ZoneInfo(self.tz)
        return (
            datetime.combine(self.start, time(), zone).astimezone(UTC),
            datetime.combine(self.end, time(), zone).astimezone(UTC),
        )

    @property
    def label(self) -> str:
        """How the period is named in Chinese: 2026年第10周（3月2日—3月8日）, 2026年3月..."""
        last = self.last_day
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return (
                f"{year}年第{week}周（{self.start.month}月{self.start.day}日—"
                f"{last.month}月{last.day}日）"
            )
        if self.kind == "month":
            return f"{self.start.year}年{self.start.month}月"
        return f"活动开展以来（{self.start:%Y.%m.%d}—{last:%Y.%m.%d}）"

    @property
    def kind_label(self) -> str:
        return {"week": "周报", "month": "月报", "campaign": "累计"}[self.kind]

    def previous(self) -> Period:
        """The period compared against: the week or month before; a campaign one week ago."""
        if self.kind == "week":
            return Period("week", self.start - timedelta(days=7), self.start, self.tz)
        if self.kind == "month":
            prev_last = self.start - timedelta(days=1)
            return Period("month", prev_last.replace(day=1), self.start, self.tz)
        return Period(
            "campaign", self.start, max(self.start, self.end - timedelta(days=7)), self.tz
        )


def period_containing(
    kind: str, day: date, campaign_start: date, tz: str = "Asia/Shanghai"
) -> Period:
    """The week (Monday first) or month containing `day`; a campaign up to and with `day`."""
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        return Period("week", start, start + timedelta(days=7), tz)
    if kind == "month":
        days = calendar.monthrange(day.year, day.month)[1]
        start = day.replace(day=1)
        return Period("month", start, start + timedelta(days=days), tz)
    if kind == "campaign":
        return Period("campaign", campaign_start, max(campaign_start, day) + timedelta(days=1), tz)
    raise ValueError(f"period kind {kind!r}: expected one of {', '.join(PERIOD_KINDS)}")


def last_completed(
    kind: str, now: datetime, campaign_start: date, tz: str = "Asia/Shanghai"
) -> Period:
    """The period a scheduled run reports on: the week or month that just ended
    (a campaign-to-date briefing runs to yesterday)."""
    today = now.astimezone(ZoneInfo(tz)).date()
    if kind == "week":
        return period_containing("week", today - timedelta(days=7), campaign_start, tz)
    if kind == "month":
        return period_containing(
            "month", today.replace(day=1) - timedelta(days=1), campaign_start, tz
        )
    return period_containing("campaign", today - timedelta(days=1), campaign_start, tz)


# ---------------------------------------------------------------------------- figures


@dataclass
class OldestOpen:
    """The oldest problem still on the ladder: no description (it may name people)."""

    problem_id: str
    category: str
    stage: str
    opened_at: datetime
    days_open: int


@dataclass
class DistrictFigures:
    """Everything one district did in one period (and where it stands)."""

    district_id: int
    code: str
    name: str
    visits: int = 0
    visits_by_method: dict[str, int] = field(default_factory=dict)
    workers_met: int = 0
    enterprises: int = 0
    enterprises_by_type: dict[str, int] = field(default_factory=dict)
    enterprise_types: int = 0
    cadres_total: int = 0
    cadres_active: int = 0
    focus_groups: dict[str, int] = field(default_factory=dict)
    problems_raised: int = 0
    problems_by_category: dict[str, int] = field(default_factory=dict)
    problems_by_stage: dict[str, int] = field(default_factory=dict)
    problems_resolved: int = 0
    # Median days from raising to resolving, over the problems resolved in the period.
    median_days_to_resolve: float | None = None
    problems_by_tag: dict[str, int] = field(default_factory=dict)
    problems_open: int = 0
    oldest_open: OldestOpen | None = None
    home_visits: int = 0
    condolence_cents: int = 0
    # Open problems by deadline colour at the period's last day (server/deadlines.py),
    # and the overdue ones, longest overdue first: no description (it may name people).
    deadline_colours: dict[str, int] = field(default_factory=dict)
    red_list: list[dict[str, Any]] = field(default_factory=list)
    score: float = 0.0
    rank: int = 0
    # How fresh the figures are (sync.health.district_freshness at build time): the
    # latest sync of the district's active phones, phones with entries waiting, phones
    # silent past SYNC_SILENT_DAYS, and whether the district is marked stale. Set on the
    # current period's figures only; None for the previous period's.
    freshness: dict[str, Any] | None = None

    @property
    def resolution_rate(self) -> float | None:
        """Problems resolved in the period over those resolved plus those still open at
        its end; None when there were neither."""
        base = self.problems_resolved + self.problems_open
        return self.problems_resolved / base if base else None

    @property
    def participation(self) -> float | None:
        """Share of the district's cadres who took part; None when it has no cadres."""
        return self.cadres_active / self.cadres_total if self.cadres_total else None

    def progress(self, targets: dict[str, Any]) -> dict[str, float]:
        """Each target's fulfilment, capped at 1."""
        part = self.participation or 0.0
        return {
            "enterprises": min(1.0, self.enterprises / targets["enterprises"]),
            "enterprise_types": min(1.0, self.enterprise_types / targets["enterprise_types"]),
            "workers_met": min(1.0, self.workers_met / targets["workers_met"]),
            "cadre_participation": min(1.0, part / targets["cadre_participation"]),
        }

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["participation"] = self.participation
        out["resolution_rate"] = self.resolution_rate
        if self.oldest_open is not None:
            out["oldest_open"]["opened_at"] = self.oldest_open.opened_at.isoformat()
        if self.freshness is not None and self.freshness.get("as_of") is not None:
            out["freshness"] = {**self.freshness, "as_of": self.freshness["as_of"].isoformat()}
        return out


@dataclass
class DistrictBriefing:
    """One district's briefing: its figures, the previous period's, its rank."""

    period: Period
    current: DistrictFigures
    previous: DistrictFigures
    ranked_of: int
    targets: dict[str, Any]
    generated_at: datetime

    def delta(self, name: str) -> int | float | None:
        """Change of a figure from the previous period."""
        now, before = getattr(self.current, name), getattr(self.previous, name)
        if now is None or before is None:
            return None
        return now - before

    def to_dict(self) -> dict[str, Any]:
        return {
            "district": {"code": self.current.code, "name": self.current.name},
            "period": _period_dict(self.period),
            "previous_period": _period_dict(self.period.previous()),
            "targets": self.targets,
            "progress": self.current.progress(self.targets),
            "rank": self.current.rank,
            "ranked_of": self.ranked_of,
            "previous_rank": self.previous.rank,
            "current": self.current.to_dict(),
            "previous": self.previous.to_dict(),
            "generated_at": self.generated_at.isoformat(),
        }


@dataclass
class CityBriefing:
    """The coordination team's briefing: one row per district unit, ranked."""

    period: Period
    rows: list[DistrictFigures]
    previous: dict[int, DistrictFigures]
    targets: dict[str, Any]
    generated_at: datetime

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.rows)

    def by_resolution(self) -> list[tuple[int, DistrictFigures]]:
        """The circular's second ranking: by resolution rate (resolved in the period over
        resolved plus still open), then problems resolved; districts with no problems
        last. Ties share a rank."""
        ordered = sorted(
            self.rows,
            key=lambda f: (
                f.resolution_rate is None,
                -(f.resolution_rate or 0),
                -f.problems_resolved,
                f.code,
            ),
        )
        out: list[tuple[int, DistrictFigures]] = []
        previous: tuple[Any, int] | None = None
        for i, f in enumerate(ordered, start=1):
            key = (f.resolution_rate, f.problems_resolved)
            rank = previous[1] if previous and previous[0] == key else i
            out.append((rank, f))
            previous = (key, rank)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": _period_dict(self.period),
            "targets": self.targets,
            "rows": [
                {
                    **r.to_dict(),
                    "progress": r.progress(self.targets),
                    "previous_rank": self.previous[r.district_id].rank,
                }
                for r in self.rows
            ],
            "generated_at": self.generated_at.isoformat(),
        }


def _period_dict(p: Period) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "start": p.start.isoformat(),
        "end": p.end.isoformat(),
        "label": p.label,
    }


# ---------------------------------------------------------------------------- queries


def _live(model: Any, unindexed: bool = False) -> list[Any]:
    """Only canonical, undeleted records count.

    `canonical_id IS NULL` holds for almost every row, but SQLite's statistics only know
    the average number of rows per value of that index, so it would happily read the whole
    table through it; `unindexed` keeps SQLite off that index (see `_plain`).
    """
    canonical = _plain(model.canonical_id) if unindexed else model.canonical_id
    conds = [canonical.is_(None), model.deleted.is_(False)]
    # a visit or home visit held for plausibility review counts once accepted
    held = getattr(model, "held", None)
    if held is not None:
        conds.append(held.is_(False))
    return conds


def _plain(column: Any) -> Any:
    """The column as SQLite's `+column`, which no index serves (PostgreSQL gets the column
    as it is: its planner knows from its statistics how many rows a condition keeps)."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


def _json_array_values(session: Session, column: Any) -> Any:
    """A table-valued function giving the elements of a JSON array, per dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.json_array_elements_text(column).table_valued("value")
    return func.json_each(column).table_valued("value")


def _flag(column: Any, bounds: tuple[datetime, datetime]) -> Any:
    """1 when the timestamp lies in [start, end), else 0."""
    return case((and_(column >= bounds[0], column < bounds[1]), 1), else_=0)


def _new_figures(districts: list[DistrictUnit]) -> dict[int, DistrictFigures]:
    return {
        d.id: DistrictFigures(
            d.id,
            d.code,
            d.name,
            visits_by_method=dict.fromkeys(VISIT_METHODS, 0),
            focus_groups=dict.fromkeys(FOCUS_GROUPS, 0),
            enterprises_by_type=dict.fromkeys(ENTERPRISE_TYPE_TAGS, 0),
            problems_by_category=dict.fromkeys(PROBLEM_CATEGORIES, 0),
            problems_by_stage=dict.fromkeys(PROBLEM_STAGES, 0),
            problems_by_tag=dict.fromkeys(PROBLEM_TAGS, 0),
        )
        for d in districts
    }


# A span of more days than this covers a large part of the campaign's visits. SQLite then
# reads the visits table in one sequential pass rather than one index lookup per row
# (PostgreSQL decides that itself from its statistics), and the active cadres are found
# per cadre rather than per visit.
LONG_SPAN_DAYS = 92
# SQLite runs a per-cadre EXISTS as index probes that stop at the first hit, which wins
# from spans of a few weeks on; PostgreSQL hashes such an EXISTS over every participation,
# so there the join wins up to long spans (measured at 200,000 visits, 40 cadres a unit).
SQLITE_PER_CADRE_DAYS = 21


def compute_figures(
    session: Session, period: Period, districts: list[DistrictUnit] | None = None
) -> dict[int, DistrictFigures]:
    """Every district's figures for a period, keyed by district id (rank filled in)."""
    return compute_periods(session, [period], districts)[0]


def compute_periods(
    session: Session,
    periods: list[Period],
    districts: list[DistrictUnit] | None = None,
) -> list[dict[int, DistrictFigures]]:
    """Every district's figures for each of several periods, in one pass over the data.

    Each query reads the span from the earliest start to the latest end once and sums a
    0/1 flag per period (`CASE WHEN t >= start AND t < end`), grouped by district, so a
    briefing and its comparison period (adjacent weeks or months, or the campaign and the
    campaign one week earlier) cost the same handful of queries as one period.
    Distinct counts (enterprises, type tags, cadres) take the flags' maximum per
    district and entity first, then count the entities whose flag is set.
    """
    if districts is None:
        districts = list(
            session.scalars(
                select(DistrictUnit)
                .where(DistrictUnit.active.is_(True))
                .order_by(DistrictUnit.code)
            )
        )
    n = len(periods)
    all_figs = [_new_figures(districts) for _ in periods]
    bounds = [p.bounds() for p in periods]
    span = (min(b[0] for b in bounds), max(b[1] for b in bounds))
    dialect = session.get_bind().dialect.name
    sqlite = dialect == "sqlite"
    if dialect == "postgresql":
        # The row estimate of json_array_elements_text (100 a call) pushes the type-tag
        # query past the JIT cost thresholds, and compiling it costs about half a second,
        # far more than the query itself; these queries gain nothing from JIT.
        session.execute(text("SET LOCAL jit = off"))
    long_span = (span[1] - span[0]) > timedelta(days=LONG_SPAN_DAYS)
    visited_at = _plain(Visit.visited_at) if sqlite and long_span else Visit.visited_at
    in_span = [*_live(Visit, sqlite), visited_at >= span[0], visited_at < span[1]]
    v_flags = [_flag(visited_at, b) for b in bounds]

    # Visits and workers by method, with the focus groups summed from the JSON counts.
    if sqlite:
        # the expressions ix_visits_stats holds: read from the index, no JSON parsing
        focus = [
            literal_column(sqlite_focus_count(g, Visit.__tablename__), Integer)
            for g in FOCUS_GROUPS
        ]
    else:
        focus = [func.coalesce(Visit.workers_by_group[g].as_integer(), 0) for g in FOCUS_GROUPS]
    cols = []
    for fl in v_flags:
        cols += [func.sum(fl), func.sum(fl * Visit.workers_met), *(func.sum(fl * x) for x in focus)]
    for district_id, method, *sums in session.execute(
        select(Visit.district_id, Visit.method, *cols)
        .where(*in_span)
        .group_by(Visit.district_id, Visit.method)
    ):
        width = 2 + len(FOCUS_GROUPS)
        for i, figs in enumerate(all_figs):
            f = figs.get(district_id)
            count, workers, *groups = (int(x or 0) for x in sums[i * width : (i + 1) * width])
            if f is None or not count:
                continue
            f.visits += count
            f.visits_by_method[method] = f.visits_by_method.get(method, 0) + count
            f.workers_met += workers
            for g, c in zip(FOCUS_GROUPS, groups, strict=True):
                f.focus_groups[g] += c

    # Distinct enterprises (by canonical id); the type tags are the canonical record's.
    # First the (district, enterprise) pairs visited, so each enterprise is looked up once.
    ent = aliased(Enterprise)
    canon = aliased(Enterprise)
    fnames = [f"f{i}" for i in range(n)]
    pairs = (
        select(
            Visit.district_id.label("district_id"),
            Visit.enterprise_id.label("enterprise_id"),
            *(func.max(fl).label(name) for fl, name in zip(v_flags, fnames, strict=True)),
        )
        .where(*in_span, Visit.enterprise_id.is_not(None))
        .group_by(Visit.district_id, Visit.enterprise_id)
        .subquery("pairs")
    )
    canon_id = func.coalesce(ent.canonical_id, ent.id)
    visited = (
        select(
            pairs.c.district_id,
            canon_id.label("canon_id"),
            *(func.max(pairs.c[name]).label(name) for name in fnames),
        )
        .join(ent, ent.id == pairs.c.enterprise_id)
        .where(ent.deleted.is_(False))
        .group_by(pairs.c.district_id, canon_id)
        .cte("visited")
    )
    # One statement: per district the enterprises (tag NULL), then per type tag; the CTE
    # is read twice, so both databases compute it once.
    counts = [
        func.count(distinct(case((visited.c[name] == 1, visited.c.canon_id)))) for name in fnames
    ]
    tags = _json_array_values(session, canon.type_tags)
    totals = select(visited.c.district_id, cast(null(), String).label("tag"), *counts).group_by(
        visited.c.district_id
    )
    by_tag = (
        select(visited.c.district_id, tags.c.value, *counts)
        .join(canon, canon.id == visited.c.canon_id)
        .join(tags, true())
        .group_by(visited.c.district_id, tags.c.value)
    )
    for district_id, tag, *numbers in session.execute(union_all(totals, by_tag)):
        for figs, count in zip(all_figs, numbers, strict=True):
            f = figs.get(district_id)
            if f is None:
                continue
            if tag is None:
                f.enterprises = int(count or 0)
            elif count:
                f.enterprises_by_type[tag] = count
    for figs in all_figs:
        for f in figs.values():
            f.enterprise_types = sum(1 for c in f.enterprises_by_type.values() if c)

    # Cadres tied to the district, and those of them who took part in its visits.
    cadre = [User.role.in_(CADRE_ROLES), User.active.is_(True)]
    for district_id, total in session.execute(
        select(User.district_id, func.count()).where(*cadre).group_by(User.district_id)
    ):
        for figs in all_figs:
            if district_id in figs:
                figs[district_id].cadres_total = total
    if (span[1] - span[0]) > timedelta(days=SQLITE_PER_CADRE_DAYS if sqlite else LONG_SPAN_DAYS):
        # Most cadres took part in some visit of the span: per cadre, an EXISTS over their
        # own participations (index on user_id) stops at the first visit found, instead of
        # joining every visit of the span to its participants.
        took_part = []
        for b in bounds:
            pv = aliased(Visit)
            took_part.append(
                func.sum(
                    case(
                        (
                            exists().where(
                                visit_participants.c.user_id == User.id,
                                pv.id == visit_participants.c.visit_id,
                                pv.district_id == User.district_id,
                                *_live(pv, sqlite),
                                pv.visited_at >= b[0],
                                pv.visited_at < b[1],
                            ),
                            1,
                        ),
                        else_=0,
                    )
                )
            )
        active_q = select(User.district_id, *took_part).where(*cadre).group_by(User.district_id)
    else:
        # A short span: join its visits to their participants, one row per cadre.
        cadre_flags = (
            select(
                User.district_id.label("district_id"),
                *(func.max(fl).label(name) for fl, name in zip(v_flags, fnames, strict=True)),
            )
            .join(visit_participants, visit_participants.c.user_id == User.id)
            .join(
                Visit,
                and_(
                    Visit.id == visit_participants.c.visit_id, Visit.district_id == User.district_id
                ),
            )
            .where(*cadre, *in_span)
            .group_by(User.district_id, User.id)
            .subquery("cadre_flags")
        )
        active_q = select(
            cadre_flags.c.district_id, *(func.sum(cadre_flags.c[name]) for name in fnames)
        ).group_by(cadre_flags.c.district_id)
    for district_id, *active in session.execute(active_q):
        for figs, count in zip(all_figs, active, strict=True):
            if district_id in figs:
                figs[district_id].cadres_active = int(count or 0)

    _problem_figures(session, all_figs, bounds, span, sqlite)
    deadline_figures(session, all_figs, [p.last_day for p in periods])

    hv_at = _plain(HomeVisit.visited_at) if sqlite else HomeVisit.visited_at
    hvv = aliased(Visit)
    hv_cols = []
    for b in bounds:
        fl = _flag(hv_at, b)
        hv_cols += [func.sum(fl), func.sum(fl * HomeVisit.amount_cents)]
    for district_id, *sums in session.execute(
        select(HomeVisit.district_id, *hv_cols)
        .outerjoin(hvv, hvv.id == HomeVisit.visit_id)
        .where(*_live(HomeVisit, sqlite), visit_not_deleted(hvv), hv_at >= span[0], hv_at < span[1])
        .group_by(HomeVisit.district_id)
    ):
        for i, figs in enumerate(all_figs):
            if district_id in figs:
                f = figs[district_id]
                f.home_visits, f.condolence_cents = int(sums[2 * i] or 0), int(sums[2 * i + 1] or 0)

    for figs in all_figs:
        _rank(figs, vocabulary()["targets"])
    return all_figs


def _problem_figures(
    session: Session,
    all_figs: list[dict[int, DistrictFigures]],
    bounds: list[tuple[datetime, datetime]],
    span: tuple[datetime, datetime],
    sqlite: bool,
) -> None:
    """Problems raised (when their visit took place), resolved, still open, the oldest."""
    pv = aliased(Visit)
    opened = func.coalesce(pv.visited_at, Problem.created_at)
    base = (
        select()
        .select_from(Problem)
        .outerjoin(pv, pv.id == Problem.visit_id)
        .where(*_live(Problem, sqlite), visit_not_deleted(pv))
    )
    if sqlite:
        # Each problem's visit date from the (id, visited_at) index, without reading the
        # visit's row; SQLite picks the primary key's index instead when it has no
        # statistics. Problems are read from ix_problems_stats (see server/models.py).
        base = base.with_hint(pv, "INDEXED BY ix_visits_id_visited_at", "sqlite")
    raised = [func.sum(_flag(opened, b)) for b in bounds]
    for district_id, category, stage, tag, *counts in session.execute(
        base.add_columns(Problem.district_id, Problem.category, Problem.stage, Problem.tag, *raised)
        .where(opened >= span[0], opened < span[1])
        .group_by(Problem.district_id, Problem.category, Problem.stage, Problem.tag)
    ):
        for figs, n in zip(all_figs, counts, strict=True):
            f = figs.get(district_id)
            if f is None or not n:
                continue
            f.problems_raised += n
            f.problems_by_category[category] = f.problems_by_category.get(category, 0) + n
            f.problems_by_stage[stage] = f.problems_by_stage.get(stage, 0) + n
            if tag in f.problems_by_tag:
                f.problems_by_tag[tag] += n
    # Resolved in a period (resolved_at inside it), and the median days from raising to
    # resolving over those: one row per resolved problem of the span.
    resolved_at = _plain(Problem.resolved_at) if sqlite else Problem.resolved_at
    rv = aliased(Visit)
    durations: list[dict[int, list[float]]] = [{} for _ in bounds]
    for district_id, raised_at, done_at in session.execute(
        select(
            Problem.district_id,
            func.coalesce(rv.visited_at, Problem.created_at),
            Problem.resolved_at,
        )
        .outerjoin(rv, rv.id == Problem.visit_id)
        .where(
            *_live(Problem, sqlite),
            visit_not_deleted(rv),
            Problem.stage == "resolved",
            resolved_at >= span[0],
            resolved_at < span[1],
        )
    ):
        done = _as_datetime(done_at)
        took = max(0.0, (done - _as_datetime(raised_at)).total_seconds() / 86400)
        for per, (start, end) in zip(durations, bounds, strict=True):
            if start <= done < end:
                per.setdefault(district_id, []).append(took)
    for figs, per in zip(all_figs, durations, strict=True):
        for district_id, days in per.items():
            if district_id in figs:
                figs[district_id].problems_resolved = len(days)
                figs[district_id].median_days_to_resolve = round(statistics.median(days), 1)
    # Open at the end of a period = raised before its end and not yet resolved or closed
    # (the stage is today's: the ladder keeps no per-day snapshot). One query gives each
    # district's open counts (window sums) on the row of its oldest open problem; that
    # problem, the oldest open at the latest end, is also the oldest open at an earlier
    # end if it was raised by then, and otherwise nothing was open at that earlier end.
    open_names = [f"open{i}" for i in range(len(bounds))]
    still_open = base.where(opened < span[1], Problem.stage.in_(OPEN_STAGES))
    # 1 when the problem was raised before a period's end (summed per district)
    open_flags = [case((opened < b[1], 1), else_=0) for b in bounds]
    if sqlite:
        # SQLite: one pass grouped by district. With min() in an aggregate, SQLite takes
        # the other (bare) columns from the row holding the minimum (documented under
        # "Bare columns in an aggregate query"); the minimum of "opened id" is the oldest
        # problem with ties broken by id, as the window below orders them. The timestamps
        # are fixed-width ISO text there, so text order is time order.
        rows = session.execute(
            still_open.add_columns(
                Problem.district_id.label("district_id"),
                func.min(cast(opened, String) + " " + Problem.id),
                Problem.id.label("id"),
                Problem.category.label("category"),
                Problem.stage.label("stage"),
                opened.label("opened"),
                *(
                    func.sum(flag).label(name)
                    for flag, name in zip(open_flags, open_names, strict=True)
                ),
            ).group_by(Problem.district_id)
        )
    else:
        rows = session.execute(_oldest_open_ranked(still_open, opened, open_flags, open_names))
    for row in rows:
        at = _as_datetime(row.opened)
        for figs, (_, end), name in zip(all_figs, bounds, open_names, strict=True):
            f = figs.get(row.district_id)
            if f is None:
                continue
            f.problems_open = int(row._mapping[name] or 0)
            if at < end:
                f.oldest_open = OldestOpen(
                    row.id, row.category, row.stage, at, max(0, (end - at).days)
                )


def deadline_figures(
    session: Session, all_figs: list[dict[int, DistrictFigures]], days: list[date]
) -> None:
    """Each district's open problems by colour and its red list, as they stand on each
    of `days` (a period's last day; never later than today). The colours are
    server/deadlines.py's; the open problems are read once for every period."""
    from server import deadlines

    rules = deadlines.current_rules(_settings_for_rules())
    now_day = deadlines.today(None, rules.tz)
    problems = deadlines.open_problems(session, rules, now_day)
    owners: dict[tuple[Any, Any], str] = {}
    for figs, day in zip(all_figs, days, strict=True):
        on = min(day, now_day)
        for f in figs.values():
            f.deadline_colours = dict.fromkeys(deadlines.COLOURS, 0)
            f.red_list = []
        for p in problems:
            f = figs.get(p.district_id)
            if f is None:
                continue
            st = deadlines.state(
                p.stage, p.state.due_date, p.stage_started_at, p.progress_at, on, rules
            )
            if st.colour:
                f.deadline_colours[st.colour] += 1
            if st.colour == "red":
                key = (p.owner_level, p.owner_work_group_id)
                if key not in owners:
                    owners[key] = deadlines.owner_name(session, *key)
                f.red_list.append(
                    {
                        "problem_id": p.id,
                        "category": p.category,
                        "tag": p.tag,
                        "stage": p.stage,
                        "owner": owners[key],
                        "due_date": st.due_date.isoformat() if st.due_date else None,
                        "days_overdue": st.days_overdue,
                    }
                )
        for f in figs.values():
            f.red_list.sort(key=lambda r: (-r["days_overdue"], r["problem_id"]))


def _settings_for_rules() -> Any:
    """The running app's settings, or the environment's outside an app (scripts)."""
    from flask import current_app, has_app_context

    if has_app_context():
        return current_app.config["FV"]
    from config.settings import load_settings

    return load_settings()


def _oldest_open_ranked(
    still_open: Any, opened: Any, open_flags: list[Any], open_names: list[str]
) -> Any:
    """Per district, the oldest open problem's row with the open counts (window sums)."""
    ranked = still_open.add_columns(
        Problem.district_id.label("district_id"),
        Problem.id.label("id"),
        Problem.category.label("category"),
        Problem.stage.label("stage"),
        opened.label("opened"),
        func.row_number()
        .over(partition_by=Problem.district_id, order_by=(opened, Problem.id))
        .label("rn"),
        *(
            func.sum(flag).over(partition_by=Problem.district_id).label(name)
            for flag, name in zip(open_flags, open_names, strict=True)
        ),
    ).subquery()
    return select(
        ranked.c.district_id,
        ranked.c.id,
        ranked.c.category,
        ranked.c.stage,
        ranked.c.opened,
        *(ranked.c[name] for name in open_names),
    ).where(ranked.c.rn == 1)


def _as_datetime(value: Any) -> datetime:
    """A timestamp out of a subquery column (SQLite hands back text there)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _rank(figs: dict[int, DistrictFigures], targets: dict[str, Any]) -> None:
    """Score = mean fulfilment of the four targets (0–100); ties share a rank (1, 2, 2, 4).

    Ties on the score are broken by workers met, then visits, so a district that did
    more ranks higher even when both met every target.
    """
    for f in figs.values():
        progress = f.progress(targets)
        f.score = round(100 * sum(progress.values()) / len(progress), 1)
    ordered = sorted(figs.values(), key=lambda f: (-f.score, -f.workers_met, -f.visits, f.code))
    previous_key, previous_rank = None, 0
    for i, f in enumerate(ordered, start=1):
        key = (f.score, f.workers_met, f.visits)
        f.rank = previous_rank if key == previous_key else i
        previous_key, previous_rank = key, f.rank


# ---------------------------------------------------------------------------- briefings


def build_all(
    session: Session, period: Period, now: datetime | None = None
) -> tuple[CityBriefing, dict[str, DistrictBriefing]]:
    """The city-wide briefing and every district's, keyed by district code."""
    now = now or datetime.now(UTC)
    targets = vocabulary()["targets"]
    current, previous = compute_periods(session, [period, period.previous()])
    silent_days = _settings_for_rules().SYNC_SILENT_DAYS
    fresh = district_freshness(session, silent_days=silent_days, now=now)
    for district_id, f in current.items():
        f.freshness = {
            "phones": 0,
            "as_of": None,
            "entries_waiting": 0,
            "phones_waiting": 0,
            "phones_silent": 0,
            "stale": True,
            **fresh.get(district_id, {}),
            "silent_days": silent_days,
        }
    rows = sorted(current.values(), key=lambda f: (f.rank, f.code))
    city = CityBriefing(period, rows, previous, targets, now)
    by_code = {
        f.code: DistrictBriefing(period, f, previous[f.district_id], len(rows), targets, now)
        for f in rows
    }
    return city, by_code


def build_district(
    session: Session, code: str, period: Period, now: datetime | None = None
) -> DistrictBriefing | None:
    """One district's briefing (its rank needs every district's figures anyway)."""
    _, by_code = build_all(session, period, now)
    return by_code.get(code)


def build_city(session: Session, period: Period, now: datetime | None = None) -> CityBriefing:
    """The city-wide briefing alone."""
    return build_all(session, period, now)[0]
