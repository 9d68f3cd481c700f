"""Loading reference data (district units, work groups) from config/ into the database."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import ROOT
from server.models import DistrictUnit, WorkGroup


class ReferenceError_(ValueError):
    """Reference data that cannot be loaded; the message names the file and entry."""


def load_reference(session: Session, config_dir: Path | None = None) -> dict[str, int]:
    """Insert or update district units and work groups; idempotent. Returns counts."""
    config_dir = config_dir or ROOT / "config"
    districts_file = config_dir / "districts.json"
    groups_file = config_dir / "work_groups.json"
    try:
        districts = json.loads(districts_file.read_text(encoding="utf-8"))["districts"]
        groups = json.loads(groups_file.read_text(encoding="utf-8"))["work_groups"]
    except (OSError, ValueError, KeyError) as exc:
        raise ReferenceError_(f"reference data unreadable: {exc}") from None
    existing = {d.code: d for d in session.scalars(select(DistrictUnit))}
    seen = set()
    for i, row in enumerate(districts):
        for key in ("code", "name", "short", "name_en", "kind"):
            if not row.get(key):
                raise ReferenceError_(f"{districts_file.name}: districts[{i}].{key} is missing")
        if row["code"] in seen:
            raise ReferenceError_(
                f"{districts_file.name}: districts[{i}].code {row['code']} appears twice"
            )
        seen.add(row["code"])
        unit = existing.get(row["code"]) or DistrictUnit(code=row["code"])
        unit.name, unit.short, unit.name_en, unit.kind = (
            row["name"],
            row["short"],
            row["name_en"],
            row["kind"],
        )
        unit.active = True
        session.add(unit)
    for code, unit in existing.items():
        if code not in seen:
            unit.active = False  # boundaries change; records keep their old unit
    session.flush()
    by_code = {d.code: d for d in session.scalars(select(DistrictUnit))}
    existing_groups = {w.code: w for w in session.scalars(select(WorkGroup))}
    for i, row in enumerate(groups):
        unknown = [c for c in row.get("districts", []) if c not in by_code]
        if unknown:
            raise ReferenceError_(
                f"{groups_file.name}: work_groups[{i}].districts: unknown district {unknown[0]}"
            )
        group = existing_groups.get(row["code"]) or WorkGroup(code=row["code"])
        group.name = row["name"]
        group.districts = [by_code[c] for c in row["districts"]]
        session.add(group)
    session.flush()
    return {"districts": len(districts), "work_groups": len(groups)}
