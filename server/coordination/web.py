"""Pages and JSON of coordination and supervision: dashboard, problems, spot checks,
evaluation, exports. HTTP only: the numbers come from the modules next to this one.

Pages use the cookie sign-in of server/web.py. The JSON endpoints (/api/...) take a
bearer token like the rest of the API, or the page's cookie session, so a page's own
data can be fetched by the same signed-in browser. City staff (coordinators,
supervisors, admins) see every district; a district head sees only their own; field
cadres and group leaders are refused.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from sqlalchemy import func, select

from server import plausibility
from server.api.common import json_body
from server.coordination import dashboard as dash
from server.coordination import evaluation as ev
from server.coordination import exports, problems, spotcheck
from server.coordination.chart import progress_svg
from server.coordination.filters import ENTERPRISE_TAGS, Filters
from server.errors import ApiError
from server.extensions import db
from server.models import (
    PROBLEM_CATEGORIES,
    PROBLEM_STAGES,
    PROBLEM_TAGS,
    DistrictUnit,
    Problem,
    Role,
    User,
    Visit,
    WorkGroup,
)
from server.models_supervision import (
    CHECK_RESULTS,
    PlausibilityFlag,
    SpotCheckItem,
    SpotCheckSample,
)
from server.params import (
    ParamError,
    body_int,
    body_text,
    choice_arg,
    choices_arg,
    date_arg,
    date_window,
    flag_arg,
    int_arg,
    page_arg,
    parse_date,
    per_page_arg,
    text_arg,
)
from server.privacy import mask_changes, mask_conflict_value
from server.scope import scope_of
from server.web import _csrf_ok, current_web_user, page_lang, web_login_required
from worker.briefing.compute import vocabulary

bp = Blueprint("coordination", __name__)

CITY_ROLES = (Role.ADMIN.value, Role.COORDINATOR.value, Role.SUPERVISOR.value)
VIEW_ROLES = (*CITY_ROLES, Role.DISTRICT_HEAD.value)
CHECK_ROLES = (Role.SUPERVISOR.value, Role.ADMIN.value)
PER_PAGE = 50

TEXT: dict[str, tuple[str, str]] = {
    "dashboard": ("进度看板", "Dashboard"),
    "problems": ("问题台账", "Problems"),
    "spot": ("随机抽查", "Spot checks"),
    "evaluation": ("考核评比", "Evaluation"),
    "lang": ("English", "中文"),
    "from": ("起始日期", "From"),
    "to": ("截止日期", "To"),
    "group": ("工作组", "Work group"),
    "tags": ("企业类型", "Enterprise tags"),
    "all": ("全部", "All"),
    "apply": ("筛选", "Apply"),
    "district": ("区(市)县", "District"),
    "visits": ("走访次数", "Visits"),
    "enterprises": ("企业数", "Enterprises"),
    "types": ("企业类型数", "Types"),
    "workers": ("面对面职工", "Workers met"),
    "cadres": ("干部参与", "Cadres"),
    "raised": ("发现问题", "Problems"),
    "open": ("未解决", "Open"),
    "resolved": ("本期解决", "Resolved"),
    "home": ("入户慰问", "Home visits"),
    "money": ("慰问金(元)", "Money (¥)"),
    "score": ("进度得分", "Progress"),
    "total": ("合计", "Total"),
    "chart_v": ("累计走访次数（按周）", "Cumulative visits (weekly)"),
    "chart_w": ("累计面对面职工人数（按周）", "Cumulative workers met (weekly)"),
    "export": ("导出", "Export"),
    "targets": ("目标", "Targets"),
    "by_method": ("按走访方式", "By method"),
    "by_stage": ("问题处理阶段", "By ladder stage"),
    "when": ("时间", "When"),
    "method": ("方式", "Method"),
    "enterprise": ("企业", "Enterprise"),
    "record": ("记录", "Record"),
    "audit": ("修改记录", "Change history"),
    "who": ("操作人", "Who"),
    "device": ("设备", "Device"),
    "source": ("来源", "Source"),
    "changes": ("修改内容", "What changed"),
    "conflicts": ("冲突", "Conflicts"),
    "history": ("处理过程", "Ladder history"),
    "category": ("类别", "Category"),
    "tag": ("最盼/最急/最忧/最怨", "Hope/urgent/worry/resent"),
    "stage": ("阶段", "Stage"),
    "age": ("已开放天数≥", "Open ≥ days"),
    "days": ("天", "days"),
    "recurring": (
        "多家企业反映的问题（建议从源头上推动解决）",
        "Recurring across enterprises (candidates for source-level handling)",
    ),
    "recur_n": ("企业数≥", "Enterprises ≥"),
    "source_candidate": ("建议源头解决", "Source-level"),
    "description": ("问题", "Problem"),
    "none": ("暂无", "None"),
    "draw": ("抽取样本", "Draw a sample"),
    "seed": ("随机种子", "Seed"),
    "size": ("样本量", "Size"),
    "rate": ("抽查率", "Check rate"),
    "checked": ("已核查", "Checked"),
    "sampled": ("已抽取", "Sampled"),
    "confirmed": ("属实", "Confirmed"),
    "doubtful": ("存疑", "Doubtful"),
    "not_confirmed": ("不属实", "Not confirmed"),
    "note": ("说明", "Note"),
    "save": ("保存", "Save"),
    "samples": ("抽查批次", "Samples"),
    "rank": ("名次", "Rank"),
    "breakdown": ("得分构成", "Breakdown"),
    "commend": ("年终表彰建议名单", "Year-end commendation list"),
    "criterion": ("指标", "Criterion"),
    "weight": ("权重", "Weight"),
    "points": ("得分", "Points"),
    "back": ("返回", "Back"),
    "page": ("页", "page"),
    "next": ("下一页", "Next"),
    "prev": ("上一页", "Previous"),
    "home_visits": ("入户走访慰问", "Home visits"),
    "checks": ("抽查", "Spot checks"),
    "participants": ("参加人员", "Participants"),
    "notes": ("备注", "Notes"),
    "result": ("结果", "Result"),
    "open_only": ("未解决", "Open"),
    "filters": ("筛选条件", "Filters"),
}


KIND_NAMES_EN = {
    "visits": "Visits",
    "problems": "Problems",
    "enterprises": "Enterprises",
    "dashboard": "Progress table",
}

# Column headers must stay narrow on a phone: short names, the full one as a tooltip.
SHORT = {
    "zh": {
        "report": "汇报",
        "symposium": "座谈",
        "interview": "访谈",
        "home_visit": "入户",
        "outreach": "宣传咨询",
        "enterprise": "企业协调",
        "government": "党政解决",
        "source": "源头推动",
        "resolved": "已解决",
        "closed": "已关闭",
    },
    "en": {
        "report": "Report",
        "symposium": "Sympos.",
        "interview": "Interv.",
        "home_visit": "Home",
        "outreach": "Outreach",
        "enterprise": "w/ Ent.",
        "government": "Govt",
        "source": "Source",
        "resolved": "Resolved",
        "closed": "Closed",
    },
}


def register(app: Flask) -> None:
    """Attach the coordination pages and JSON (and the cookie sign-in if nobody did yet)."""
    from server import web

    if "web" not in app.blueprints:
        app.register_blueprint(web.bp)
    app.register_blueprint(bp)


# ---------------------------------------------------------------------------- helpers


def _texts(lang: str) -> dict[str, str]:
    return {k: (en if lang == "en" else zh) for k, (zh, en) in TEXT.items()}


def _vocab(lang: str) -> dict[str, dict[str, str]]:
    key = "name_en" if lang == "en" else "name"
    return {
        kind: {row["code"]: row[key] for row in rows}
        for kind, rows in vocabulary().items()
        if isinstance(rows, list)
    }


def _settings() -> Any:
    return current_app.config["FV"]


def _today() -> date:
    return datetime.now(ZoneInfo(_settings().TIMEZONE)).date()


def _scope_ids(user: User) -> frozenset[int] | None:
    """City staff read everything (None); a district head exactly their own district.

    Taken from server/scope.py, so these pages and the sync API agree on who reads what.
    """
    return scope_of(user).read


def _filters(user: User, enterprise_tags: bool = True) -> Filters:
    """The request's period, work group and tags, inside the user's scope.

    The problem export's `tag` is a problem's tag (hope, urgent...), not an enterprise's:
    it passes enterprise_tags=False.
    """
    start = date_arg("from", date.fromisoformat(_settings().CAMPAIGN_START))
    end = date_arg("to", max(start, min(_today(), date_window()[1])))
    if end < start:
        raise ParamError("to", "must not be before from")
    group_id = None
    if code := text_arg("group"):
        group_id = db.session.scalar(select(WorkGroup.id).where(WorkGroup.code == code))
        if group_id is None:
            raise ParamError("group", "no such work group")
    tags = choices_arg("tag", ENTERPRISE_TAGS) if enterprise_tags else ()
    return Filters(start, end, group_id, tags, _scope_ids(user), _settings().TIMEZONE)


def _district_or_404(user: User, code: str) -> DistrictUnit:
    unit = db.session.scalar(select(DistrictUnit).where(DistrictUnit.code == code))
    if unit is None:
        abort(404)
    scope = _scope_ids(user)
    if scope is not None and unit.id not in scope:
        abort(403)
    return unit


def _api_user(*roles: str) -> User:
    """The caller of a JSON endpoint: bearer token if sent, else the page's cookie session."""
    if request.headers.get("Authorization"):
        from server.auth import authenticate

        user, _ = authenticate(db.session)
    else:
        user = current_web_user()
        if user is None:
            raise ApiError(401, "auth_required", "sign in first")
        # A cookie rides along on cross-site requests: a POST must carry the page's token.
        if request.method == "POST" and not _csrf_ok():
            raise ApiError(400, "csrf", "send the page's X-CSRF-Token header")
    if user.role not in (roles or VIEW_ROLES):
        raise ApiError(403, "forbidden", "your role may not see this")
    g.user = user
    return user


