"""What the coordinators' pages show of a visit's photos and signatures: thumbnails
with capture time, place, distance from the visit and the phone's clock error, in
Chinese or English; the flags (far, late) come from server/attachments.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from server.attachments import Checks, for_visits
from server.models import User, Visit
from server.scope import scope_of

KINDS = {"photo": ("照片", "Photo"), "signature": ("签名", "Signature")}
RECORDS = {
    "visit": ("走访", "visit"),
    "problem": ("问题", "problem"),
    "home_visit": ("入户", "home visit"),
}


def _distance(metres: int) -> str:
    return f"{metres} m" if metres < 1000 else f"{metres / 1000:.1f} km"


def _span(seconds: float, en: bool) -> str:
    """A duration in the largest unit that keeps it readable: 2 分钟, 3 小时, 2 天."""
    s = abs(seconds)
    if s < 90:
        return f"{round(s)} s" if en else f"{round(s)} 秒"
    if s < 90 * 60:
        return f"{round(s / 60)} min" if en else f"{round(s / 60)} 分钟"
    if s < 36 * 3600:
        return f"{s / 3600:.1f} h" if en else f"{s / 3600:.1f} 小时"
    return f"{s / 86400:.1f} days" if en else f"{s / 86400:.1f} 天"


def view(item: dict[str, Any], lang: str, tz: ZoneInfo) -> dict[str, Any]:
    """One attachment's display texts added to its API description."""
    en = lang == "en"
    captured = datetime.fromisoformat(item["captured_at"]).astimezone(tz)
    out = dict(item)
    out["kind_label"] = KINDS.get(item["kind"], (item["kind"],) * 2)[en]
    out["record_label"] = RECORDS.get(item["record_type"], (item["record_type"],) * 2)[en]
    out["captured_local"] = captured.strftime("%Y-%m-%d %H:%M")
    if item["lat"] is not None:
        place = f"{item['lat']:.5f}, {item['lng']:.5f}"
        if item["accuracy"] is not None:
            place += f" ±{round(item['accuracy'])} m"
        out["place"] = place
    else:
        out["place"] = "no position" if en else "无位置"
    if item["distance_from_visit_m"] is not None:
        far = _distance(item["distance_from_visit_m"])
        out["distance"] = f"{far} from the visit" if en else f"距走访地点 {far}"
    else:
        out["distance"] = None
    clock = item["clock_difference_seconds"]
    if abs(clock) < 60:
        out["clock"] = "phone clock right" if en else "手机时钟准确"
    elif clock > 0:
        out["clock"] = (
            f"phone clock {_span(clock, en)} fast" if en else f"手机时钟快 {_span(clock, en)}"
        )
    else:
        out["clock"] = (
            f"phone clock {_span(clock, en)} slow" if en else f"手机时钟慢 {_span(clock, en)}"
        )
    delay = item["seconds_from_visit"]
    out["delay"] = None
    if delay is not None and abs(delay) >= 60:
        span = _span(delay, en)
        if en:
            out["delay"] = f"taken {span} {'after' if delay > 0 else 'before'} the visit"
        else:
            out["delay"] = f"拍摄于走访{'后' if delay > 0 else '前'} {span}"
    reasons = []
    if item["far"]:
        reasons.append("far from the visit" if en else "距走访地点过远")
    if item["late"]:
        reasons.append("far from the visit's time" if en else "与走访时间相差过久")
    out["flags"] = reasons
    return out


def gallery(
    session: Session, user: User, visits: list[Visit], lang: str, settings: Any
) -> dict[str, list[dict[str, Any]]]:
    """Per visit id, the attachments `user` may see, ready for the template."""
    tz = ZoneInfo(settings.TIMEZONE)
    items = for_visits(session, user, scope_of(user), visits, Checks.from_settings(settings))
    return {vid: [view(a, lang, tz) for a in rows] for vid, rows in items.items()}
