"""Sync health: what phones report about themselves, and who has not synced.

With every push (the body's ``device_state``) and pull (the ``X-Device-State`` header,
the same object as compact JSON) a phone says how many entries wait on it, since when,
its last sync error, its app version and its storage. The server keeps the latest per
device (``DeviceHealth``), never the content of an entry, and stamps the time of each
successful push and pull.

The same figures feed the sync-health page and API, the dashboard's "as of" per
district and the briefings (``district_freshness``): one module, imported by its
public names.

A report that does not validate is not stored, and the sync itself goes on: telemetry
never blocks a phone's queue. The answer says what was wrong (``device_state_error``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.models import Device, DistrictUnit, User, WorkGroup
from server.models_health import DeviceHealth

HEADER = "X-Device-State"
HEADER_MAX = 1024
_CODE = re.compile(r"^[a-z0-9_]{1,40}$")
_VERSION = re.compile(r"^[0-9A-Za-z.+_-]{1,40}$")


class DeviceStateSchema(Schema):
    """What a phone reports about itself; every field optional."""

    class Meta:
        unknown = "exclude"  # a newer app may report more; this server keeps what it knows

    pending = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000_000))
    oldest_pending_at = fields.AwareDateTime(allow_none=True)
    last_error = fields.String(
        allow_none=True, validate=validate.Regexp(_CODE, error="a lower-case error code")
    )
    app_version = fields.String(validate=validate.Regexp(_VERSION, error="a version string"))
    storage_used = fields.Integer(strict=True, validate=validate.Range(min=0, max=2**53))
    storage_quota = fields.Integer(strict=True, validate=validate.Range(min=0, max=2**53))
    persisted = fields.Boolean(allow_none=True)


_STATE = DeviceStateSchema()


def parse_state(value: Any) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    """(the validated state, None) or (None, {"field", "reason"}); None for no state."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        return None, {"field": "device_state", "reason": "expected an object"}
    try:
        state = _STATE.load(value)
    except ValidationError as err:
        name, messages = next(iter(err.messages.items()))
        reason = messages[0] if isinstance(messages, list) else str(messages)
        return None, {"field": f"device_state.{name}", "reason": str(reason)}
    when = state.get("oldest_pending_at")
    if when is not None and not (datetime(2000, 1, 1, tzinfo=UTC) <= when):
        return None, {"field": "device_state.oldest_pending_at", "reason": "implausible date"}
    return state, None


def parse_header(raw: str | None) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    """The X-Device-State header of a pull, parsed like a push's device_state."""
    if not raw:
        return None, None
    if len(raw) > HEADER_MAX:
        return None, {"field": HEADER, "reason": f"longer than {HEADER_MAX} characters"}
    try:
        value = json.loads(raw)
    except ValueError:
        return None, {"field": HEADER, "reason": "not JSON"}
    return parse_state(value)


def record(
    session: Session,
    device_id: str,
    state: dict[str, Any] | None,
    event: str,
    now: datetime | None = None,
) -> None:
    """Keep `state` (if any) as the device's latest and stamp a successful `event`
    ("push" or "pull"). One upsert: two requests of one device at once cannot collide.
    The caller commits; a phone's clock is never trusted for the stamps, only for the
    age of its oldest entry (and never later than now)."""
    now = now or datetime.now(UTC)
    existing = session.get(DeviceHealth, device_id)
    if existing is not None and _unchanged(existing, state, event, now):
        return  # no write: a replayed push or a later pull page stays read-only
    values: dict[str, Any] = {}
    if event == "push":
        values["last_push_at"] = values["last_sync_at"] = now
    elif event == "pull":
        values["last_pull_at"] = values["last_sync_at"] = now
    if state is not None:
        values["reported_at"] = now
        for name in ("pending", "app_version", "storage_used", "storage_quota", "persisted"):
            if name in state:
                values[name] = state[name]
        if "oldest_pending_at" in state:
            oldest = state["oldest_pending_at"]
            values["oldest_pending_at"] = min(oldest, now) if oldest is not None else None
        if "last_error" in state:
            error = state["last_error"] or None
            values["last_error"] = error
            # since when it fails: kept while the same error repeats
            values["last_error_at"] = (
                case((DeviceHealth.last_error == error, DeviceHealth.last_error_at), else_=now)
                if error
                else None
            )
    if not values:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    first = {k: (now if k == "last_error_at" and v is not None else v) for k, v in values.items()}
    statement = (
        insert(DeviceHealth)
        .values(device_id=device_id, **first)
        .on_conflict_do_update(index_elements=["device_id"], set_=values)
    )
    session.execute(statement)