def _page_ctx(user: User, active: str) -> dict[str, Any]:
    lang = page_lang()
    groups = db.session.scalars(select(WorkGroup).order_by(WorkGroup.code)).all()
    view_args = request.view_args or {}
    # The language switch keeps the query, minus what url_for would take as its own.
    args = {
        k: v
        for k, v in request.args.to_dict(flat=False).items()
        if k != "lang" and k not in view_args and not k.startswith("_")
    }
    return {
        "lang": lang,
        "t": _texts(lang),
        "v": _vocab(lang),
        "active": active,
        "user": user,
        "city": user.role in CITY_ROLES,
        "groups": groups,
        "all_tags": ENTERPRISE_TAGS,
        "may_check": user.role in CHECK_ROLES,
        "other_lang": url_for(
            request.endpoint, **view_args, **{**args, "lang": "zh" if lang == "en" else "en"}
        ),
        "tz": ZoneInfo(_settings().TIMEZONE),
        "short": SHORT[lang],
        "kind_names": exports.KIND_NAMES if lang != "en" else KIND_NAMES_EN,
        "district_names": {
            d.code: (d.name_en if lang == "en" else d.name)
            for d in db.session.scalars(select(DistrictUnit))
        },
    }


def _qs(**changes: Any) -> str:
    """The current query string with some arguments replaced (None removes one)."""
    args = request.args.to_dict(flat=False)
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = [str(value)]
    return "?" + urlencode(args, doseq=True)


