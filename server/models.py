"""The campaign's domain model, shared by the web app, the sync protocol and the workers.

Imports nothing from server routes, sync or worker. Records that phones sync carry a
client-made UUID, a server-assigned `version` (see sync/versioning.py), a soft-delete
flag (tombstones) and `canonical_id` (set when dedup merged the record into another).
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from server.extensions import db


def utcnow() -> datetime:
    """Aware UTC now; every stored timestamp is UTC."""
    return datetime.now(UTC)


class Role(enum.StrEnum):
    """What a user may do; see server/scope.py."""

    FIELD_CADRE = "field_cadre"
    GROUP_LEADER = "group_leader"
    DISTRICT_HEAD = "district_head"
    COORDINATOR = "city_coordinator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


VISIT_METHODS = ("report", "symposium", "interview", "home_visit", "outreach")
VISIT_PLACES = ("enterprise", "workshop", "team", "living", "other")
FOCUS_GROUPS = ("needy", "laid_off", "migrant", "dispatched")


def sqlite_focus_count(group: str, table: str = "") -> str:
    """SQLite SQL for a visit's count of workers of one focus group (0 if none).

    `ix_visits_stats` indexes exactly this expression, so SQLite reads the counts from
    the index instead of parsing every visit's JSON; a query must spell it the same way
    (literals, not bound parameters) for SQLite to match it. `table` qualifies the column.
    """
    column = f"{table}.workers_by_group" if table else "workers_by_group"
    return f"coalesce(CAST(json_extract({column}, '$.\"{group}\"') AS INTEGER), 0)"


ENTERPRISE_TYPE_TAGS = ("sme", "non_public", "restructured", "difficulty", "labour_intensive")
ENTERPRISE_FOCUS_TAGS = ("many_needy", "labour_conflict", "weak_union")
PROBLEM_CATEGORIES = (
    "employment",
    "wages",
    "social_insurance",
    "safety",
    "housing",
    "schooling",
    "other",
)
PROBLEM_TAGS = ("hope", "urgent", "worry", "resent")
PROBLEM_STAGES = ("enterprise", "government", "source", "resolved", "closed")
OPEN_STAGES = ("enterprise", "government", "source")


class UTCDateTime(TypeDecorator):
    """Aware datetimes stored as UTC on every database (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every stored timestamp must carry its offset")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _ts() -> UTCDateTime:
    return UTCDateTime()


work_group_districts = Table(
    "work_group_districts",
    db.metadata,
    Column("work_group_id", ForeignKey("work_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("district_id", ForeignKey("district_units.id", ondelete="CASCADE"), primary_key=True),
)

visit_participants = Table(
    "visit_participants",
    db.metadata,
    Column("visit_id", ForeignKey("visits.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_visit_participants_user_id", "user_id"),
)


class DistrictUnit(db.Model):
    """A district, county or county-level city federation, or a federation office."""

    __tablename__ = "district_units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(40))
    short: Mapped[str] = mapped_column(String(20))
    name_en: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class WorkGroup(db.Model):
    """A city-federation work group, paired (对口) with one or more district units."""

    __tablename__ = "work_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    districts: Mapped[list[DistrictUnit]] = relationship(secondary=work_group_districts)


class User(db.Model):
    """A person who signs in: cadre, leader, district head, coordinator, supervisor, admin."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(24))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district_units.id"))
    work_group_id: Mapped[int | None] = mapped_column(ForeignKey("work_groups.id"))
    email: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(_ts(), default=utcnow)
    # Raised by logout, a password reset and disabling (server/sessions.py): every web
    # session and device token issued under an older value no longer signs anyone in.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    district: Mapped[DistrictUnit | None] = relationship()
    work_group: Mapped[WorkGroup | None] = relationship()


class Device(db.Model):
    """A phone or browser signed in as a user; holds the sync mutation counter."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    last_mid: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(_ts(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(_ts(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(_ts())
    # The user's session_generation when this token was issued.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    user: Mapped[User] = relationship()


class MutationResult(db.Model):
    """What a pushed mutation did, kept so a replay answers exactly the same."""

    __tablename__ = "mutation_results"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    mid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(12))
    result: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(_ts(), default=utcnow)
    # sync.push.fingerprint of the change (entity, id, op, fields): a mid sent again with
    # another change is `mid_reused`, not a replay. None on rows from before 0006.
    fingerprint: Mapped[str | None] = mapped_column(String(32))


class SyncState(db.Model):
    """The single row holding the global version counter and the database's epoch."""

    __tablename__ = "sync_state"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    epoch: Mapped[str] = mapped_column(String(32))
    purge_horizon: Mapped[int] = mapped_column(BigInteger, default=0)


class SyncedMixin:
    """Columns every phone-synced record has."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Indexed with the id as `ix_<table>_sync` (pull order) in each table's arguments.
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    district_id: Mapped[int] = mapped_column(ForeignKey("district_units.id"), index=True)
    canonical_id: Mapped[str | None] = mapped_column(String(36), index=True)
    field_versions: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(_ts(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(_ts(), default=utcnow, onupdate=utcnow)


class Enterprise(SyncedMixin, db.Model):
    """An enterprise visited or to be visited; identified by its USCC where known."""

    __tablename__ = "enterprises"
    name: Mapped[str] = mapped_column(String(200))
    uscc: Mapped[str | None] = mapped_column(String(18), index=True)
    uscc_valid: Mapped[bool] = mapped_column(Boolean, default=False)
    address: Mapped[str | None] = mapped_column(String(300))
    type_tags: Mapped[list] = mapped_column(JSON, default=list)
    focus_tags: Mapped[list] = mapped_column(JSON, default=list)
    head_count: Mapped[int | None] = mapped_column(Integer)
    has_union: Mapped[bool | None] = mapped_column(Boolean)

    district: Mapped[DistrictUnit] = relationship()
    __table_args__ = (Index("ix_enterprises_sync", "version", "id"),)


class Visit(SyncedMixin, db.Model):
    """One visit, recorded by a cadre: one of the five methods."""

    __tablename__ = "visits"
    method: Mapped[str] = mapped_column(String(16))
    visited_at: Mapped[datetime] = mapped_column(_ts())
    work_group_id: Mapped[int | None] = mapped_column(ForeignKey("work_groups.id"))
    enterprise_id: Mapped[str | None] = mapped_column(String(36), index=True)
    place: Mapped[str | None] = mapped_column(String(16))
    workers_met: Mapped[int] = mapped_column(Integer, default=0)
    workers_by_group: Mapped[dict] = mapped_column(JSON, default=dict)
    materials: Mapped[int] = mapped_column(Integer, default=0)
    consultations: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[str | None] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    # Above a soft plausibility limit and not (yet) accepted by the supervision team: the
    # visit is stored but counts in no statistic (server/plausibility.py).
    held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    district: Mapped[DistrictUnit] = relationship()
    work_group: Mapped[WorkGroup | None] = relationship()
    participants: Mapped[list[User]] = relationship(secondary=visit_participants)
    __table_args__ = (
        Index("ix_visits_sync", "version", "id"),
        # On SQLite the covering ix_visits_day_stats and ix_visits_group_stats below lead
        # with these columns and take their place.
        Index("ix_visits_visited_at", "visited_at").ddl_if(dialect="postgresql"),
        Index("ix_visits_work_group_id", "work_group_id").ddl_if(dialect="postgresql"),
        # SQLite only: covering indexes for the dashboard's and briefings' aggregates
        # (worker/briefing/compute.py). SQLite then reads each aggregate's columns from
        # one index in group order instead of every row of the table, which cuts the
        # city dashboard over 200,000 visits by half. PostgreSQL plans these queries
        # well from its statistics and parallel scans; there they would only slow writes.
        Index(
            "ix_visits_stats",
            "district_id",
            "method",
            "visited_at",
            "canonical_id",
            "deleted",
            "workers_met",
            "enterprise_id",
            *(text(sqlite_focus_count(g)) for g in FOCUS_GROUPS),
            "workers_by_group",
            "held",
        ).ddl_if(dialect="sqlite"),
        Index(
            "ix_visits_enterprise_stats",
            "district_id",
            "enterprise_id",
            "visited_at",
            "canonical_id",
            "deleted",
            "held",
        ).ddl_if(dialect="sqlite"),
        # a problem's date is its visit's: looked up per problem without reading the row
        Index("ix_visits_id_visited_at", "id", "visited_at").ddl_if(dialect="sqlite"),
        # one author's visits of one day (the visits_per_day plausibility check, once
        # per author and day in each push): an index range, not a scan of every visit
        Index("ix_visits_author_day", "created_by_id", "visited_at", "deleted"),
        # a span of days (briefings, the weekly series) and one work group's visits
        Index(
            "ix_visits_day_stats",
            "visited_at",
            "canonical_id",
            "deleted",
            "workers_met",
            "district_id",
            "work_group_id",
            "method",
            "enterprise_id",
            "held",
        ).ddl_if(dialect="sqlite"),
        Index(
            "ix_visits_group_stats",
            "work_group_id",
            "visited_at",
            "district_id",
            "method",
            "canonical_id",
            "deleted",
            "workers_met",
            "enterprise_id",
            "held",
        ).ddl_if(dialect="sqlite"),
    )


class Problem(SyncedMixin, db.Model):
    """A difficulty workers raised in a visit, and where it stands on the handling ladder."""

    __tablename__ = "problems"
    visit_id: Mapped[str] = mapped_column(String(36), index=True)
    category: Mapped[str] = mapped_column(String(20))
    tag: Mapped[str | None] = mapped_column(String(8))
    description: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(12), default="enterprise")
    stage_note: Mapped[str | None] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(_ts())
    # The deadline of the current stage (server/deadlines.py): when the stage's clock
    # started, the local day it is due, who must act, and the last follow-up recorded
    # in this stage (a changed stage_note or resolution).
    stage_started_at: Mapped[datetime | None] = mapped_column(_ts())
    due_date: Mapped[date | None] = mapped_column(Date)
    owner_level: Mapped[str | None] = mapped_column(String(12))
    owner_work_group_id: Mapped[int | None] = mapped_column(ForeignKey("work_groups.id"))
    progress_at: Mapped[datetime | None] = mapped_column(_ts())
    # 查询码 (server/status_codes.py): the keyed hash of the public status code, never
    # the code, and when it was revoked.
    status_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    status_code_revoked_at: Mapped[datetime | None] = mapped_column(_ts())

    history: Mapped[list[ProblemStageChange]] = relationship(
        order_by="ProblemStageChange.id", back_populates="problem"
    )
    __table_args__ = (
        Index("ix_problems_sync", "version", "id"),
        Index("ix_problems_due", "stage", "due_date"),
        # SQLite only, as the visits' statistics indexes above.
        Index(
            "ix_problems_stats",
            "district_id",
            "category",
            "stage",
            "canonical_id",
            "deleted",
            "visit_id",
            "created_at",
            "resolved_at",
            "id",
        ).ddl_if(dialect="sqlite"),
    )


class ProblemStageChange(db.Model):
    """Who moved a problem up (or along) the ladder, when and why."""

    __tablename__ = "problem_stage_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[str] = mapped_column(ForeignKey("problems.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(12))
    to_stage: Mapped[str] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(_ts(), default=utcnow)

    problem: Mapped[Problem] = relationship(back_populates="history")
    user: Mapped[User | None] = relationship()


class HomeVisit(SyncedMixin, db.Model):
    """A home visit to a needy worker with condolence money; personal data kept minimal.

    The ID number is never stored: `id_hash` (keyed HMAC, for matching) and
    `id_last4` (for display) only.
    """

    __tablename__ = "home_visits"
    visit_id: Mapped[str | None] = mapped_column(String(36), index=True)
    visited_at: Mapped[datetime] = mapped_column(_ts())
    worker_name: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(String(20))
    id_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    id_last4: Mapped[str | None] = mapped_column(String(4))
    hardship: Mapped[str | None] = mapped_column(String(200))
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[str | None] = mapped_column(Text)
    # As Visit.held: above a soft limit, out of the statistics until accepted.
    held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    __table_args__ = (Index("ix_home_visits_sync", "version", "id"),)


class Conflict(db.Model):
    """A concurrent edit the server did not apply silently: kept for a person to see."""

    __tablename__ = "conflicts"
    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[str] = mapped_column(String(36), index=True)
    field: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # overwritten | stage | deleted
    server_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    client_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(36))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    mid: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(_ts(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(_ts())
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(Text)


class AuditEntry(db.Model):
    """Every change to a record: who, when, from which device, what changed."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[str] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(12))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(String(12))  # sync | api | worker | cli
    request_id: Mapped[str | None] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(_ts(), default=utcnow)
    __table_args__ = (Index("ix_audit_log_record", "entity", "record_id"),)


class OutboxMessage(db.Model):
    """Work due after a commit (dedup...), dispatched to Celery; survives broker outages."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str | None] = mapped_column(String(20))
    record_id: Mapped[str | None] = mapped_column(String(36))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(_ts(), default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(_ts())
    done_at: Mapped[datetime | None] = mapped_column(_ts())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # After a failed attempt: not taken again before this time (the back-off doubles
    # with each attempt, from OUTBOX_RETRY_SECONDS).
    next_attempt_at: Mapped[datetime | None] = mapped_column(_ts())
    # Set when the row failed OUTBOX_MAX_ATTEMPTS times: the drain skips it until an
    # admin retries it (/api/admin/queue, the ops page).
    dead_at: Mapped[datetime | None] = mapped_column(_ts())
    __table_args__ = (Index("ix_outbox_pending", "done_at", "id"),)


SYNCED_MODELS: dict[str, type[SyncedMixin]] = {
    "enterprise": Enterprise,
    "visit": Visit,
    "problem": Problem,
    "home_visit": HomeVisit,
}
ENTITY_OF: dict[type, str] = {model: name for name, model in SYNCED_MODELS.items()}
# Pull order inside one version: a visit's enterprise before the visit, the visit before
# its problems and home visits.
ENTITY_RANK = {"enterprise": 0, "visit": 1, "problem": 2, "home_visit": 3}
# The other model modules register their tables when this one is imported.
from server import (  # noqa: E402
    models_attachments,  # noqa: F401
    models_briefing,  # noqa: F401
    models_deadlines,  # noqa: F401
    models_dedup,  # noqa: F401
    models_health,  # noqa: F401
    models_nonreporters,  # noqa: F401
    models_supervision,  # noqa: F401
)
