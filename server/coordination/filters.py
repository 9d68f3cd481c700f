"""The filters every coordination view shares: period, work group, enterprise tags, scope.

One place turns them into SQL conditions on visits, so the dashboard, the problem
tracker, the spot-check draw and the exports all mean the same thing by "these visits".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, exists, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import ColumnElement

from server.counting import visit_not_deleted
from server.models import (
    ENTERPRISE_FOCUS_TAGS,
    ENTERPRISE_TYPE_TAGS,
    Enterprise,
    Visit,
)
from worker.briefing.compute import Period

ENTERPRISE_TAGS = ENTERPRISE_TYPE_TAGS + ENTERPRISE_FOCUS_TAGS


@dataclass(frozen=True)
class Filters:
    """What the user narrowed the view to; `district_ids` None means every district."""

    date_from: date
    date_to: date  # inclusive: the last local day shown
    work_group_id: int | None = None
    tags: tuple[str, ...] = ()
    district_ids: frozenset[int] | None = None
    tz: str = "Asia/Shanghai"

    @property
    def period(self) -> Period:
        """The same days as a briefing Period, so the briefing aggregates can be reused."""
        return Period("campaign", self.date_from, self.date_to + timedelta(days=1), self.tz)

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as aware UTC instants."""
        zone = ZoneInfo(self.tz)
        return (
            datetime.combine(self.date_from, time(), zone).astimezone(UTC),
            datetime.combine(self.date_to + timedelta(days=1), time(), zone).astimezone(UTC),
        )

    @property
    def narrows_visits(self) -> bool:
        """True when a work group or tag filter applies (the briefing aggregates cannot)."""
        return self.work_group_id is not None or bool(self.tags)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "work_group_id": self.work_group_id,
            "tags": list(self.tags),
        }


class _Unindexed(ColumnElement):
    """A column no index may serve on SQLite (`+column`); itself elsewhere.

    `canonical_id IS NULL` holds for almost every row, but SQLite's statistics only know
    rows per index value, so it would walk the whole table through that index row by row
    (see docs/briefings.md); PostgreSQL's planner knows better from its statistics.
    """

    inherit_cache = True

    def __init__(self, column: Any) -> None:
        self.column = column
        self.type = column.type


@compiles(_Unindexed)
def _unindexed_default(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(_Unindexed, "sqlite")
def _unindexed_sqlite(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


def live(model: Any) -> list[Any]:
    """Canonical, undeleted records only (a merged duplicate counts through its canonical);
    a visit or home visit held for plausibility review counts once accepted
    (server/plausibility.py)."""
    conds = [_Unindexed(model.canonical_id).is_(None), model.deleted.is_(False)]
    held = getattr(model, "held", None)
    if held is not None:
        conds.append(held.is_(False))
    return conds


def tag_condition(tags: tuple[str, ...], visit: Any = Visit) -> Any:
    """The visit's enterprise (its canonical record) carries at least one of `tags`.

    Tags are fixed vocabulary codes, so matching the quoted code in the JSON text is exact
    and the same on SQLite and PostgreSQL.
    """
    ent, canon = aliased(Enterprise), aliased(Enterprise)
    conds = []
    for tag in tags:
        column = canon.type_tags if tag in ENTERPRISE_TYPE_TAGS else canon.focus_tags
        conds.append(cast(column, String).like(f'%"{tag}"%'))
    return exists(
        select(ent.id)
        .join(
            canon,
            or_(canon.id == ent.canonical_id, ent.canonical_id.is_(None) & (canon.id == ent.id)),
        )
        .where(ent.id == visit.enterprise_id, or_(*conds))
    )


def visit_conditions(
    f: Filters, visit: Any = Visit, dated: bool = True, of_children: bool = False
) -> list[Any]:
    """SQL conditions selecting the live visits inside the filters (`dated=False`: any day).

    `of_children`: the conditions on the visit of counted problems and home visits
    (server/counting.py: only a deleted visit hides them; a merged one does not).
    """
    conds = [visit_not_deleted(visit)] if of_children else live(visit)
    if dated:
        start, end = f.bounds()
        conds += [visit.visited_at >= start, visit.visited_at < end]
    if f.district_ids is not None:
        conds.append(visit.district_id.in_(sorted(f.district_ids)))
    if f.work_group_id is not None:
        conds.append(visit.work_group_id == f.work_group_id)
    if f.tags:
        conds.append(tag_condition(f.tags, visit))
    return conds


def local_day(session: Session, column: Any, tz: str) -> Any:
    """The local calendar day of a stored UTC timestamp, as an SQL expression."""
    from sqlalchemy import func

    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(tz, column))
    # SQLite keeps naive UTC text; the campaign's zone has no daylight saving, so a fixed
    # offset taken now is exact for every date.
    offset = datetime.now(ZoneInfo(tz)).utcoffset() or timedelta()
    minutes = int(offset.total_seconds() // 60)
    return func.date(column, f"{minutes:+d} minutes")


def as_date(value: Any) -> date:
    """A date out of an SQL date expression (SQLite answers text)."""
    return date.fromisoformat(value) if isinstance(value, str) else value