STAMP_EVERY = timedelta(seconds=60)
_REPORTED = ("pending", "app_version", "storage_used", "storage_quota", "persisted", "last_error")


def _unchanged(row: DeviceHealth, state: dict[str, Any] | None, event: str, now: datetime) -> bool:
    """True when writing would only move a stamp by less than STAMP_EVERY: the same
    report again (or none) from a device that synced just now."""
    stamp = _aware(row.last_push_at if event == "push" else row.last_pull_at)
    if stamp is None or now - stamp >= STAMP_EVERY:
        return False
    if state is None:
        return True
    for name in _REPORTED:
        if name in state and (state[name] or None) != (getattr(row, name) or None):
            return False
    if "oldest_pending_at" in state:
        oldest = state["oldest_pending_at"]
        oldest = min(oldest, now) if oldest is not None else None
        if oldest != _aware(row.oldest_pending_at):
            return False
    return True


# --- reading: the health page, the API, the dashboard and the briefings -------------------


@dataclass
class DeviceRow:
    """One device as the health page shows it."""

    device_id: str
    device_name: str
    user_id: int
    username: str
    display_name: str
    role: str
    district_id: int | None
    district_code: str | None
    district_name: str | None
    work_group_code: str | None
    last_sync_at: datetime | None
    pending: int | None
    oldest_pending_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    app_version: str | None
    storage_used: int | None
    storage_quota: int | None
    persisted: bool | None
    revoked: bool
    status: str  # ok, waiting, failing, silent, never, revoked

    def as_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
        return out


STATUSES = ("failing", "silent", "never", "waiting", "ok", "revoked")


def _status(
    revoked: bool,
    last_sync: datetime | None,
    pending: int | None,
    error: str | None,
    silent_before: datetime,
) -> str:
    if revoked:
        return "revoked"
    if last_sync is None:
        return "never"
    if error:
        return "failing"
    if last_sync < silent_before:
        return "silent"
    if pending:
        return "waiting"
    return "ok"


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite hands back naive UTC
        return value.replace(tzinfo=UTC)
    return value


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((x for x in (a, b) if x is not None), default=None)


def device_rows(
    session: Session,
    district_ids: frozenset[int] | None,
    *,
    silent_days: int,
    now: datetime | None = None,
    work_group_id: int | None = None,
) -> list[DeviceRow]:
    """Every device of users in `district_ids` (None: every district), with its state."""
    now = now or datetime.now(UTC)
    silent_before = now - timedelta(days=silent_days)
    h = DeviceHealth
    query = (
        select(
            Device.id, Device.name, Device.revoked_at, Device.token_hash,
            User.id, User.username, User.display_name, User.role, User.district_id,
            DistrictUnit.code, DistrictUnit.name, WorkGroup.code,
            h.last_sync_at, h.pending, h.oldest_pending_at, h.last_error, h.last_error_at,
            h.app_version, h.storage_used, h.storage_quota, h.persisted,
        )
        .join(User, User.id == Device.user_id)
        .outerjoin(h, h.device_id == Device.id)
        .outerjoin(DistrictUnit, DistrictUnit.id == User.district_id)
        .outerjoin(WorkGroup, WorkGroup.id == User.work_group_id)
        .where(User.active.is_(True))
        .order_by(DistrictUnit.code, User.username, Device.created_at)
    )  # fmt: skip
    if district_ids is not None:
        query = query.where(User.district_id.in_(district_ids))
    if work_group_id is not None:
        query = query.where(User.work_group_id == work_group_id)
    rows = []
    # Plain columns, not ORM objects: 5,000 devices are read in one pass.
    for (
        device_id, device_name, revoked_at, token_hash,
        user_id, username, display_name, role, district_id,
        district_code, district_name, group_code,
        last_sync, pending, oldest, error, error_at, version, used, quota, persisted,
    ) in session.execute(query):  # fmt: skip
        last_sync, oldest, error_at = (_aware(v) for v in (last_sync, oldest, error_at))
        revoked = revoked_at is not None or token_hash is None
        rows.append(
            DeviceRow(
                device_id=device_id,
                device_name=device_name or "",
                user_id=user_id,
                username=username,
                display_name=display_name,
                role=str(role),
                district_id=district_id,
                district_code=district_code,
                district_name=district_name,
                work_group_code=group_code,
                last_sync_at=last_sync,
                pending=pending,
                oldest_pending_at=oldest,
                last_error=error,
                last_error_at=error_at,
                app_version=version,
                storage_used=used,
                storage_quota=quota,
                persisted=persisted,
                revoked=revoked,
                status=_status(revoked, last_sync, pending, error, silent_before),
            )
        )
    return rows


