"""Deadlines on the problem ladder and the three-colour supervision state (督办), in one
place: the sync ingest starts the clocks, the problem tracker, the dashboard, the
briefings, the reminders and the API all read the colours from here.

Each open stage (enterprise, government, source) has a handling period in days
(DEADLINE_DAYS, overridden per category by DEADLINE_DAYS_BY_CATEGORY and per tag by
DEADLINE_DAYS_BY_TAG; when both apply the shorter wins, so 最急 is never slower), an
owner (the visit's work group, the district unit, the city coordination team) and a due
date: the local (TIMEZONE) day the stage started plus the period. Moving a stage starts
the next clock.

Colours, computed against the local day `today`:
- red (超期): today is after the due date;
- yellow (滞后): not red, at least DEADLINE_BEHIND_SHARE of the period has passed and
  nothing was recorded on the problem since its stage started (`progress_at`);
- blue (临近): neither, and the due date is at most DEADLINE_NEAR_DAYS days away;
- none (正常) otherwise, and for resolved or closed problems.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import OPEN_STAGES, PROBLEM_CATEGORIES, PROBLEM_TAGS, Problem, Visit

COLOURS = ("red", "yellow", "blue")
COLOUR_LABELS = {
    "red": "红色（超期）",
    "yellow": "黄色（滞后）",
    "blue": "蓝色（临近）",
    None: "正常",
}
COLOUR_SHORT = {"red": "超期", "yellow": "滞后", "blue": "临近", None: "正常"}
OWNER_LEVELS = ("work_group", "district", "city")
OWNER_LABELS = {"work_group": "工作组", "district": "区(市)县总工会", "city": "市总综合协调组"}
# Who must act at each open stage.
STAGE_OWNER = {"enterprise": "work_group", "government": "district", "source": "city"}


class DeadlineSettingsError(ValueError):
    """A deadline setting cannot be read; the message names it."""


def _parse_days(name: str, raw: str, keys: tuple[str, ...] | None) -> dict[Any, int]:
    """`a=1,b=2` (keys None) or `cat.stage=3,...` into a dict; errors name the setting."""
    out: dict[Any, int] = {}
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        try:
            days = int(value)
        except ValueError:
            raise DeadlineSettingsError(f"{name}: {part!r} needs key=days") from None
        if not sep or days < 1:
            raise DeadlineSettingsError(f"{name}: {part!r} needs key=days, days >= 1")
        if keys is None:
            if key not in OPEN_STAGES:
                raise DeadlineSettingsError(f"{name}: {key!r} is not an open stage")
            out[key] = days
            continue
        first, dot, stage = key.partition(".")
        if not dot or first not in keys or stage not in OPEN_STAGES:
            raise DeadlineSettingsError(f"{name}: {key!r} must be <{'|'.join(keys)}>.<stage>")
        out[(first, stage)] = days
    return out


@dataclass(frozen=True)
class DeadlineRules:
    """The deadline settings, read once."""

    days: dict[str, int]
    by_category: dict[tuple[str, str], int]
    by_tag: dict[tuple[str, str], int]
    near_days: int
    behind_share: float
    tz: str

    @classmethod
    def from_settings(cls, settings: Any) -> DeadlineRules:
        days = _parse_days("DEADLINE_DAYS", settings.DEADLINE_DAYS, None)
        missing = [s for s in OPEN_STAGES if s not in days]
        if missing:
            raise DeadlineSettingsError(f"DEADLINE_DAYS: no days for {', '.join(missing)}")
        return cls(
            days=days,
            by_category=_parse_days(
                "DEADLINE_DAYS_BY_CATEGORY", settings.DEADLINE_DAYS_BY_CATEGORY, PROBLEM_CATEGORIES
            ),
            by_tag=_parse_days("DEADLINE_DAYS_BY_TAG", settings.DEADLINE_DAYS_BY_TAG, PROBLEM_TAGS),
            near_days=settings.DEADLINE_NEAR_DAYS,
            behind_share=settings.DEADLINE_BEHIND_SHARE,
            tz=settings.TIMEZONE,
        )

    def handling_days(self, stage: str, category: str | None, tag: str | None) -> int:
        """The stage's period for a problem of this category and tag (the shorter of
        the category's and the tag's when both are set)."""
        days = self.by_category.get((category or "", stage), self.days[stage])
        tagged = self.by_tag.get((tag or "", stage))
        return min(days, tagged) if tagged is not None else days


_RULES: dict[tuple[Any, ...], DeadlineRules] = {}


def current_rules(settings: Any = None) -> DeadlineRules:
    """The rules of the running app (or of `settings`), parsed once per distinct value."""
    if settings is None:
        from flask import current_app

        settings = current_app.config["FV"]
    key = tuple(
        settings.values[n]
        for n in (
            "DEADLINE_DAYS",
            "DEADLINE_DAYS_BY_CATEGORY",
            "DEADLINE_DAYS_BY_TAG",
            "DEADLINE_NEAR_DAYS",
            "DEADLINE_BEHIND_SHARE",
            "TIMEZONE",
        )
    )
    rules = _RULES.get(key)
    if rules is None:
        rules = _RULES[key] = DeadlineRules.from_settings(settings)
    return rules


def local_day(at: datetime, tz: str) -> date:
    """The calendar day of an instant in the campaign's time zone."""
    return at.astimezone(ZoneInfo(tz)).date()