@bp.app_template_filter("local")
def _local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(_settings().TIMEZONE)).strftime(fmt)


@bp.app_template_filter("pct0")
def _pct0(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


# ---------------------------------------------------------------------------- dashboard


CACHE_SECONDS = 60


class AnswerCache:
    """Computed answers kept for CACHE_SECONDS, bounded in bytes (each answer counted by
    the size of its JSON), the least recently used dropped first. One per web process;
    gunicorn's threads share it under a lock."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[tuple, tuple[float, int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, now: float) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            if now - hit[0] >= CACHE_SECONDS:
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return hit[2]

    def put(self, key: tuple, value: Any, now: float) -> None:
        size = len(json.dumps(value, default=str, ensure_ascii=False).encode())
        with self._lock:
            if key in self._items:
                self._drop(key)
            if size > self.max_bytes:
                return  # larger than the whole cache: answered, never kept
            while self._items and self.bytes + size > self.max_bytes:
                self._drop(next(iter(self._items)))
            self._items[key] = (now, size, value)
            self.bytes += size

    def _drop(self, key: tuple) -> None:
        self.bytes -= self._items.pop(key)[1]

    def __len__(self) -> int:
        return len(self._items)


def answer_cache() -> AnswerCache:
    """This app's cache (created on first use, sized by DASHBOARD_CACHE_BYTES)."""
    cache = current_app.extensions.get("coordination.cache")
    if cache is None:
        cache = current_app.extensions.setdefault(
            "coordination.cache", AnswerCache(_settings().DASHBOARD_CACHE_BYTES)
        )
    return cache


def _cached(key: tuple, compute: Any) -> Any:
    """A result computed at most once a minute per key and per state of the synced data.

    The key includes the global sync version and the database epoch: every change a
    phone, the API or the dedup workers make bumps the version, so an answer is never
    older than the data it summarises; the minute bounds what the version does not see
    (a new cadre account). Kept per app (each gunicorn process has its own), at most
    DASHBOARD_CACHE_BYTES of it.
    """
    from server.models import SyncState

    state = db.session.execute(select(SyncState.version, SyncState.epoch)).first()
    key = (*key, *(state or (None, None)))
    cache = answer_cache()
    now = time.monotonic()
    hit = cache.get(key, now)
    if hit is not None:
        return hit
    value = compute()
    cache.put(key, value, now)
    return value


def _dashboard_data(user: User) -> tuple[Filters, dict[str, Any], list[dict[str, Any]]]:
    f = _filters(user)
    sort = choice_arg("sort", dash.SORT_KEYS, "code")
    desc = choice_arg("dir", ("asc", "desc"), "asc") == "desc"
    today = _today()
    key = (
        "dashboard",
        f.date_from,
        f.date_to,
        f.work_group_id,
        f.tags,
        f.district_ids,
        sort,
        desc,
        today,
    )
    data, series = _cached(
        key,
        lambda: (
            dash.dashboard(db.session, f, sort, desc),
            dash.weekly_series(db.session, f, until=today),
        ),
    )
    return f, data, series


@bp.get("/dashboard")
@web_login_required(*VIEW_ROLES)
def dashboard_page():  # noqa: ANN201
    """The city dashboard (a district head: their own district's row)."""
    user = current_web_user()
    f, data, series = _dashboard_data(user)
    ctx = _page_ctx(user, "dashboard")
    chart = progress_svg(series, ctx["t"]["chart_v"], ctx["t"]["chart_w"])
    return render_template(
        "coordination/dashboard.html",
        **ctx,
        data=data,
        f=f,
        chart=chart,
        qs=_qs,
        freshness=freshness_by_code(),
    )


def freshness_by_code(iso: bool = False) -> dict[str, dict[str, Any]]:
    """Per district code: as of when its figures are and whether phones are silent
    (sync/health.py, the same figures as the sync-health page)."""
    from sync.health import district_freshness

    codes = dict(db.session.execute(select(DistrictUnit.id, DistrictUnit.code)).all())
    fresh = district_freshness(db.session, silent_days=_settings().SYNC_SILENT_DAYS)
    out = {}
    for district_id, info in fresh.items():
        if district_id in codes:
            if iso and info["as_of"] is not None:
                info = {**info, "as_of": info["as_of"].isoformat()}
            out[codes[district_id]] = info
    return out


@bp.get("/api/dashboard")
def dashboard_api():  # noqa: ANN201
    """GET /api/dashboard?from=&to=&group=&tag=&sort=&dir= : rows, total, weekly series."""
    user = _api_user()
    f, data, series = _dashboard_data(user)
    shown = {r["code"] for r in data["rows"]}
    fresh = {c: v for c, v in freshness_by_code(iso=True).items() if c in shown}
    return jsonify({**data, "series": series, "freshness": fresh})


@bp.get("/dashboard/<code>")
@web_login_required(*VIEW_ROLES)
def district_page(code: str):  # noqa: ANN201
    """One district: its figures, its weekly chart and its visits (newest first)."""
    user = current_web_user()
    unit = _district_or_404(user, code)
    f = _filters(user)
    f = Filters(f.date_from, f.date_to, f.work_group_id, f.tags, frozenset({unit.id}), f.tz)
    data = dash.dashboard(db.session, f)
    page = page_arg()
    visits, total = dash.visits_page(db.session, f, unit.id, page, PER_PAGE)
    ctx = _page_ctx(user, "dashboard")
    chart = progress_svg(
        dash.weekly_series(db.session, f, until=_today()), ctx["t"]["chart_v"], ctx["t"]["chart_w"]
    )
    return render_template(
        "coordination/district.html",
        **ctx,
        unit=unit,
        f=f,
        chart=chart,
        row=data["rows"][0] if data["rows"] else None,
        fresh=freshness_by_code().get(unit.code),
        targets=data["targets"],
        visits=visits,
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        qs=_qs,
    )


@bp.get("/api/dashboard/<code>")
def district_api(code: str):  # noqa: ANN201
    """One district's row, weekly series and a page of its visits."""
    user = _api_user()
    unit = db.session.scalar(select(DistrictUnit).where(DistrictUnit.code == code))
    if unit is None:
        raise ApiError(404, "not_found", f"no district unit {code}")
    scope = _scope_ids(user)
    if scope is not None and unit.id not in scope:
        raise ApiError(403, "forbidden", "this district is not yours to read")
    f = _filters(user)
    f = Filters(f.date_from, f.date_to, f.work_group_id, f.tags, frozenset({unit.id}), f.tz)
    data = dash.dashboard(db.session, f)
    page = page_arg()
    visits, total = dash.visits_page(db.session, f, unit.id, page, per_page_arg(PER_PAGE))
    for v in visits:
        v["visited_at"] = v["visited_at"].isoformat()
    return jsonify(
        {
            "district": {"code": unit.code, "name": unit.name},
            "row": data["rows"][0] if data["rows"] else None,
            "series": dash.weekly_series(db.session, f, until=_today()),
            "visits": visits,
            "total": total,
            "page": page,
        }
    )


def _visit_or_abort(user: User, visit_id: str, api: bool = False) -> dict[str, Any]:
    scope = _scope_ids(user)
    detail = dash.visit_detail(db.session, visit_id, scope)
    if detail is None or (scope is not None and detail["visit"].district_id not in scope):
        # Out of scope answers 404 like a missing record: ids of other districts leak nothing.
        if api:
            raise ApiError(404, "not_found", "no such visit")
        abort(404)
    # Needy workers' personal data stays masked here as everywhere on the page, also in
    # audit entries and conflicts written before the log masked them (server/privacy.py).
    detail["audit"] = [
        {**a, "changes": mask_changes(a["entity"], a["changes"])} for a in detail["audit"]
    ]
    detail["conflicts"] = [
        SimpleNamespace(
            id=c.id,
            entity=c.entity,
            record_id=c.record_id,
            field=c.field,
            kind=c.kind,
            created_at=c.created_at,
            user_id=c.user_id,
            resolved_at=c.resolved_at,
            server_value=mask_conflict_value(c.entity, c.field, c.server_value),
            client_value=mask_conflict_value(c.entity, c.field, c.client_value),
        )
        for c in detail["conflicts"]
    ]
    return detail


@bp.get("/dashboard/visit/<visit_id>")
@web_login_required(*VIEW_ROLES)
def visit_page(visit_id: str):  # noqa: ANN201
    """A visit record: its fields, problems with ladder history, audit history, conflicts."""
    user = current_web_user()
    detail = _visit_or_abort(user, visit_id)
    histories = {p.id: problems.problem_history(db.session, p.id) for p in detail["problems"]}
    names = {u.id: u.display_name for u in db.session.scalars(select(User))}
    from server.attachments_pages import gallery

    photos = gallery(db.session, user, [detail["visit"]], page_lang(), _settings())
    return render_template(
        "coordination/visit.html",
        **_page_ctx(user, "dashboard"),
        d=detail,
        photos=photos[detail["visit"].id],
        histories=histories,
        names=names,
        district=db.session.get(DistrictUnit, detail["visit"].district_id),
        group=db.session.get(WorkGroup, detail["visit"].work_group_id)
        if detail["visit"].work_group_id
        else None,
    )


def _audit_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**a, "at": a["at"].isoformat()} for a in rows]


