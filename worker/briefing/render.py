"""Turning briefing figures into what people read: the email's HTML and plain text.

The email HTML is built for phone mail apps: one column, tables and inline styles (many
clients drop <style>), bars drawn with CSS widths, no script and no remote images.
Nothing here shows personal data of needy workers — only counts and sums.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from worker.briefing.compute import CityBriefing, DistrictBriefing, labels

RED_LIST_MAX = 10  # overdue problems listed in a district's mail; the page has them all

TEMPLATES = Path(__file__).resolve().parent / "templates"


def mask_name(name: str | None) -> str:
    """A needy worker's name as it may be shown: the surname and stars (王小明 → 王**)."""
    if not name:
        return ""
    name = name.strip()
    return name[0] + "*" * max(1, len(name) - 1)


def yuan(cents: int) -> str:
    """Cents as yuan with two decimals and thousands separators: 80000 → 800.00."""
    return f"{cents / 100:,.2f}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"


def signed(value: int | float | None) -> str:
    """A change with its sign: +3, -2, 0."""
    if value is None:
        return "—"
    if isinstance(value, float):
        value = round(value * 100)
        return f"{value:+d}个百分点" if value else "持平"
    return f"{value:+d}" if value else "持平"


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(yuan=yuan, pct=pct, signed=signed)
    return env


def bar_rows(counts: dict[str, int], names: dict[str, str]) -> list[dict[str, Any]]:
    """Rows for a CSS bar chart: label, count, width in percent of the largest."""
    top = max(counts.values(), default=0) or 1
    return [
        {"label": names.get(code, code), "count": n, "width": round(100 * n / top)}
        for code, n in counts.items()
    ]


def briefing_context(
    b: DistrictBriefing, web_url: str, unsubscribe_url: str | None = None
) -> dict[str, Any]:
    """What the district templates (email and web) need, with labels resolved."""
    cur, t = b.current, b.targets
    progress = cur.progress(t)
    stages = labels("stages")
    targets = [
        {
            "label": "走访企业数",
            "value": cur.enterprises,
            "target": f"≥{t['enterprises']}家",
            "done": progress["enterprises"],
            "delta": b.delta("enterprises"),
            "unit": "家",
        },
        {
            "label": "企业类型数",
            "value": cur.enterprise_types,
            "target": f"≥{t['enterprise_types']}类",
            "done": progress["enterprise_types"],
            "delta": b.delta("enterprise_types"),
            "unit": "类",
        },
        {
            "label": "面对面接触职工",
            "value": cur.workers_met,
            "target": f"≥{t['workers_met']}人",
            "done": progress["workers_met"],
            "delta": b.delta("workers_met"),
            "unit": "人",
        },
        {
            "label": "干部参与率",
            "value": pct(cur.participation),
            "target": f"{round(t['cadre_participation'] * 100)}%",
            "done": progress["cadre_participation"],
            "delta": b.delta("participation"),
            "unit": "",
            "note": f"{cur.cadres_active}/{cur.cadres_total}人",
        },
    ]
    for row in targets:
        row["width"] = round(row["done"] * 100)
        row["met"] = row["done"] >= 1
    oldest = None
    if cur.oldest_open is not None:
        o = cur.oldest_open
        oldest = {
            "category": labels("categories").get(o.category, o.category),
            "stage": stages.get(o.stage, o.stage),
            "days": o.days_open,
            "opened": o.opened_at.astimezone(ZoneInfo(b.period.tz)).date().isoformat(),
        }
    return {
        "b": b,
        "cur": cur,
        "prev": b.previous,
        "period": b.period,
        "targets": targets,
        "methods": bar_rows(cur.visits_by_method, labels("methods")),
        "focus": bar_rows(cur.focus_groups, labels("focus_groups")),
        "categories": bar_rows(
            {k: v for k, v in cur.problems_by_category.items() if v}, labels("categories")
        ),
        "stages": bar_rows(cur.problems_by_stage, stages),
        "types": bar_rows(cur.enterprises_by_type, labels("enterprise_type_tags")),
        "oldest": oldest,
        "dl": {c: (cur.deadline_colours or {}).get(c, 0) for c in ("red", "yellow", "blue")},
        "red_list": [
            {
                **r,
                "category": labels("categories").get(r["category"], r["category"]),
                "stage": stages.get(r["stage"], r["stage"]),
            }
            for r in cur.red_list[:RED_LIST_MAX]
        ],
        "red_more": max(0, len(cur.red_list) - RED_LIST_MAX),
        "tags": bar_rows(cur.problems_by_tag or {}, labels("problem_tags")),
        "median_days": cur.median_days_to_resolve,
        "web_url": web_url,
        "unsubscribe_url": unsubscribe_url,
        "rank_delta": (b.previous.rank - cur.rank) if b.previous.rank else None,
        "generated_local": _local(b.generated_at, b.period.tz),
        "fresh": freshness_context(cur.freshness, b.period.tz),
    }


def freshness_context(fresh: dict[str, Any] | None, tz: str) -> dict[str, Any] | None:
    """The "as of" line of a district's figures: when its phones last synced, how many
    have entries waiting, how many are silent (issue 17, item 3)."""
    if fresh is None:
        return None
    return {
        **fresh,
        "as_of_local": _local(fresh["as_of"], tz) if fresh.get("as_of") else None,
    }


def _local(at: datetime, tz: str) -> str:
    """A timestamp as Beijing time for readers (stored in UTC)."""
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def render_district_email(
    b: DistrictBriefing, web_url: str, unsubscribe_url: str | None = None
) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of a district's briefing email."""
    ctx = briefing_context(b, web_url, unsubscribe_url)
    subject = f"【走访简报】{b.current.name}{b.period.kind_label}：{b.period.label}"
    return (
        subject,
        _env().get_template("district.txt").render(**ctx),
        _env().get_template("district.html").render(**ctx),
    )


def city_context(
    c: CityBriefing, web_url: str, unsubscribe_url: str | None = None
) -> dict[str, Any]:
    top = max((r.workers_met for r in c.rows), default=0) or 1
    rows = [
        {
            "f": r,
            "prev_rank": c.previous[r.district_id].rank,
            "width": round(100 * r.workers_met / top),
            "red": (r.deadline_colours or {}).get("red", 0),
            "fresh": freshness_context(r.freshness, c.period.tz),
        }
        for r in c.rows
    ]
    return {
        "c": c,
        "period": c.period,
        "rows": rows,
        "web_url": web_url,
        "unsubscribe_url": unsubscribe_url,
        "stale": [r for r in rows if r["fresh"] and r["fresh"]["stale"]],
        "silent_days": next((r["fresh"]["silent_days"] for r in rows if r["fresh"]), None),
        "totals_red": sum((r.deadline_colours or {}).get("red", 0) for r in c.rows),
        "by_resolution": [
            {"rank": rank, "f": f, "rate": pct(f.resolution_rate)} for rank, f in c.by_resolution()
        ],
        "totals": {
            name: c.total(name)
            for name in (
                "visits",
                "workers_met",
                "enterprises",
                "problems_raised",
                "problems_resolved",
                "problems_open",
                "home_visits",
                "condolence_cents",
            )
        },
    }


def render_city_email(
    c: CityBriefing, web_url: str, unsubscribe_url: str | None = None
) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the city-wide briefing email."""
    ctx = city_context(c, web_url, unsubscribe_url)
    subject = f"【走访简报】全市各单位{c.period.kind_label}：{c.period.label}"
    return (
        subject,
        _env().get_template("city.txt").render(**ctx),
        _env().get_template("city.html").render(**ctx),
    )