def today(now: datetime | None, tz: str) -> date:
    return local_day(now or datetime.now(UTC), tz)


def owner_of(stage: str, work_group_id: int | None) -> tuple[str | None, int | None]:
    """(owner level, work group id) of an open stage; (None, None) once resolved/closed.
    A problem at the enterprise stage whose visit names no work group is the district's."""
    level = STAGE_OWNER.get(stage)
    if level == "work_group" and work_group_id is None:
        level = "district"
    return level, work_group_id if level == "work_group" else None


def start_clock(
    problem: Any, stage: str, at: datetime, rules: DeadlineRules, work_group_id: int | None
) -> None:
    """Start the stage's clock on a problem (created, or moved to `stage` at `at`)."""
    problem.stage_started_at = at
    level, group = owner_of(stage, work_group_id)
    problem.owner_level, problem.owner_work_group_id = level, group
    if stage in OPEN_STAGES:
        days = rules.handling_days(stage, problem.category, problem.tag)
        problem.due_date = local_day(at, rules.tz) + timedelta(days=days)
    else:
        problem.due_date = None


def reschedule(problem: Any, rules: DeadlineRules) -> None:
    """The due date again for the running clock (the category or tag changed)."""
    if problem.stage in OPEN_STAGES and problem.stage_started_at is not None:
        days = rules.handling_days(problem.stage, problem.category, problem.tag)
        problem.due_date = local_day(problem.stage_started_at, rules.tz) + timedelta(days=days)


@dataclass(frozen=True)
class DeadlineState:
    """Where a problem stands against its deadline on the local day `today`."""

    colour: str | None
    due_date: date | None
    days_left: int | None  # negative: days overdue
    handling_days: int | None

    @property
    def days_overdue(self) -> int:
        return max(0, -(self.days_left or 0)) if self.days_left is not None else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "colour": self.colour,
            "colour_label": COLOUR_SHORT[self.colour],
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "days_left": self.days_left,
            "days_overdue": self.days_overdue,
        }


def state(
    stage: str,
    due: date | None,
    started_at: datetime | None,
    progress_at: datetime | None,
    on: date,
    rules: DeadlineRules,
) -> DeadlineState:
    """The colour of one problem on the local day `on`."""
    if stage not in OPEN_STAGES or due is None or started_at is None:
        return DeadlineState(None, due, None, None)
    start = local_day(started_at, rules.tz)
    period = max(1, (due - start).days)
    left = (due - on).days
    if left < 0:
        colour: str | None = "red"
    elif (on - start).days / period >= rules.behind_share and (
        progress_at is None or progress_at <= started_at
    ):
        colour = "yellow"
    elif left <= rules.near_days:
        colour = "blue"
    else:
        colour = None
    return DeadlineState(colour, due, left, period)


def overdue_condition(on: date) -> Any:
    """SQL for "red on day `on`": open and past its due date (the rule of `state`)."""
    return (Problem.stage.in_(OPEN_STAGES)) & (Problem.due_date < on)


def colour_condition(session: Session, colour: str | None, on: date, rules: DeadlineRules) -> Any:
    """SQL for "has colour `colour` on day `on`" (`None`: open and on schedule, 正常) —
    the rule of `state`, so the tracker and the dashboard can select and count by colour
    in the database. tests/server/test_deadlines.py pins that both agree per problem."""
    from sqlalchemy import Date, Float, case, cast, func, literal, not_

    from server.coordination.filters import local_day

    postgres = session.get_bind().dialect.name == "postgresql"

    def days(a: Any, b: Any) -> Any:  # whole days from date a to date b
        if postgres:
            return cast(b, Date) - cast(a, Date)
        return func.julianday(b) - func.julianday(a)

    start = local_day(session, Problem.stage_started_at, rules.tz)
    clocked = (
        Problem.stage.in_(OPEN_STAGES)
        & Problem.due_date.is_not(None)
        & Problem.stage_started_at.is_not(None)
    )
    span = days(start, Problem.due_date)
    period = case((span < 1, 1), else_=span)
    behind = (
        cast(days(start, literal(on, Date)), Float) / cast(period, Float) >= rules.behind_share
    ) & (Problem.progress_at.is_(None) | (Problem.progress_at <= Problem.stage_started_at))
    red = clocked & (Problem.due_date < on)
    yellow = clocked & (Problem.due_date >= on) & behind
    blue = (
        clocked
        & (Problem.due_date >= on)
        & not_(behind)
        & (Problem.due_date <= on + timedelta(days=rules.near_days))
    )
    if colour is None:
        return Problem.stage.in_(OPEN_STAGES) & not_(red | yellow | blue)
    return {"red": red, "yellow": yellow, "blue": blue}[colour]