@bp.get("/api/dashboard/visits/<visit_id>")
def visit_api(visit_id: str):  # noqa: ANN201
    """A visit's record, problems, audit history and conflicts as JSON."""
    user = _api_user()
    d = _visit_or_abort(user, visit_id, api=True)
    v = d["visit"]
    return jsonify(
        {
            "visit": {
                "id": v.id,
                "method": v.method,
                "visited_at": v.visited_at.isoformat(),
                "district_id": v.district_id,
                "work_group_id": v.work_group_id,
                "enterprise_id": v.enterprise_id,
                "workers_met": v.workers_met,
                "workers_by_group": v.workers_by_group,
                "deleted": v.deleted,
                "canonical_id": v.canonical_id,
                "version": v.version,
            },
            "problems": [
                {
                    "id": p.id,
                    "category": p.category,
                    "tag": p.tag,
                    "stage": p.stage,
                    "history": _audit_json(problems.problem_history(db.session, p.id)),
                }
                for p in d["problems"]
            ],
            "audit": _audit_json(d["audit"]),
            "conflicts": [
                {
                    "id": c.id,
                    "record_id": c.record_id,
                    "field": c.field,
                    "kind": c.kind,
                    "created_at": c.created_at.isoformat(),
                    "resolved": c.resolved_at is not None,
                }
                for c in d["conflicts"]
            ],
            "spot_checks": [
                {"sample_id": c.sample_id, "result": c.result, "note": c.note} for c in d["checks"]
            ],
        }
    )


