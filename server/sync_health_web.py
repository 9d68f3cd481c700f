"""Sync health (同步状态): who has not synced, what waits on which phone, what fails.

For coordinators, supervisors and admins (every district), district heads (their
district) and group leaders (their work group). The same rows as JSON
(``GET /api/sync-health``), as a page (``/sync-health``) with filters and sorting, and as
an XLSX export; an admin can revoke a lost phone from the page. The figures come from
sync/health.py, which the dashboard's "as of" reuses.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    send_file,
    url_for,
)
from sqlalchemy import select

from server.auth import roles_required
from server.extensions import db
from server.models import Device, DistrictUnit, Role, User, WorkGroup
from server.params import ParamError, choice_arg, int_arg, text_arg
from server.web import current_web_user, web_login_required
from sync.health import STATUSES, DeviceRow, device_rows, summarise

bp = Blueprint("sync_health", __name__)

VIEW_ROLES = (
    Role.ADMIN.value,
    Role.COORDINATOR.value,
    Role.SUPERVISOR.value,
    Role.DISTRICT_HEAD.value,
    Role.GROUP_LEADER.value,
)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
# Sort keys: the least recently synced (never first), the most waiting, the oldest entry.
SORTS = {
    "district": lambda r: (r.district_code or "", r.username),
    "last_sync": lambda r: (r.last_sync_at is not None, r.last_sync_at or _EARLIEST),
    "pending": lambda r: -(r.pending or 0),
    "oldest": lambda r: (r.oldest_pending_at is None, r.oldest_pending_at or _LATEST),
    "user": lambda r: r.username,
    "version": lambda r: r.app_version or "",
}
STATUS_LABELS = {
    "failing": "同步出错",
    "silent": "长时间未同步",
    "never": "从未同步",
    "waiting": "有待发送",
    "ok": "正常",
    "revoked": "已停用",
}


def register(app: Flask) -> None:
    app.register_blueprint(bp)


def _scope(user: User) -> tuple[frozenset[int] | None, int | None]:
    """(districts, work group) the user sees on this page."""
    if user.role in (Role.ADMIN, Role.COORDINATOR, Role.SUPERVISOR):
        return None, None
    if user.role == Role.GROUP_LEADER:
        if user.work_group_id is None:
            return frozenset(), None
        return None, user.work_group_id
    return frozenset({user.district_id} if user.district_id else ()), None


PER_PAGE = 200  # the page: a screenful to act on, the rest a click away
PER_PAGE_MAX = 5000


def health_view(user: User, per_page_default: int = PER_PAGE) -> dict[str, Any]:
    """Rows and summaries for `user`, filtered and sorted by the query parameters."""
    districts, group = _scope(user)
    district_code = text_arg("district", max_len=12)
    if district_code:
        unit = db.session.scalar(select(DistrictUnit).where(DistrictUnit.code == district_code))
        if unit is None:
            raise ParamError("district", f"no district {district_code!r}")
        if districts is not None and unit.id not in districts:
            raise ParamError("district", "outside your scope")
        districts = frozenset({unit.id})
    group_code = text_arg("work_group", max_len=12)
    if group_code:
        wg = db.session.scalar(select(WorkGroup).where(WorkGroup.code == group_code))
        if wg is None:
            raise ParamError("work_group", f"no work group {group_code!r}")
        if group is not None and wg.id != group:
            raise ParamError("work_group", "outside your scope")
        group = wg.id
    status = choice_arg("status", STATUSES)
    sort = choice_arg("sort", SORTS, "district")
    page = int_arg("page", 1, 1, 100_000)
    per_page = int_arg("per_page", per_page_default, 1, PER_PAGE_MAX)
    settings = current_app.config["FV"]
    rows = device_rows(
        db.session, districts, silent_days=settings.SYNC_SILENT_DAYS, work_group_id=group
    )
    summary = {s: sum(1 for r in rows if r.status == s) for s in STATUSES}
    by_district = summarise(rows, "district")
    by_group = summarise(rows, "work_group")
    shown = [r for r in rows if status is None or r.status == status]
    shown.sort(key=SORTS[sort])
    return {
        "rows": shown[(page - 1) * per_page : page * per_page],
        "matching": len(shown),
        "page": page,
        "pages": max(1, -(-len(shown) // per_page)),
        "per_page": per_page,
        "summary": summary,
        "districts": by_district,
        "work_groups": by_group,
        "filters": {"district": district_code, "work_group": group_code, "status": status,
                    "sort": sort},
        "silent_days": settings.SYNC_SILENT_DAYS,
    }  # fmt: skip


def _iso(summary: dict[str, Any]) -> dict[str, Any]:
    at = summary["last_sync_at"]
    return {**summary, "last_sync_at": at.isoformat() if at else None}


@bp.get("/api/sync-health")
@roles_required(*VIEW_ROLES)
def api():  # noqa: ANN201
    """Devices with their last sync, entries waiting, errors and versions (scoped)."""
    view = health_view(g.user, per_page_default=1000)
    db.session.rollback()
    return jsonify(
        {
            "devices": [r.as_json() for r in view["rows"]],
            "matching": view["matching"],
            "page": view["page"],
            "pages": view["pages"],
            "summary": view["summary"],
            "districts": [_iso(d) for d in view["districts"]],
            "work_groups": [_iso(w) for w in view["work_groups"]],
            "silent_days": view["silent_days"],
        }
    )


@bp.get("/sync-health")
@web_login_required(*VIEW_ROLES)
def page():  # noqa: ANN201
    view = health_view(current_web_user())
    return render_template(
        "sync_health/page.html",
        labels=STATUS_LABELS,
        statuses=STATUSES,
        sorts=tuple(SORTS),
        now=datetime.now(UTC),
        **view,
    )


XLSX_HEADER = (
    "区县", "工作组", "干部", "账号", "设备", "状态", "最后同步", "待发送条数",
    "最早待发送", "最近错误", "应用版本", "已用存储(MB)", "持久存储",
)  # fmt: skip


def _local(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    from zoneinfo import ZoneInfo

    return value.astimezone(ZoneInfo(current_app.config["FV"].TIMEZONE)).replace(tzinfo=None)


def _xlsx_row(r: DeviceRow) -> list[Any]:
    return [
        r.district_name or "",
        r.work_group_code or "",
        r.display_name,
        r.username,
        r.device_name or r.device_id[:8],
        STATUS_LABELS[r.status],
        _local(r.last_sync_at),
        r.pending,
        _local(r.oldest_pending_at),
        r.last_error or "",
        r.app_version or "",
        round(r.storage_used / 1_048_576, 1) if r.storage_used is not None else None,
        {True: "是", False: "否"}.get(r.persisted, ""),
    ]


@bp.get("/sync-health.xlsx")
@web_login_required(*VIEW_ROLES)
def export():  # noqa: ANN201
    from openpyxl import Workbook

    from server.spreadsheet import xlsx_row

    view = health_view(current_web_user(), per_page_default=PER_PAGE_MAX)
    wb = Workbook()
    ws = wb.active
    ws.title = "同步状态"
    ws.append(list(XLSX_HEADER))
    for r in view["rows"]:
        ws.append(xlsx_row(ws, _xlsx_row(r)))
    for col, width in zip("ABCDEFGHIJKLM", (12, 8, 10, 12, 14, 12, 18, 10, 18, 16, 10, 12, 8),
                          strict=True):  # fmt: skip
        ws.column_dimensions[col].width = width
    for row in ws.iter_rows(min_row=2):
        for cell in (row[6], row[8]):
            cell.number_format = "yyyy-mm-dd hh:mm"
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    return send_file(
        buf,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=f"sync-health-{datetime.now(UTC):%Y%m%d}.xlsx",
    )


@bp.post("/sync-health/devices/<device_id>/revoke")
@web_login_required(Role.ADMIN.value)
def revoke(device_id: str):  # noqa: ANN201
    """Stop a lost phone: its next request is told device_revoked (docs/sync-protocol.md)."""
    device = db.session.get(Device, device_id[:36])
    if device is None:
        flash("没有这台设备", "error")
    elif device.revoked_at is None:
        device.revoked_at = datetime.now(UTC)
        db.session.commit()
        flash("设备已停用：它下次同步时会被要求重新登录", "ok")
    return redirect(url_for("sync_health.page"))
