"""Deadline reminders and escalation (临近提醒, 到期催办, 升级督办): plain functions over a
session, run by the beat (worker/tasks.py `deadline_reminders`).

1. `plan_reminders` reads every open problem's colour (server/deadlines.py) and inserts
   one `problem_reminders` row per (problem, state, kind, user) under a UNIQUE key, in a
   savepoint each: a beat that fires twice, two schedulers, a re-run after a killed
   worker create each reminder once. The state is the stage's clock (stage and start),
   so a problem moved to the next stage can be reminded again, once.
   - near (due within DEADLINE_NEAR_DAYS): the owner;
   - overdue (red): the owner and the level above: the work group's leaders and the
     district heads;
   - escalated (red for a second full period): the city coordination team.
   The owner of the enterprise stage is the work group (the cadre who recorded the
   problem and the group's leaders), of the government stage the district unit (its
   heads), of the source stage the city coordination team.
2. `plan_digests` gathers each user's undelivered, unacknowledged reminders into one
   digest row with one conditional UPDATE (`digest_id IS NULL`): two planners never
   put a reminder into two digests.
3. `send_digest` sends a digest as the briefings are sent (worker/briefing/deliver.py):
   claim with a conditional UPDATE, commit, SMTP, mark sent; a stale `sending` (a dead
   worker) is taken over with the same Message-ID.

Acknowledgements (`acknowledge`) are recorded per reminder with the channel (app, mail).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config.settings import ROOT, Settings
from server import deadlines
from server.models import DistrictUnit, Problem, Role, User
from server.models_deadlines import ProblemReminder, ReminderDigest

log = logging.getLogger(__name__)

ACK_SALT = "reminder-ack"
KIND_LABELS = {"near": "临近提醒", "overdue": "到期催办", "escalated": "升级督办"}
ROLE_LABELS = {
    "owner": "责任人",
    "group_leader": "工作组组长",
    "district_head": "区(市)县总工会负责人",
    "city": "市总综合协调组",
}
MAX_DIGEST_ATTEMPTS = 20


def write_lock(session: Session) -> None:
    """On SQLite, take the write lock before reading: a transaction that read first
    cannot become the writer while another one writes (SQLITE_BUSY at once, no wait),
    so two beats at the same moment would fail instead of queueing. PostgreSQL locks
    rows as it writes them."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE reminder_digests SET id = id WHERE 0"))


def state_key(stage: str, started_at: datetime) -> str:
    """The problem's state in a reminder's key: its stage and when that stage began."""
    return f"{stage}@{started_at.astimezone(UTC).isoformat(timespec='seconds')}"


@dataclass
class People:
    """Who can be reminded, loaded once per run: active users by their role's unit."""

    leaders: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    heads: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    city: list[int] = field(default_factory=list)
    active: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, session: Session) -> People:
        people = cls()
        for uid, role, district_id, group_id in session.execute(
            select(User.id, User.role, User.district_id, User.work_group_id).where(
                User.active.is_(True)
            )
        ):
            people.active.add(uid)
            if role == Role.GROUP_LEADER.value and group_id is not None:
                people.leaders[group_id].append(uid)
            elif role == Role.DISTRICT_HEAD.value and district_id is not None:
                people.heads[district_id].append(uid)
            elif role == Role.COORDINATOR.value:
                people.city.append(uid)
        return people

    def owners(self, p: deadlines.OpenProblem) -> list[tuple[int, str]]:
        """The owner's people: (user id, why)."""
        if p.owner_level == "work_group":
            out = []
            if p.created_by_id in self.active:
                out.append((p.created_by_id, "owner"))
            out += [(u, "owner") for u in self.leaders.get(p.owner_work_group_id or -1, [])]
            return out
        if p.owner_level == "district":
            return [(u, "owner") for u in self.heads.get(p.district_id, [])]
        return [(u, "owner") for u in self.city]

    def above(self, p: deadlines.OpenProblem) -> list[tuple[int, str]]:
        """The level above the owner: the work group's leaders and the district heads."""
        out = [(u, "group_leader") for u in self.leaders.get(p.owner_work_group_id or -1, [])]
        return out + [(u, "district_head") for u in self.heads.get(p.district_id, [])]