# ---------------------------------------------------------------------------- problems


def _problem_filters(user: User) -> tuple[problems.ProblemFilters, int]:
    district_id = None
    if code := text_arg("district"):
        district_id = _district_or_404(user, code).id
    stage = choice_arg("stage", ("open", *PROBLEM_STAGES))
    min_days = int_arg("min_days", None, 0, 100_000)
    recur_n = int_arg("n", None, 2, 100_000) or _settings_recur()
    return problems.ProblemFilters(
        district_ids=_scope_ids(user),
        district_id=district_id,
        category=choice_arg("category", PROBLEM_CATEGORIES),
        tag=choice_arg("tag", PROBLEM_TAGS),
        stage=stage,
        min_days=min_days or None,
        recurring_only=flag_arg("recurring"),
        overdue_only=flag_arg("overdue"),
        colour=choice_arg("colour", problems.COLOUR_FILTERS),
    ), max(2, recur_n)


def _settings_recur() -> int:
    return int(ev.load_standard().get("recurring_min_enterprises", problems.DEFAULT_RECUR_MIN))


def _problem_data(user: User, per_page: int = PER_PAGE) -> dict[str, Any]:
    pf, n = _problem_filters(user)
    page = page_arg()
    return problems.list_problems(
        db.session,
        pf,
        datetime.now(UTC),
        page,
        per_page,
        n,
        oldest_first=choice_arg("sort", ("age",)) == "age",
    )