def state_of(problem: Any, on: date, rules: DeadlineRules) -> DeadlineState:
    return state(
        problem.stage, problem.due_date, problem.stage_started_at, problem.progress_at, on, rules
    )


def fill_missing(session: Session, rules: DeadlineRules, now: datetime | None = None) -> int:
    """Give every open problem without a clock one (rows from before migration 0012, or
    written by a path that does not start clocks): its stage started at its last stage
    move, else when it was recorded. Returns how many were filled; commits."""
    from server.models import ProblemStageChange

    rows = session.execute(
        select(Problem, Visit.work_group_id)
        .outerjoin(Visit, Visit.id == Problem.visit_id)
        .where(
            Problem.deleted.is_(False),
            Problem.stage.in_(OPEN_STAGES),
            Problem.due_date.is_(None),
        )
    ).all()
    for problem, group in rows:
        moved = session.scalar(
            select(ProblemStageChange.at)
            .where(
                ProblemStageChange.problem_id == problem.id,
                ProblemStageChange.to_stage == problem.stage,
            )
            .order_by(ProblemStageChange.at.desc())
            .limit(1)
        )
        start_clock(problem, problem.stage, moved or problem.created_at, rules, group)
    session.commit()
    return len(rows)


@dataclass
class OpenProblem:
    """An open problem's deadline facts, without its description (it may name people)."""

    id: str
    district_id: int
    category: str
    tag: str | None
    stage: str
    owner_level: str | None
    owner_work_group_id: int | None
    created_by_id: int | None
    stage_started_at: datetime | None
    progress_at: datetime | None
    state: DeadlineState


def open_problems(
    session: Session,
    rules: DeadlineRules,
    on: date,
    district_ids: frozenset[int] | None = None,
) -> list[OpenProblem]:
    """Every counted open problem (server/counting.py) with its colour on day `on`."""
    from server.counting import visit_not_deleted

    query = (
        select(
            Problem.id,
            Problem.district_id,
            Problem.category,
            Problem.tag,
            Problem.stage,
            Problem.owner_level,
            Problem.owner_work_group_id,
            Problem.created_by_id,
            Problem.stage_started_at,
            Problem.due_date,
            Problem.progress_at,
        )
        .outerjoin(Visit, Visit.id == Problem.visit_id)
        .where(
            Problem.deleted.is_(False),
            Problem.canonical_id.is_(None),
            visit_not_deleted(Visit),
            Problem.stage.in_(OPEN_STAGES),
        )
        .order_by(Problem.due_date, Problem.id)
    )
    if district_ids is not None:
        query = query.where(Problem.district_id.in_(sorted(district_ids)))
    out = []
    for r in session.execute(query):
        out.append(
            OpenProblem(
                r.id,
                r.district_id,
                r.category,
                r.tag,
                r.stage,
                r.owner_level,
                r.owner_work_group_id,
                r.created_by_id,
                r.stage_started_at,
                r.progress_at,
                state(r.stage, r.due_date, r.stage_started_at, r.progress_at, on, rules),
            )
        )
    return out


def colour_counts(problems: list[OpenProblem]) -> dict[int, dict[str, int]]:
    """Per district id: how many open problems are red, yellow, blue."""
    out: dict[int, dict[str, int]] = {}
    for p in problems:
        counts = out.setdefault(p.district_id, dict.fromkeys(COLOURS, 0))
        if p.state.colour:
            counts[p.state.colour] += 1
    return out


def owner_name(session: Session, level: str | None, work_group_id: int | None) -> str:
    """The owner as the pages name it: the work group's name, or the level's."""
    if level == "work_group" and work_group_id is not None:
        from server.models import WorkGroup

        group = session.get(WorkGroup, work_group_id)
        if group is not None:
            return group.name
    return OWNER_LABELS.get(level or "", "")