def owed(
    p: deadlines.OpenProblem, people: People, rules: deadlines.DeadlineRules
) -> list[tuple[str, int, str]]:
    """The reminders a problem's state calls for: [(kind, user id, why)], one per user
    and kind (the first reason wins)."""
    st = p.state
    if st.days_left is None:
        return []
    wanted: list[tuple[str, int, str]] = []
    if 0 <= st.days_left <= rules.near_days:
        wanted += [("near", u, why) for u, why in people.owners(p)]
    if st.colour == "red":
        wanted += [("overdue", u, why) for u, why in people.owners(p) + people.above(p)]
        if st.days_overdue >= (st.handling_days or 0):
            wanted += [("escalated", u, "city") for u in people.city]
    seen: set[tuple[str, int]] = set()
    out = []
    for kind, uid, why in wanted:
        if (kind, uid) not in seen:
            seen.add((kind, uid))
            out.append((kind, uid, why))
    return out


@dataclass
class PlanStats:
    """What one planning run did."""

    filled: int = 0
    open_problems: int = 0
    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KIND_LABELS, 0))

    @property
    def total(self) -> int:
        return sum(self.created.values())


def plan_reminders(session: Session, settings: Settings, now: datetime | None = None) -> PlanStats:
    """Insert the reminders every open problem is owed today (idempotent)."""
    now = now or datetime.now(UTC)
    rules = deadlines.current_rules(settings)
    stats = PlanStats(filled=deadlines.fill_missing(session, rules, now))
    write_lock(session)
    problems = deadlines.open_problems(session, rules, deadlines.today(now, rules.tz))
    stats.open_problems = len(problems)
    people = People.load(session)
    existing = {
        (pid, key, kind, uid)
        for pid, key, kind, uid in session.execute(
            select(
                ProblemReminder.problem_id,
                ProblemReminder.state_key,
                ProblemReminder.kind,
                ProblemReminder.user_id,
            )
        )
    }
    for p in problems:
        if p.stage_started_at is None:
            continue
        key = state_key(p.stage, p.stage_started_at)
        due = p.state.due_date.isoformat() if p.state.due_date else None
        for kind, uid, why in owed(p, people, rules):
            if (p.id, key, kind, uid) in existing:
                continue
            try:
                # A savepoint per row: a duplicate (another run got there) undoes itself.
                with session.begin_nested():
                    session.add(
                        ProblemReminder(
                            problem_id=p.id,
                            state_key=key,
                            kind=kind,
                            user_id=uid,
                            role=why,
                            district_id=p.district_id,
                            stage=p.stage,
                            due_date_text=due,
                            days_overdue=p.state.days_overdue,
                            created_at=now,
                        )
                    )
                stats.created[kind] += 1
            except IntegrityError:
                pass
    session.commit()
    return stats


