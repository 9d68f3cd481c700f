"""Needy workers' personal data (PIPL minimisation): one list of the personal fields of a
home visit, how each is shown masked, who sees it unmasked, and the retention rule.
docs/privacy.md is the table of who sees what.

- The audit trail and the conflict log never store these fields in clear (sync/records.py
  masks them when it writes), and what older rows hold is masked again when it is read
  (history API, conflicts API, the visit page).
- Phones pull a home visit's details only where their user works on it: field cadres
  and group leaders in their district and work group's districts, a district head in
  their district. City staff (coordinators, supervisors, admins) pull a masked copy:
  the surname, the phone's first three and last four digits, no hardship, no notes, no
  ID digits; the amounts and dates (what the statistics need) stay.
- A deleted home visit keeps its personal fields HOME_VISIT_RETENTION_DAYS days (an undo
  window), then erase_deleted_home_visits() empties them; the row, its amount, date and
  district stay, so the aggregates do not change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.models import HomeVisit, Role, User

# The personal fields of a home visit, as the phone sends them (id_number) and as the
# server keeps them (id_hash, id_last4).
PERSONAL_FIELDS = ("worker_name", "phone", "id_number", "id_hash", "id_last4", "hardship", "notes")
CITY_ROLES = frozenset({Role.ADMIN.value, Role.COORDINATOR.value, Role.SUPERVISOR.value})
HIDDEN = "***"


def mask_name(name: str | None) -> str:
    """王小明 → 王**: the surname and stars."""
    if not name:
        return ""
    name = str(name).strip()
    return name[0] + "*" * max(1, len(name) - 1) if name else ""


def mask_phone(phone: str | None) -> str:
    """Enough to tell two numbers apart, not enough to call: 138****5678."""
    if not phone:
        return ""
    digits = str(phone).removeprefix("+86")
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "****"


def mask_field(field: str, value: Any) -> Any:
    """A personal field's value as it may be shown outside the worker's own team."""
    if value is None or value == "" or field not in PERSONAL_FIELDS:
        return value
    if field == "worker_name" and isinstance(value, str):
        return mask_name(value) if value != HIDDEN else value
    if field == "phone" and isinstance(value, str):
        return mask_phone(value) if value != HIDDEN else value
    return HIDDEN


def mask_changes(entity: str, changes: Any) -> Any:
    """An audit entry's `changes` ({field: [old, new]} or a marker) with personal fields
    of a home visit masked."""
    if entity != "home_visit" or not isinstance(changes, dict):
        return changes
    out = {}
    for field, change in changes.items():
        if field not in PERSONAL_FIELDS:
            out[field] = change
        elif isinstance(change, list):
            out[field] = [mask_field(field, v) for v in change]
        else:
            out[field] = mask_field(field, change) if change != "changed" else change
    return out


def mask_conflict_value(entity: str, field: str, value: Any) -> Any:
    """A conflict's server or client value with a home visit's personal data masked (a
    lost edit's whole field dict included)."""
    if entity != "home_visit":
        return value
    if field == "*" and isinstance(value, dict):
        return {k: mask_field(k, v) for k, v in value.items()}
    if field == "stage":
        return value
    return mask_field(field, value)


def sees_home_visit_details(user: User) -> bool:
    """True when the user's phone pulls needy workers' details unmasked (in scope)."""
    return user.role not in CITY_ROLES


def masked_home_visit(data: dict[str, Any]) -> dict[str, Any]:
    """A serialised home visit for city staff: aggregates kept, identity masked."""
    out = dict(data)
    out["worker_name"] = mask_name(out.get("worker_name"))
    out["phone"] = mask_phone(out.get("phone")) or None
    out["id_last4"] = None
    out["hardship"] = None
    out["notes"] = None
    out["masked"] = True
    return out


def erase_deleted_home_visits(session: Session, days: int, now: datetime | None = None) -> int:
    """Empty the personal fields of home visits deleted more than `days` days ago; the
    number of records erased. Amount, date, district and the row stay (aggregates)."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=days)
    ids = session.scalars(
        select(HomeVisit.id).where(
            HomeVisit.deleted.is_(True),
            HomeVisit.updated_at < cutoff,
            (HomeVisit.worker_name != "")
            | HomeVisit.phone.is_not(None)
            | HomeVisit.id_hash.is_not(None)
            | HomeVisit.id_last4.is_not(None)
            | HomeVisit.hardship.is_not(None)
            | HomeVisit.notes.is_not(None),
        )
    ).all()
    if not ids:
        return 0
    for start in range(0, len(ids), 500):
        session.execute(
            update(HomeVisit)
            .where(HomeVisit.id.in_(ids[start : start + 500]))
            .values(
                worker_name="", phone=None, id_hash=None, id_last4=None, hardship=None, notes=None
            )
            .execution_options(synchronize_session=False)
        )
    return len(ids)