@bp.get("/problems")
@web_login_required(*VIEW_ROLES)
def problems_page():  # noqa: ANN201
    """Every problem, filterable; recurring categories flagged for source-level handling."""
    user = current_web_user()
    data = _problem_data(user)
    districts = dash.scoped_districts(db.session, _scope_ids(user))
    return render_template(
        "coordination/problems.html",
        **_page_ctx(user, "problems"),
        data=data,
        districts=districts,
        qs=_qs,
        pages=max(1, -(-data["total"] // PER_PAGE)),
    )


@bp.get("/api/problem-tracker")
def problems_api():  # noqa: ANN201
    """GET /api/problem-tracker?category=&tag=&stage=&colour=&min_days=&district=&n=
    &recurring=1&page= (colour: red, yellow, blue or none)"""
    # the API's page follows per_page (at most API_PAGE_MAX); the web page shows 50
    data = _problem_data(_api_user(), per_page_arg(PER_PAGE))
    for item in data["items"]:
        item["opened_at"] = item["opened_at"].isoformat() if item["opened_at"] else None
    return jsonify(data)


def _problem_or_404(user: User, problem_id: str) -> Problem:
    p = db.session.get(Problem, problem_id)
    scope = _scope_ids(user)
    if p is None or (scope is not None and p.district_id not in scope):
        abort(404)
    return p


@bp.get("/problems/<problem_id>")
@web_login_required(*VIEW_ROLES)
def problem_page(problem_id: str):  # noqa: ANN201
    """A problem's full history: every ladder move (who, when, why) and every change."""
    user = current_web_user()
    p = _problem_or_404(user, problem_id)
    return render_template(
        "coordination/problem.html",
        **_page_ctx(user, "problems"),
        p=p,
        history=problems.problem_history(db.session, p.id),
        audit=dash.audit_trail(db.session, [("problem", p.id)]),
        district=db.session.get(DistrictUnit, p.district_id),
    )


@bp.get("/api/problem-tracker/<problem_id>")
def problem_api(problem_id: str):  # noqa: ANN201
    """A problem with its ladder history and audit entries."""
    user = _api_user()
    p = db.session.get(Problem, problem_id)
    scope = _scope_ids(user)
    if p is None or (scope is not None and p.district_id not in scope):
        raise ApiError(404, "not_found", "no such problem")
    return jsonify(
        {
            "id": p.id,
            "category": p.category,
            "tag": p.tag,
            "stage": p.stage,
            "description": p.description,
            "visit_id": p.visit_id,
            "history": _audit_json(problems.problem_history(db.session, p.id)),
            "audit": _audit_json(dash.audit_trail(db.session, [("problem", p.id)])),
        }
    )


# ---------------------------------------------------------------------------- spot checks


def _spot_overview(user: User) -> dict[str, Any]:
    stats = spotcheck.district_stats(db.session, _scope_ids(user))
    districts = dash.scoped_districts(db.session, _scope_ids(user))
    samples = db.session.execute(
        select(SpotCheckSample, func.count(SpotCheckItem.id), func.count(SpotCheckItem.result))
        .outerjoin(SpotCheckItem, SpotCheckItem.sample_id == SpotCheckSample.id)
        .group_by(SpotCheckSample.id)
        .order_by(SpotCheckSample.id.desc())
        .limit(50)
    ).all()
    return {
        "stats": stats,
        "districts": districts,
        "samples": samples,
        "flags": _flag_rows(user),
        "pt": plausibility.texts(page_lang()),
    }


def _flag_rows(user: User) -> list[dict[str, Any]]:
    """The pending plausibility flags in the user's scope, with what the page shows."""
    flags = plausibility.open_flags(db.session, _scope_ids(user))
    names = dict(db.session.execute(select(User.id, User.display_name)).all()) if flags else {}
    codes = dict(db.session.execute(select(DistrictUnit.id, DistrictUnit.code)).all())
    rows = []
    for f in flags:
        record = db.session.get(plausibility.MODELS[f.entity], f.record_id)
        visit_id = f.record_id if f.entity == "visit" else getattr(record, "visit_id", None)
        rows.append(
            {
                "id": f.id,
                "entity": f.entity,
                "record_id": f.record_id,
                "visit_id": visit_id,
                "district": codes.get(f.district_id),
                "visited_at": record.visited_at.isoformat() if record is not None else None,
                "author": names.get(f.created_by_id, ""),
                "reasons": f.reasons,
                "created_at": f.created_at.isoformat(),
            }
        )
    return rows


def _decide_flag(user: User, flag_id: int, decision: str, note: str | None) -> PlausibilityFlag:
    flag = db.session.get(PlausibilityFlag, flag_id)
    scope = _scope_ids(user)
    if flag is None or (scope is not None and flag.district_id not in scope):
        raise ApiError(404, "not_found", "no such flag")
    if decision not in ("accept", "reject"):
        raise ParamError("decision", "must be accept or reject")
    try:
        plausibility.decide(db.session, flag, decision == "accept", user, note)
    except ValueError as exc:
        raise ApiError(400, "invalid", str(exc), "decision") from None
    db.session.commit()
    return flag


@bp.post("/spot-checks/flags/<int:flag_id>")
@web_login_required(*CHECK_ROLES)
def plausibility_flag_decision(flag_id: int):  # noqa: ANN201
    """A supervisor accepts (counts from now on) or rejects a record held as implausible."""
    user = current_web_user()
    note = body_text(request.form, "note", 2000, multiline=True)
    _decide_flag(user, flag_id, body_text(request.form, "decision", 16) or "", note or None)
    return redirect(url_for("coordination.spot_checks_page") + "#flags")


@bp.get("/api/spot-checks/flags")
def plausibility_flags_api():  # noqa: ANN201
    """The pending plausibility flags in scope (records held out of the statistics)."""
    user = _api_user(*CITY_ROLES)
    return jsonify({"flags": _flag_rows(user)})


@bp.post("/api/spot-checks/flags/<int:flag_id>")
def plausibility_flag_api(flag_id: int):  # noqa: ANN201
    """POST {decision: accept|reject, note}: decide a plausibility flag."""
    user = _api_user(*CHECK_ROLES)
    body = json_body()
    flag = _decide_flag(
        user,
        flag_id,
        body_text(body, "decision", 16) or "",
        body_text(body, "note", 2000, multiline=True),
    )
    return jsonify({"id": flag.id, "status": flag.status})


@bp.route("/spot-checks", methods=["GET", "POST"])
@web_login_required(*CITY_ROLES)
def spot_checks_page():  # noqa: ANN201
    """Check rates and findings per district; supervisors draw new samples here."""
    user = current_web_user()
    if request.method == "POST":
        if user.role not in CHECK_ROLES:
            abort(403)
        sample = _draw(user, request.form)
        db.session.commit()
        return redirect(url_for("coordination.spot_check_page", sample_id=sample.id))
    return render_template(
        "coordination/spotchecks.html",
        **_page_ctx(user, "spot"),
        **_spot_overview(user),
        default_seed=datetime.now(UTC).strftime("%Y%m%d%H%M"),
        today=_today(),
        campaign_start=_settings().CAMPAIGN_START,
    )


def _draw(user: User, form: Any) -> SpotCheckSample:
    """A sample from the page's form or the API's JSON object (both read with .get)."""
    seed = (body_text(form, "seed", 64, required=True) or "").strip()
    if not seed:
        raise ParamError("seed", "is required")
    size = body_int(form, "size", 1, 5000)
    if size is None:
        raise ParamError("size", "is required")
    start = parse_date("from", body_text(form, "from", 10) or _settings().CAMPAIGN_START)
    end = parse_date("to", body_text(form, "to", 10) or _today().isoformat())
    if end < start:
        raise ParamError("to", "must not be before from")
    group_id = None
    if code := body_text(form, "group"):
        group_id = db.session.scalar(select(WorkGroup.id).where(WorkGroup.code == code))
        if group_id is None:
            raise ParamError("group", "no such work group")
    note = body_text(form, "note", 2000, multiline=True)
    f = Filters(start, end, group_id, (), None, _settings().TIMEZONE)
    return spotcheck.draw_sample(db.session, seed, size, f, user, note)


@bp.get("/spot-checks/<int:sample_id>")
@web_login_required(*CITY_ROLES)
def spot_check_page(sample_id: int):  # noqa: ANN201
    """One sample: the sampled visits and a result form for each."""
    user = current_web_user()
    sample = db.session.get(SpotCheckSample, sample_id)
    if sample is None:
        abort(404)
    rows = db.session.execute(
        select(SpotCheckItem, Visit, DistrictUnit.name, WorkGroup.name)
        .join(Visit, Visit.id == SpotCheckItem.visit_id)
        .join(DistrictUnit, DistrictUnit.id == SpotCheckItem.district_id)
        .outerjoin(WorkGroup, WorkGroup.id == SpotCheckItem.work_group_id)
        .where(SpotCheckItem.sample_id == sample_id)
        .order_by(DistrictUnit.code, SpotCheckItem.id)
    ).all()
    from server.attachments_pages import gallery

    return render_template(
        "coordination/spotcheck.html",
        **_page_ctx(user, "spot"),
        sample=sample,
        rows=rows,
        # beside each sampled visit: its photos with time, place and clock checks
        photos=gallery(db.session, user, [r[1] for r in rows], page_lang(), _settings()),
        results=CHECK_RESULTS,
    )


@bp.post("/spot-checks/items/<int:item_id>")
@web_login_required(*CHECK_ROLES)
def spot_check_item(item_id: int):  # noqa: ANN201
    """Record one finding (属实 / 存疑 / 不属实 with a note)."""
    user = current_web_user()
    item = db.session.get(SpotCheckItem, item_id)
    if item is None:
        abort(404)
    try:
        note = body_text(request.form, "note", 2000, multiline=True)
        spotcheck.record_result(
            db.session,
            item,
            body_text(request.form, "result", 32) or "",
            note.strip() or None if note else None,
            user,
            datetime.now(UTC),
            g.get("request_id"),
        )
    except ValueError as exc:
        abort(400, str(exc))
    db.session.commit()
    return redirect(
        url_for("coordination.spot_check_page", sample_id=item.sample_id) + f"#item-{item.id}"
    )


@bp.route("/api/spot-checks", methods=["GET", "POST"])
def spot_checks_api():  # noqa: ANN201
    """GET: per-district check rates and findings. POST {seed, size, from, to, group}: draw."""
    user = _api_user(*CITY_ROLES)
    if request.method == "POST":
        if user.role not in CHECK_ROLES:
            raise ApiError(403, "forbidden", "only supervisors draw samples")
        sample = _draw(user, json_body())
        db.session.commit()
        return jsonify(
            {"id": sample.id, "seed": sample.seed, "visit_ids": [i.visit_id for i in sample.items]}
        ), 201
    overview = _spot_overview(user)
    codes = {d.id: d.code for d in overview["districts"]}
    return jsonify(
        {
            "districts": {codes[k]: v for k, v in overview["stats"].items() if k in codes},
            "samples": [
                {"id": s.id, "seed": s.seed, "size": s.size, "items": n, "checked": c}
                for s, n, c in overview["samples"]
            ],
        }
    )


@bp.post("/api/spot-checks/items/<int:item_id>")
def spot_check_item_api(item_id: int):  # noqa: ANN201
    """POST {result, note}: record a finding."""
    user = _api_user(*CHECK_ROLES)
    item = db.session.get(SpotCheckItem, item_id)
    if item is None:
        raise ApiError(404, "not_found", "no such item")
    body = json_body()
    try:
        spotcheck.record_result(
            db.session,
            item,
            body_text(body, "result", 32) or "",
            body_text(body, "note", 2000, multiline=True),
            user,
            datetime.now(UTC),
            g.get("request_id"),
        )
    except ValueError as exc:
        raise ApiError(400, "invalid", str(exc), "result") from None
    db.session.commit()
    return jsonify({"id": item.id, "result": item.result, "note": item.note})


# ---------------------------------------------------------------------------- evaluation


def _evaluation(user: User) -> tuple[list[ev.Evaluation], list[ev.Evaluation], dict[str, Any]]:
    f = _filters(user)
    standard = ev.load_standard()
    # Ranks are city-wide even for a district head, who then sees only their own row.
    everyone = Filters(f.date_from, f.date_to, f.work_group_id, f.tags, None, f.tz)
    results = ev.evaluate(db.session, everyone, standard)
    best = ev.commendations(results, standard)
    if f.district_ids is not None:
        results = [e for e in results if e.district_id in f.district_ids]
        best = [e for e in best if e.district_id in f.district_ids]
    return results, best, standard


@bp.get("/evaluation")
@web_login_required(*VIEW_ROLES)
def evaluation_page():  # noqa: ANN201
    """Scores, ranking and the breakdown behind each score; the commendation list."""
    user = current_web_user()
    results, best, standard = _evaluation(user)
    return render_template(
        "coordination/evaluation.html",
        **_page_ctx(user, "evaluation"),
        results=results,
        best=best,
        standard=standard,
        qs=_qs,
    )


@bp.get("/api/evaluation")
def evaluation_api():  # noqa: ANN201
    """Scores, ranks, breakdowns and the commendation list as JSON."""
    results, best, standard = _evaluation(_api_user())
    return jsonify(
        {
            "standard": standard,
            "results": [e.to_dict() for e in results],
            "commendation": [e.code for e in best],
        }
    )


# ---------------------------------------------------------------------------- exports


@bp.get("/export/<kind>.<fmt>")
@web_login_required(*VIEW_ROLES)
def export(kind: str, fmt: str):  # noqa: ANN201
    """visits / problems / enterprises / dashboard as .csv (streamed) or .xlsx."""
    if kind not in exports.KINDS or fmt not in ("csv", "xlsx"):
        abort(404)
    user = current_web_user()
    f = _filters(user, enterprise_tags=kind != "problems")
    pf = _problem_filters(user)[0] if kind == "problems" else None
    if user.role not in CITY_ROLES:
        # Below the city staff (a district head) a heavy export is bounded in rows, so one
        # request cannot keep a worker busy for minutes; counted before any is written.
        limit = _settings().EXPORT_MAX_ROWS
        rows = exports.count_rows(db.session, kind, f, pf)
        if rows > limit:
            field = "kind" if kind == "enterprises" else "from"
            raise ParamError(
                field,
                f"this export would hold {rows} rows; your role may export at most {limit}"
                + (" (narrow the dates)" if field == "from" else ""),
            )
    # Named after what it holds: the enterprise roster is every enterprise in scope (no
    # dates) under the tag and work-group filters, the others the dates they were
    # filtered to.
    if kind == "enterprises":
        today = datetime.now(ZoneInfo(f.tz)).date()
        name = f"{exports.KIND_NAMES[kind]}-{today.isoformat()}"
        if f.work_group_id is not None:
            group = db.session.get(WorkGroup, f.work_group_id)
            name += f"-{group.code if group else f.work_group_id}"
        if f.tags:
            name += "-" + "+".join(f.tags)
    else:
        name = f"{exports.KIND_NAMES[kind]}-{f.date_from.isoformat()}-{f.date_to.isoformat()}"
    if fmt == "csv":
        body = stream_with_context(exports.csv_stream(exports.export_rows(db.session, kind, f, pf)))
        mimetype = "text/csv"  # Flask adds "; charset=utf-8" to text types
    else:
        handle = exports.write_xlsx(
            exports.export_rows(db.session, kind, f, pf), exports.KIND_NAMES[kind]
        )
        body = exports.file_chunks(handle)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        body,
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="{kind}.{fmt}"; '
            f"filename*=UTF-8''{quote(name)}.{fmt}",
            "Cache-Control": "no-store",
        },
    )