def plan_digests(session: Session, settings: Settings, now: datetime | None = None) -> list[int]:
    """One digest per user with undelivered, unacknowledged reminders; returns the ids of
    the digests to send (pending). A user without an e-mail address gets the reminders
    in the app only (the digest is `skipped`)."""
    from worker.briefing import mail

    now = now or datetime.now(UTC)
    write_lock(session)
    user_ids = list(
        session.scalars(
            select(ProblemReminder.user_id)
            .where(ProblemReminder.digest_id.is_(None), ProblemReminder.acknowledged_at.is_(None))
            .distinct()
            .order_by(ProblemReminder.user_id)
        )
    )
    for uid in user_ids:
        user = session.get(User, uid)
        email = (user.email or "").strip() if user is not None else ""
        digest = ReminderDigest(
            user_id=uid,
            email=email or None,
            status="pending" if email else "skipped",
            message_id=mail.new_message_id(settings).replace("briefing", "reminders"),
            created_at=now,
        )
        session.add(digest)
        session.flush()
        taken = session.execute(
            update(ProblemReminder)
            .where(
                ProblemReminder.user_id == uid,
                ProblemReminder.digest_id.is_(None),
                ProblemReminder.acknowledged_at.is_(None),
            )
            .values(digest_id=digest.id)
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken:
            digest.reminders = taken
        else:  # another planner took them first
            session.execute(delete(ReminderDigest).where(ReminderDigest.id == digest.id))
        session.commit()
        write_lock(session)
    session.commit()
    return list(
        session.scalars(
            select(ReminderDigest.id)
            .where(ReminderDigest.status == "pending")
            .order_by(ReminderDigest.id)
        )
    )


def run_beat(session: Session, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """One beat: plan today's reminders, gather them into digests; returns the counts
    and the ids of every digest to send (new ones and those a sweep should retry)."""
    stats = plan_reminders(session, settings, now)
    plan_digests(session, settings, now)
    return {
        "filled": stats.filled,
        "open_problems": stats.open_problems,
        "created": stats.created,
        "to_send": due_digests(session, settings, now),
    }


def digest_items(session: Session, digest_id: int) -> list[dict[str, Any]]:
    """The reminders of a digest as the mail and the pages show them: no description
    (it may name people), the category, stage, district, owner, due date, colour."""
    rows = session.execute(
        select(ProblemReminder, Problem, DistrictUnit.name)
        .join(Problem, Problem.id == ProblemReminder.problem_id)
        .join(DistrictUnit, DistrictUnit.id == ProblemReminder.district_id)
        .where(ProblemReminder.digest_id == digest_id)
        .order_by(
            ProblemReminder.days_overdue.desc(),
            ProblemReminder.due_date_text,
            ProblemReminder.id,
        )
    ).all()
    return [_item(session, r, p, district) for r, p, district in rows]


def _item(session: Session, r: ProblemReminder, p: Problem, district: str) -> dict[str, Any]:
    from worker.briefing.compute import labels

    return {
        "id": r.id,
        "problem_id": r.problem_id,
        "kind": r.kind,
        "kind_label": KIND_LABELS[r.kind],
        "role_label": ROLE_LABELS.get(r.role, r.role),
        "category": labels("categories").get(p.category, p.category),
        "tag": labels("problem_tags").get(p.tag, p.tag) if p.tag else "",
        "stage": labels("stages").get(r.stage, r.stage),
        "district": district,
        "owner": deadlines.owner_name(session, p.owner_level, p.owner_work_group_id),
        "due_date": r.due_date_text,
        "days_overdue": r.days_overdue,
        "acknowledged_at": r.acknowledged_at,
    }


def ack_token(settings: Settings, digest_id: int, user_id: int) -> str:
    return URLSafeSerializer(settings.SECRET_KEY, salt=ACK_SALT).dumps([digest_id, user_id])


def read_ack_token(settings: Settings, token: str) -> tuple[int, int] | None:
    try:
        digest_id, user_id = URLSafeSerializer(settings.SECRET_KEY, salt=ACK_SALT).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    return int(digest_id), int(user_id)


def ack_url(settings: Settings, digest_id: int, user_id: int) -> str:
    return (
        f"{settings.PUBLIC_URL.rstrip('/')}/reminders/ack/{ack_token(settings, digest_id, user_id)}"
    )


@lru_cache(maxsize=1)
def _templates() -> Environment:
    """The digest mail's templates (server/templates/reminders), HTML autoescaped."""
    return Environment(
        loader=FileSystemLoader(str(ROOT / "server" / "templates" / "reminders")),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_digest(
    session: Session, settings: Settings, digest: ReminderDigest
) -> tuple[str, str, str]:
    """(subject, text, HTML) of a digest mail."""
    user = session.get(User, digest.user_id)
    items = digest_items(session, digest.id)
    counts = {k: sum(1 for i in items if i["kind"] == k) for k in KIND_LABELS}
    ctx = {
        "name": user.display_name if user else "",
        "items": items,
        "counts": counts,
        "kind_labels": KIND_LABELS,
        "ack_url": ack_url(settings, digest.id, digest.user_id),
        "tracker_url": f"{settings.PUBLIC_URL.rstrip('/')}/problems",
    }
    parts = [f"{KIND_LABELS[k]}{n}件" for k, n in counts.items() if n]
    subject = f"【问题督办】{'，'.join(parts)}"
    env = _templates()
    return (
        subject,
        env.get_template("reminders.txt").render(**ctx),
        env.get_template("reminders.html").render(**ctx),
    )


class DigestBusy(Exception):
    """Another attempt holds a fresh claim on the digest: try again after `retry_in`."""

    def __init__(self, digest_id: int, retry_in: float):
        super().__init__(f"digest {digest_id} is being sent; retry in {retry_in:.0f}s")
        self.retry_in = retry_in


def send_digest(
    session: Session, settings: Settings, digest_id: int, now: datetime | None = None
) -> str:
    """Send one digest if nobody has: sent | already_sent | failed | skipped | missing.
    Transient SMTP errors are recorded and re-raised (the task retries)."""
    from worker.briefing import mail

    now = now or datetime.now(UTC)
    stale = timedelta(seconds=settings.BRIEFING_STALE_SECONDS)
    claimed = session.execute(
        update(ReminderDigest)
        .where(
            ReminderDigest.id == digest_id,
            or_(
                ReminderDigest.status.in_(("pending", "failed")),
                (ReminderDigest.status == "sending") & (ReminderDigest.sending_at < now - stale),
            ),
        )
        .values(status="sending", sending_at=now, attempts=ReminderDigest.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    digest = session.get(ReminderDigest, digest_id)
    if digest is None:
        return "missing"
    session.refresh(digest)
    if not claimed:
        if digest.status == "sending":
            raise DigestBusy(digest_id, max(1.0, (digest.sending_at + stale - now).total_seconds()))
        return "already_sent" if digest.status == "sent" else digest.status

    def finish(status: str, error: str | None = None) -> None:
        session.execute(
            update(ReminderDigest)
            .where(ReminderDigest.id == digest_id, ReminderDigest.status == "sending")
            .values(
                status=status,
                last_error=error,
                sent_at=datetime.now(UTC) if status == "sent" else None,
            )
            .execution_options(synchronize_session=False)
        )
        session.commit()

    if digest.attempts > 1 and mail.already_in_outbox(settings, digest.message_id):
        finish("sent")
        return "sent"
    try:
        subject, text_part, html = render_digest(session, settings, digest)
        msg = mail.build_message(
            settings,
            to=digest.email or "",
            subject=subject,
            text=text_part,
            html=html,
            message_id=digest.message_id,
            sender="问题督办提醒",
        )
        session.rollback()  # no transaction stays open while SMTP talks
        mail.deliver(settings, msg)
    except mail.PermanentSendError as exc:
        session.rollback()
        finish("failed", f"permanent: {exc}"[:2000])
        return "failed"
    except Exception as exc:
        session.rollback()
        finish("failed", f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finish("sent")
    log.info("reminder digest sent", extra={"digest_id": digest_id})
    return "sent"


def due_digests(session: Session, settings: Settings, now: datetime | None = None) -> list[int]:
    """Digests a beat should (re-)send: pending, failed on a transient error, or a stale
    `sending` (a dead worker), up to MAX_DIGEST_ATTEMPTS attempts."""
    now = now or datetime.now(UTC)
    stale = timedelta(seconds=settings.BRIEFING_STALE_SECONDS)
    return list(
        session.scalars(
            select(ReminderDigest.id)
            .where(
                or_(
                    ReminderDigest.status == "pending",
                    (ReminderDigest.status == "failed")
                    & ~ReminderDigest.last_error.startswith("permanent:"),
                    (ReminderDigest.status == "sending")
                    & (ReminderDigest.sending_at < now - stale),
                ),
                ReminderDigest.attempts < MAX_DIGEST_ATTEMPTS,
            )
            .order_by(ReminderDigest.id)
        )
    )


def acknowledge(
    session: Session,
    user_id: int,
    reminder_ids: list[int] | None = None,
    digest_id: int | None = None,
    via: str = "app",
    now: datetime | None = None,
) -> int:
    """Record that a user saw their reminders (some ids, or a whole digest); returns
    how many were newly acknowledged. Someone else's reminders are never touched."""
    conds = [ProblemReminder.user_id == user_id, ProblemReminder.acknowledged_at.is_(None)]
    if reminder_ids is not None:
        conds.append(ProblemReminder.id.in_(reminder_ids or [-1]))
    if digest_id is not None:
        conds.append(ProblemReminder.digest_id == digest_id)
    n = session.execute(
        update(ProblemReminder)
        .where(*conds)
        .values(acknowledged_at=now or datetime.now(UTC), acknowledged_via=via)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return n


def user_reminders(session: Session, user_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """A user's reminders, newest first, for the in-app list and the API."""
    rows = session.execute(
        select(ProblemReminder, Problem, DistrictUnit.name)
        .join(Problem, Problem.id == ProblemReminder.problem_id)
        .join(DistrictUnit, DistrictUnit.id == ProblemReminder.district_id)
        .where(ProblemReminder.user_id == user_id)
        .order_by(ProblemReminder.created_at.desc(), ProblemReminder.id.desc())
        .limit(limit)
    ).all()
    out = []
    for r, p, district in rows:
        item = _item(session, r, p, district)
        item["acknowledged_at"] = r.acknowledged_at.isoformat() if r.acknowledged_at else None
        item["current_stage"] = p.stage
        out.append(item)
    return out


def counts(session: Session) -> dict[str, int]:
    """Reminders by kind, digests by status, acknowledgements (ops and tests)."""
    out = {
        f"reminders_{kind}": n
        for kind, n in session.execute(
            select(ProblemReminder.kind, func.count()).group_by(ProblemReminder.kind)
        )
    }
    out.update(
        {
            f"digests_{status}": n
            for status, n in session.execute(
                select(ReminderDigest.status, func.count()).group_by(ReminderDigest.status)
            )
        }
    )
    out["acknowledged"] = session.scalar(
        select(func.count()).where(ProblemReminder.acknowledged_at.is_not(None))
    )
    return out
