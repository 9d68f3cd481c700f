"""Who has not reported (催报): non-reporting cadres and work groups, districts short of
their targets, and the reminders sent to them.

Plain functions over a session, used by the 催报 page (server/nonreporters_web.py) and the
worker that sends the mails (worker/nonreporters.py).

- A cadre (field cadre or group leader, active) *reported* in a period when they are
  among the participants of a visit in it (the author always is); deleted visits and
  merged duplicates do not count.
- A work group reported when a visit of the group lies in the period.
- A district is short when it misses a target of the campaign (config/vocabulary.json:
  enterprises, enterprise types, workers met) or not every cadre took part; the
  figures are the dashboard's (server/coordination/dashboard.py), so both agree.
- One click creates one batch under the form's one-time key and one reminder per
  person (unique per batch and person); the worker sends each exactly once. Each
  reminder records sent, opened (its link was followed) and reported (a visit with the
  person among the participants saved after the reminder was sent).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.models import Role, User, Visit, WorkGroup, visit_participants
from server.models_nonreporters import ReportReminder, ReportReminderBatch

CADRE_ROLES = (Role.FIELD_CADRE.value, Role.GROUP_LEADER.value)


@dataclass
class NonReporters:
    """The non-reporters of one period inside one scope."""

    cadres: list[User] = field(default_factory=list)
    groups: list[WorkGroup] = field(default_factory=list)
    reported: int = 0  # cadres in scope who did report
    total: int = 0  # cadres in scope


def _counted_visits(start: datetime, end: datetime):  # noqa: ANN202 - a SQL condition
    return (
        Visit.deleted.is_(False),
        Visit.canonical_id.is_(None),
        Visit.visited_at >= start,
        Visit.visited_at < end,
    )


def non_reporters(
    session: Session,
    bounds: tuple[datetime, datetime],
    district_ids: frozenset[int] | None,
    work_group_id: int | None = None,
) -> NonReporters:
    """Active cadres and work groups in scope without a visit in [start, end)."""
    start, end = bounds
    # A merged duplicate's participants count on its canonical visit, whose participant
    # list the merge extends: counting only canonical visits counts each meeting once.
    took_part = exists(
        select(1)
        .select_from(visit_participants.join(Visit, Visit.id == visit_participants.c.visit_id))
        .where(visit_participants.c.user_id == User.id, *_counted_visits(start, end))
    )
    query = select(User, took_part).where(User.active.is_(True), User.role.in_(CADRE_ROLES))
    if district_ids is not None:
        query = query.where(User.district_id.in_(district_ids))
    if work_group_id is not None:
        query = query.where(User.work_group_id == work_group_id)
    out = NonReporters()
    for user, reported in session.execute(query.order_by(User.district_id, User.username)):
        out.total += 1
        if reported:
            out.reported += 1
        else:
            out.cadres.append(user)
    groups = select(WorkGroup).order_by(WorkGroup.code)
    if work_group_id is not None:
        groups = groups.where(WorkGroup.id == work_group_id)
    active = set(
        session.scalars(
            select(Visit.work_group_id)
            .where(*_counted_visits(start, end), Visit.work_group_id.is_not(None))
            .distinct()
        )
    )
    for group in session.scalars(groups):
        serves = {d.id for d in group.districts}
        if district_ids is not None and not (serves & district_ids):
            continue
        if group.id not in active:
            out.groups.append(group)
    return out


def district_shortfalls(rows: list[dict[str, Any]], targets: dict[str, Any]) -> list[dict]:
    """What each dashboard row misses: [{code, name, missing: [{code, have, need}]}]."""
    out = []
    for r in rows:
        missing = []
        for key in ("enterprises", "enterprise_types", "workers_met"):
            if r.get(key, 0) < targets[key]:
                missing.append({"code": key, "have": r.get(key, 0), "need": targets[key]})
        if r.get("cadres_total") and r.get("cadres_active", 0) < r["cadres_total"]:
            missing.append(
                {"code": "participation", "have": r["cadres_active"], "need": r["cadres_total"]}
            )
        if missing:
            out.append({"code": r["code"], "name": r.get("name"), "missing": missing})
    return out


def new_message_id(domain: str) -> str:
    from email.utils import make_msgid

    return make_msgid(idstring="reminder", domain=domain or "localhost")


def create_batch(
    session: Session,
    *,
    key: str,
    sender: User,
    period_kind: str,
    period_start: date,
    period_end: date,
    recipients: list[tuple[User, list[dict[str, Any]]]],
    mail_domain: str,
) -> tuple[ReportReminderBatch, bool]:
    """One batch per key, one reminder per recipient; (batch, created). The caller's
    transaction is committed here: a second click with the same key finds the batch."""
    found = session.scalar(select(ReportReminderBatch).where(ReportReminderBatch.key == key))
    if found is not None:
        return found, False
    batch = ReportReminderBatch(
        key=key,
        created_by=sender.id,
        period_kind=period_kind,
        period_start=period_start,
        period_end=period_end,
    )
    session.add(batch)
    try:
        session.flush()
    except IntegrityError:  # the same key from a concurrent request
        session.rollback()
        return session.scalar(
            select(ReportReminderBatch).where(ReportReminderBatch.key == key)
        ), False
    for user, missing in recipients:
        session.add(
            ReportReminder(
                batch_id=batch.id,
                user_id=user.id,
                missing=missing,
                status="pending" if user.email else "no_email",
                token=secrets.token_urlsafe(32),
                message_id=new_message_id(mail_domain),
            )
        )
    session.commit()
    return batch, True


def reported_after(session: Session, reminder: ReportReminder) -> bool:
    """Did the person take part in a visit saved after the reminder was sent?"""
    if reminder.sent_at is None:
        return False
    return bool(
        session.scalar(
            select(func.count())
            .select_from(visit_participants.join(Visit, Visit.id == visit_participants.c.visit_id))
            .where(
                visit_participants.c.user_id == reminder.user_id,
                Visit.deleted.is_(False),
                Visit.created_at > reminder.sent_at,
            )
        )
    )


def mark_opened(session: Session, token: str, now: datetime | None = None) -> ReportReminder | None:
    """The reminder's link was followed: the first time is kept. The caller commits."""
    reminder = session.scalar(select(ReportReminder).where(ReportReminder.token == token))
    if reminder is not None and reminder.opened_at is None:
        reminder.opened_at = now or datetime.now(UTC)
    return reminder


MISSING_TEXT = {
    "no_visit": "本期还没有走访记录",
    "group_no_visit": "所在工作组本期还没有走访记录",
}


__all__ = [
    "CADRE_ROLES",
    "MISSING_TEXT",
    "NonReporters",
    "create_batch",
    "district_shortfalls",
    "mark_opened",
    "non_reporters",
    "reported_after",
]
