"""Plausibility of pushed numbers (issue 13, item 8): per-field limits that match the
campaign, a hard limit that refuses and a soft one that holds a record for review.

- Beyond a HARD limit (PLAUSIBLE_HARD) a visit or home visit is rejected as
  `implausible_value`, naming the field and the limit: one cadre cannot record 500
  million workers met, nor 5,000 visits in a day.
- Above a SOFT limit (PLAUSIBLE_SOFT) the record is stored, `held` and flagged for the
  supervision team: a `PlausibilityFlag` row with the reasons, listed on the spot-checks
  page (/spot-checks, /api/spot-checks/flags). A held record counts in no statistic
  (server/coordination/filters.live, worker/briefing/compute._live: the dashboard, the
  briefings, the evaluation, the exports) until a supervisor accepts it; a rejected one
  stays held. A later edit that changes the flagged values asks for a new review.

Fields: a visit's `workers_met`, each `workers_by_group` count, `materials`,
`consultations`; a home visit's `amount_cents` (condolence money, in fen); and
`visits_per_day`, the visits one author records for one local day (TIMEZONE).
Plain functions over a session; limits are read from the settings, parsed once.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import HomeVisit, User, Visit
from server.models_supervision import (
    FLAG_ACCEPTED,
    FLAG_OBSOLETE,
    FLAG_PENDING,
    FLAG_REJECTED,
    PlausibilityFlag,
)

FIELDS = (
    "workers_met",
    "workers_by_group",
    "materials",
    "consultations",
    "amount_cents",
    "visits_per_day",
)
VISIT_FIELDS = ("workers_met", "materials", "consultations")
MODELS = {"visit": Visit, "home_visit": HomeVisit}


class PlausibilitySettingsError(ValueError):
    """PLAUSIBLE_SOFT or PLAUSIBLE_HARD cannot be read; the message names the setting."""


def parse_limits(name: str, raw: str, base: dict[str, int] | None = None) -> dict[str, int]:
    """`field=limit,...` (fields of FIELDS, each a positive integer); a field left out
    keeps its limit in `base` (the setting's default)."""
    out: dict[str, int] = dict(base or {})
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in FIELDS:
            raise PlausibilitySettingsError(
                f"{name}: {part!r} is not field=limit with a field of {', '.join(FIELDS)}"
            )
        try:
            limit = int(value)
        except ValueError:
            raise PlausibilitySettingsError(
                f"{name}: {key}={value!r}: expected an integer"
            ) from None
        if limit < 1:
            raise PlausibilitySettingsError(f"{name}: {key}={limit}: must be at least 1")
        out[key] = limit
    missing = [f for f in FIELDS if f not in out]
    if missing:
        raise PlausibilitySettingsError(f"{name}: no limit for {', '.join(missing)}")
    return out


@dataclass(frozen=True)
class Limits:
    """The soft and hard limit of each field, and the zone of `visits_per_day`."""

    soft: dict[str, int]
    hard: dict[str, int]
    tz: str = "Asia/Shanghai"

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        from config.settings import SETTINGS

        default = {s.name: s.default for s in SETTINGS}
        soft, hard = (
            parse_limits(name, settings.values[name], parse_limits(name, default[name]))
            for name in ("PLAUSIBLE_SOFT", "PLAUSIBLE_HARD")
        )
        for f in FIELDS:
            if soft[f] > hard[f]:
                raise PlausibilitySettingsError(
                    f"PLAUSIBLE_SOFT: {f}={soft[f]} is above PLAUSIBLE_HARD's {hard[f]}"
                )
        return cls(soft, hard, settings.TIMEZONE)


_LIMITS: dict[tuple, Limits] = {}


def current_limits(settings: Any = None) -> Limits:
    """The limits of the running app (or of `settings`), parsed once per value."""
    if settings is None:
        from flask import current_app

        settings = current_app.config["FV"]
    key = (settings.PLAUSIBLE_SOFT, settings.PLAUSIBLE_HARD, settings.TIMEZONE)
    if key not in _LIMITS:
        _LIMITS[key] = Limits.from_settings(settings)
    return _LIMITS[key]


class Implausible(Exception):  # noqa: N818 - a verdict, like sync.records.Rejected
    """A value beyond its hard limit: `field` (as the phone names it), value, limit."""

    def __init__(self, field: str, value: int, limit: int, what: str):
        super().__init__(f"{field}: {value} is more than {limit} {what}")
        self.field, self.value, self.limit = field, value, limit


def _values(entity: str, record: Any, changes: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(limit name, field as named to the phone, value) of a record after `changes`."""

    def now(key: str) -> Any:
        return changes[key] if key in changes else getattr(record, key, None) if record else None

    out: list[tuple[str, str, int]] = []
    if entity == "visit":
        for key in VISIT_FIELDS:
            out.append((key, key, int(now(key) or 0)))
        for group, count in sorted((now("workers_by_group") or {}).items()):
            out.append(("workers_by_group", f"workers_by_group.{group}", int(count or 0)))
    elif entity == "home_visit":
        out.append(("amount_cents", "amount_cents", int(now("amount_cents") or 0)))
    return out


_WHAT = {
    "workers_met": "workers met in one visit",
    "workers_by_group": "workers of one focus group in one visit",
    "materials": "materials handed out in one visit",
    "consultations": "consultations in one visit",
    "amount_cents": "fen of condolence money in one home visit",
    "visits_per_day": "visits by one author on one day",
}


def check_values(
    limits: Limits, entity: str, record: Any, changes: dict[str, Any]
) -> list[dict[str, Any]]:
    """Raise Implausible beyond a hard limit; else the soft reasons (possibly none)."""
    reasons = []
    for name, field, value in _values(entity, record, changes):
        if value > limits.hard[name]:
            raise Implausible(field, value, limits.hard[name], _WHAT[name])
        if value > limits.soft[name]:
            reasons.append({"field": field, "value": value, "limit": limits.soft[name]})
    return reasons


def day_bounds(at: datetime, tz: str) -> tuple[datetime, datetime]:
    """The local day of `at` as an aware UTC interval."""
    day = at.astimezone(ZoneInfo(tz)).date()
    start = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(tz)).astimezone(UTC)
    return start, start + timedelta(days=1)


def stored_visits_by_day(
    session: Session, user_id: int | None, tz: str, days: Iterable[datetime]
) -> dict[datetime, int]:
    """How many live visits `user_id` recorded on each of `days` (local days, keyed by
    the day's start as day_bounds gives it): one index range (ix_visits_author_day) from
    the first of the days to the end of the last, so a push reads the days it needs,
    not the author's whole history. Without autoflush: the batch's own visits are
    counted by the caller (sync/records.Reference.day_counts)."""
    starts = sorted(set(days))
    if not starts:
        return {}
    ends = [start + timedelta(days=1) for start in starts]
    counts = dict.fromkeys(starts, 0)
    with session.no_autoflush:
        rows = session.scalars(
            select(Visit.visited_at).where(
                Visit.created_by_id == user_id,
                Visit.visited_at >= starts[0],
                Visit.visited_at < ends[-1],
                Visit.deleted.is_(False),
            )
        )
        for at in rows:
            if at is None:
                continue
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            i = bisect.bisect_right(starts, at) - 1
            if i >= 0 and at < ends[i]:
                counts[starts[i]] += 1
    return counts


def check_day_count(limits: Limits, count: int) -> list[dict[str, Any]]:
    """`count` = the author's visits on that day, this one included: raise Implausible
    beyond the hard limit, else the soft reason (or none)."""
    if count > limits.hard["visits_per_day"]:
        raise Implausible(
            "visited_at", count, limits.hard["visits_per_day"], _WHAT["visits_per_day"]
        )
    if count > limits.soft["visits_per_day"]:
        return [{"field": "visits_per_day", "value": count, "limit": limits.soft["visits_per_day"]}]
    return []


def hold(
    session: Session,
    entity: str,
    record: Any,
    district_id: int | None,
    reasons: list[dict[str, Any]],
    user_id: int | None,
) -> bool:
    """Record the review state of a just-written record; True when it is held (does not
    count). New soft reasons open a pending flag (an earlier open one of the record is
    replaced); the reasons an accepted flag already covered keep it counted; no reasons
    close any open flag."""
    rid = record.id
    held_before = bool(getattr(record, "held", False))
    if not reasons and not held_before:
        return False  # the common case reads nothing
    latest = session.scalars(
        select(PlausibilityFlag)
        .where(PlausibilityFlag.entity == entity, PlausibilityFlag.record_id == rid)
        .order_by(PlausibilityFlag.id.desc())
        .limit(1)
    ).first()
    if not reasons:
        if latest is not None and latest.status == FLAG_PENDING:
            latest.status = FLAG_OBSOLETE
        return False
    if latest is not None and latest.reasons == reasons:
        if latest.status == FLAG_ACCEPTED:
            return False
        if latest.status in (FLAG_PENDING, FLAG_REJECTED):
            return True
    if latest is not None and latest.status == FLAG_PENDING:
        latest.status = FLAG_OBSOLETE
    session.add(
        PlausibilityFlag(
            entity=entity,
            record_id=rid,
            district_id=district_id,
            reasons=reasons,
            status=FLAG_PENDING,
            created_by_id=user_id,
        )
    )
    return True


def open_flags(
    session: Session, district_ids: frozenset[int] | None, limit: int = 200
) -> list[PlausibilityFlag]:
    """Pending flags (oldest first) of the districts in scope."""
    query = select(PlausibilityFlag).where(PlausibilityFlag.status == FLAG_PENDING)
    if district_ids is not None:
        query = query.where(PlausibilityFlag.district_id.in_(sorted(district_ids)))
    return list(session.scalars(query.order_by(PlausibilityFlag.id).limit(limit)))


def decide(
    session: Session, flag: PlausibilityFlag, accept: bool, user: User, note: str | None
) -> None:
    """A supervisor's decision: accepted records count from now on, rejected ones stay
    held. Raises ValueError for a flag that is no longer pending."""
    if flag.status != FLAG_PENDING:
        raise ValueError(f"this flag is {flag.status}, not pending")
    flag.status = FLAG_ACCEPTED if accept else FLAG_REJECTED
    flag.decided_by_id = user.id
    flag.decided_at = datetime.now(UTC)
    flag.note = note
    record = session.get(MODELS[flag.entity], flag.record_id)
    if record is not None:
        # An ORM change: the record's version moves, so cached dashboards recompute.
        record.held = not accept
        if flag.entity == "visit" and record.canonical_id:
            # merged into another visit: the canonical one's combined counts follow
            from worker.merges import recompute_visit, root_of

            root = root_of(session, "visit", record.id)
            if root is not None and root.id != record.id:
                recompute_visit(session, root)


TEXTS = {
    "flags": ("待复核的异常数值", "Implausible values to review"),
    "flag_visit": ("走访", "Visit"),
    "flag_home_visit": ("入户慰问", "Home visit"),
    "flag_reasons": ("超出合理范围", "Beyond the soft limit"),
    "flag_author": ("录入人", "Recorded by"),
    "flag_accept": ("属实，计入统计", "Plausible: count it"),
    "flag_reject": ("不属实，不计入", "Not plausible: keep it out"),
    "flag_none": ("没有待复核的记录", "Nothing to review"),
    "flag_hint": (
        "超出软上限的记录已保存，但在督导检查组复核认可前不计入统计、简报和考核评比。",
        "Records above a soft limit are stored but count in no statistic, briefing or "
        "evaluation until the supervision team accepts them.",
    ),
}


def texts(lang: str) -> dict[str, str]:
    return {k: (en if lang == "en" else zh) for k, (zh, en) in TEXTS.items()}