def summarise(rows: list[DeviceRow], key: str) -> list[dict[str, Any]]:
    """Per district ("district") or work group ("work_group"): devices by status,
    entries waiting, the latest sync, and the app versions in use."""
    groups: dict[Any, dict[str, Any]] = {}
    for r in rows:
        if key == "district":
            ident, label = r.district_code, r.district_name
        else:
            ident, label = r.work_group_code, r.work_group_code
        g = groups.setdefault(
            ident,
            {
                "code": ident,
                "name": label,
                "devices": 0,
                "pending": 0,
                "last_sync_at": None,
                "versions": {},
                **{s: 0 for s in STATUSES},
            },
        )
        g["devices"] += 1
        g[r.status] += 1
        g["pending"] += r.pending or 0
        if r.status != "revoked":
            g["last_sync_at"] = _latest(g["last_sync_at"], r.last_sync_at)
        if r.app_version:
            g["versions"][r.app_version] = g["versions"].get(r.app_version, 0) + 1
    return sorted(groups.values(), key=lambda g: (g["code"] is None, g["code"] or ""))


def district_freshness(
    session: Session, *, silent_days: int, now: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """Per district id: as of when its figures are (the latest successful sync of its
    active phones), how many phones have entries waiting, how many are silent past
    `silent_days`, and whether the district is marked stale (any silent
    phone, or no phone that ever synced)."""
    now = now or datetime.now(UTC)
    silent_before = now - timedelta(days=silent_days)
    live = and_(Device.revoked_at.is_(None), Device.token_hash.is_not(None))
    synced = DeviceHealth.last_sync_at
    query = (
        select(
            User.district_id,
            func.count(Device.id),
            func.max(synced),
            func.sum(func.coalesce(DeviceHealth.pending, 0)),
            func.count(DeviceHealth.pending).filter(DeviceHealth.pending > 0),
            func.count(Device.id).filter(or_(synced.is_(None), synced < silent_before)),
        )
        .select_from(Device)
        .join(User, User.id == Device.user_id)
        .outerjoin(DeviceHealth, DeviceHealth.device_id == Device.id)
        .where(live, User.active.is_(True), User.district_id.is_not(None))
        .group_by(User.district_id)
    )
    out: dict[int, dict[str, Any]] = {}
    for district_id, phones, latest, pending, waiting, silent in session.execute(query):
        if latest is not None and latest.tzinfo is None:
            latest = latest.replace(tzinfo=UTC)
        out[district_id] = {
            "phones": phones,
            "as_of": latest,
            "entries_waiting": int(pending or 0),
            "phones_waiting": waiting,
            "phones_silent": silent,
            "stale": bool(silent) or latest is None,
        }
    return out


__all__ = [
    "HEADER",
    "STATUSES",
    "DeviceRow",
    "DeviceStateSchema",
    "device_rows",
    "district_freshness",
    "parse_header",
    "parse_state",
    "record",
    "summarise",
]
