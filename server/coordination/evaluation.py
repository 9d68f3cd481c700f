"""Evaluation and ranking of district units (考核评比) by the weighted standard in
config/evaluation.json; the breakdown behind each score is kept with it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from config.settings import ROOT
from server.coordination.dashboard import district_figures
from server.coordination.filters import Filters, visit_conditions
from server.coordination.problems import days_between
from server.coordination.spotcheck import district_stats
from server.models import Visit
from worker.briefing.compute import vocabulary


def load_standard(path: Any = None) -> dict[str, Any]:
    """The evaluation standard; weights are normalised so they need not sum to 100."""
    raw = json.loads((path or ROOT / "config" / "evaluation.json").read_text(encoding="utf-8"))
    total = sum(c["weight"] for c in raw["criteria"])
    if total <= 0:
        raise ValueError("config/evaluation.json: the weights must sum to more than 0")
    for c in raw["criteria"]:
        c["share"] = c["weight"] / total
    return raw


@dataclass
class Evaluation:
    """One district's score (0-100), its rank and the criterion-by-criterion breakdown."""

    district_id: int
    code: str
    name: str
    score: float = 0.0
    rank: int = 0
    breakdown: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "district_id": self.district_id,
            "code": self.code,
            "name": self.name,
            "score": self.score,
            "rank": self.rank,
            "breakdown": self.breakdown,
        }


def _timely_counts(session: Session, f: Filters, record_days: int) -> dict[int, tuple[int, int]]:
    """Per district: (visits, visits recorded within `record_days` of taking place)."""
    lag = days_between(session, Visit.visited_at, Visit.created_at)
    rows = session.execute(
        select(Visit.district_id, func.count(), func.count(case((lag <= record_days, 1))))
        .where(*visit_conditions(f))
        .group_by(Visit.district_id)
    )
    return {d: (n, ok) for d, n, ok in rows}


def evaluate(
    session: Session, f: Filters, standard: dict[str, Any] | None = None
) -> list[Evaluation]:
    """Every in-scope district's evaluation, best first; ties share a rank (1, 2, 2, 4)."""
    standard = standard or load_standard()
    targets = vocabulary()["targets"]
    figs = district_figures(session, f)
    checks = district_stats(session, f.district_ids, f)
    timely = _timely_counts(session, f, standard["record_days"])
    credit = standard["doubtful_credit"]
    out = []
    for fig in figs.values():
        values: dict[str, tuple[float | None, str]] = {}
        progress = fig.progress(targets)
        values["target_completion"] = (
            sum(progress.values()) / len(progress),
            ", ".join(f"{k} {v:.0%}" for k, v in progress.items()),
        )
        resolved = fig.problems_by_stage.get("resolved", 0)
        values["problems_resolved"] = (
            resolved / fig.problems_raised if fig.problems_raised else None,
            f"{resolved}/{fig.problems_raised}",
        )
        st = checks.get(fig.district_id)
        found = st["findings"] if st else {}
        n_checked = sum(found.values())
        values["spot_checks"] = (
            (found.get("confirmed", 0) + credit * found.get("doubtful", 0)) / n_checked
            if n_checked
            else None,
            f"属实{found.get('confirmed', 0)} 存疑{found.get('doubtful', 0)} "
            f"不属实{found.get('not_confirmed', 0)}",
        )
        n, ok = timely.get(fig.district_id, (0, 0))
        values["timeliness"] = (ok / n if n else None, f"{ok}/{n}")
        applicable = sum(
            c["share"] for c in standard["criteria"] if values[c["code"]][0] is not None
        )
        ev = Evaluation(fig.district_id, fig.code, fig.name)
        total = 0.0
        for c in standard["criteria"]:
            value, detail = values[c["code"]]
            weight = c["share"] / applicable if value is not None and applicable else 0.0
            points = 100 * weight * (value or 0.0)
            total += points
            ev.breakdown.append(
                {
                    "code": c["code"],
                    "name": c["name"],
                    "name_en": c["name_en"],
                    "weight": c["weight"],
                    "effective_weight": round(weight, 4),
                    "value": None if value is None else round(value, 4),
                    "points": round(points, 2),
                    "detail": detail,
                }
            )
        ev.score = round(total, 2)
        out.append(ev)
    out.sort(key=lambda e: (-e.score, e.code))
    previous: tuple[float, int] | None = None
    for i, ev in enumerate(out, start=1):
        ev.rank = previous[1] if previous and previous[0] == ev.score else i
        previous = (ev.score, ev.rank)
    return out


def commendations(evaluations: list[Evaluation], standard: dict[str, Any]) -> list[Evaluation]:
    """The year-end commendation list: the top N by rank that reach the minimum score."""
    rule = standard["commendation"]
    return [e for e in evaluations if e.rank <= rule["top_n"] and e.score >= rule["min_score"]]
