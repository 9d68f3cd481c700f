"""The dedup review queue for coordinators: a server-rendered page and its JSON API.

HTTP only: decisions, merges and undo are worker.merges functions. The page (/review)
uses the cookie sign-in of server/web.py; the JSON endpoints (/api/review/..., /api/merges/
...) use bearer tokens like the rest of the API. Both are for city coordinators and admins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import case, func, select

from server.api.common import json_body
from server.auth import roles_required
from server.errors import ApiError
from server.extensions import db
from server.models import (
    SYNCED_MODELS,
    DistrictUnit,
    Enterprise,
    Role,
    User,
    WorkGroup,
)
from server.models_dedup import (
    LINK_ACTIVE,
    LINK_SUPERSEDED,
    LINK_UNDONE,
    REVIEW_OPEN,
    MergeLink,
    ReviewCandidate,
)
from server.params import body_text, choice_arg, page_arg, per_page_arg, text_arg
from server.web import current_web_user, page_lang, web_login_required
from worker.merges import DEDUP_ENTITIES, MergeError, decide, root_of, undo_merge

bp = Blueprint("review", __name__)
REVIEWERS = (Role.COORDINATOR.value, Role.ADMIN.value)
PER_PAGE = 20
LINK_STATUSES = (LINK_ACTIVE, LINK_UNDONE, LINK_SUPERSEDED)

# (field, 中文, English) shown side by side, per entity.
FIELDS: dict[str, list[tuple[str, str, str]]] = {
    "enterprise": [
        ("name", "名称", "Name"),
        ("uscc", "统一社会信用代码", "Credit code"),
        ("district", "区(市)县", "District"),
        ("address", "地址", "Address"),
        ("head_count", "职工人数", "Head count"),
        ("type_tags", "类型", "Types"),
        ("created", "录入", "Recorded"),
    ],
    "visit": [
        ("method", "走访方式", "Method"),
        ("visited_at", "时间", "When"),
        ("work_group", "工作组", "Work group"),
        ("enterprise", "企业", "Enterprise"),
        ("district", "区(市)县", "District"),
        ("participants", "参加人员", "Participants"),
        ("workers_met", "面对面职工数", "Workers met"),
        ("notes", "备注", "Notes"),
        ("created", "录入", "Recorded"),
    ],
    "home_visit": [
        ("worker_name", "职工姓名", "Worker"),
        ("id_last4", "身份证后四位", "ID (last 4)"),
        ("phone", "手机", "Phone"),
        ("district", "区(市)县", "District"),
        ("visited_at", "时间", "When"),
        ("hardship", "困难情况", "Hardship"),
        ("amount", "慰问金(元)", "Money (yuan)"),
        ("created", "录入", "Recorded"),
    ],
}
ENTITY_NAMES = {
    "enterprise": ("企业", "Enterprise"),
    "visit": ("走访", "Visit"),
    "home_visit": ("困难职工入户走访", "Home visit"),
}
TEXT = {
    "title": ("疑似重复记录审核", "Possible duplicates"),
    "empty": ("没有待审核的记录。", "Nothing to review."),
    "accept": ("是同一条 (A)", "Same (A)"),
    "reject": ("不是 (R)", "Different (R)"),
    "unsure": ("不确定 (N)", "Not sure (N)"),
    "score": ("相似度", "Score"),
    "rule": ("依据", "Rule"),
    "unsure_badge": ("曾标记为不确定", "marked not sure"),
    "merges": ("最近的合并", "Recent merges"),
    "undo": ("撤销合并", "Undo"),
    "by": ("决定者", "Decided by"),
    "keys": (
        "快捷键：j/k 上一条/下一条，a 同一条，r 不是，n 不确定",
        "Keys: j/k next/previous, a same, r different, n not sure",
    ),
    "all": ("全部", "All"),
    "field": ("字段", "Field"),
    "done": ("已处理", "Done"),
    "lang": ("English", "中文"),
    "next": ("下一页", "Next page"),
    "prev": ("上一页", "Previous page"),
}


# The dedup rules a candidate or merge names (worker/dedup/match.py, worker/dedup_jobs.py,
# worker/merges.py), in words; "review_<rule>" is a reviewer's decision on that rule.
RULES: dict[str, tuple[str, str]] = {
    "name_exact": ("名称完全相同", "Same name"),
    "name_exact_conflicting": ("名称相同，但其他信息矛盾", "Same name, other details conflict"),
    "name_similar_corroborated": ("名称相近，另有信息佐证", "Similar names, corroborated"),
    "name_similar_uncertain": ("名称相近，无法确定", "Similar names, uncertain"),
    "uscc_equal": ("统一社会信用代码相同", "Same credit code"),
    "uscc_unchecked_equal": ("信用代码相同（校验位未通过）", "Same credit code (check failed)"),
    "uscc_conflict": ("信用代码不同", "Credit codes differ"),
    "uscc_conflict_in_cluster": ("同组记录的信用代码冲突", "Credit codes conflict in the group"),
    "industry_conflict": ("行业不同", "Industries differ"),
    "industry_conflict_in_cluster": ("同组记录的行业冲突", "Industries conflict in the group"),
    "branch_mismatch": ("分支机构不一致", "Branches differ"),
    "district_conflict": ("区(市)县不同", "Districts differ"),
    "contradicted": ("信息相互矛盾", "Details contradict"),
    "weak_name_only": ("只有名称略相似", "Only weakly similar names"),
    "below_review": ("相似度不足", "Below the review threshold"),
    "id_hash_equal": ("身份证号相同", "Same ID number"),
    "id_hash_differs": ("身份证号不同", "ID numbers differ"),
    "name_phone_district": ("姓名、电话和区(市)县相近", "Name, phone and district match"),
    "different_visit": ("属于不同的走访", "Different visits"),
    "same_meeting_other_cadre": (
        "同一次活动，不同干部各记了一次",
        "One meeting, recorded by two cadres",
    ),
    "same_entry_same_cadre": ("同一干部重复录入", "The same entry twice by one cadre"),
    "chain": ("随其所并入的记录一起合并", "Followed the record it was merged into"),
    "merge_undone": ("撤销合并后重新审核", "Review again after an undone merge"),
}
STATUSES = {
    LINK_ACTIVE: ("已合并", "merged"),
    LINK_UNDONE: ("已撤销", "undone"),
    LINK_SUPERSEDED: ("已被替代", "superseded"),
}


def rule_text(rule: str | None, lang: str) -> str:
    """A dedup rule in words (never the code; an unknown rule says so)."""
    i = 1 if lang == "en" else 0
    if rule and rule.startswith("review_") and rule[7:] in RULES:
        return ("人工审核确认：", "Confirmed in review: ")[i] + RULES[rule[7:]][i]
    if rule in RULES:
        return RULES[rule][i]
    return ("其他规则", "another rule")[i]


def vocab_text(kind: str, codes: list[str] | str | None, lang: str) -> str:
    """Vocabulary codes (enterprise types, visit methods) as their names."""
    from worker.briefing.compute import vocabulary

    key = "name_en" if lang == "en" else "name"
    names = {r["code"]: r.get(key) or r["name"] for r in vocabulary().get(kind, [])}
    items = [codes] if isinstance(codes, str) else list(codes or [])
    return ("、" if lang != "en" else ", ").join(names.get(c, c) for c in items)


def register(app: Flask) -> None:
    """Attach the review pages and API (and the cookie sign-in if nobody did yet)."""
    from server import web

    if "web" not in app.blueprints:
        app.register_blueprint(web.bp)
    app.register_blueprint(bp)


# --------------------------------------------------------------------------- presenting


def _t(key: str, lang: str) -> str:
    zh, en = TEXT[key]
    return en if lang == "en" else zh


class _Names:
    """Display names of districts, work groups, users and enterprises, loaded lazily once."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.districts = {
            d.id: (d.name_en if lang == "en" else d.name)
            for d in db.session.scalars(select(DistrictUnit))
        }
        self.groups = {w.id: w.name for w in db.session.scalars(select(WorkGroup))}
        self.tz = ZoneInfo(current_app.config["FV"].TIMEZONE)
        self._users: dict[int, str] = {}

    def user(self, user_id: int | None) -> str:
        if user_id is None:
            return ""
        if user_id not in self._users:
            u = db.session.get(User, user_id)
            self._users[user_id] = u.display_name if u else str(user_id)
        return self._users[user_id]

    def when(self, value: datetime | None) -> str:
        return value.astimezone(self.tz).strftime("%Y-%m-%d %H:%M") if value else ""


def _mask_phone(phone: str | None) -> str:
    # Minimisation (PIPL): enough to tell two numbers apart, not enough to call.
    if not phone:
        return ""
    digits = phone.removeprefix("+86")
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "****"


def record_values(entity: str, obj: Any, names: _Names) -> dict[str, str]:
    """A record's fields as display strings, keyed like FIELDS[entity]."""
    created = f"{names.user(obj.created_by_id)} {names.when(obj.created_at)}"
    out: dict[str, str] = {"district": names.districts.get(obj.district_id, ""), "created": created}
    if entity == "enterprise":
        out.update(
            name=obj.name,
            uscc=(obj.uscc or "") + ("" if obj.uscc_valid or not obj.uscc else " ⚠"),
            address=obj.address or "",
            head_count=str(obj.head_count or ""),
            type_tags=vocab_text("enterprise_type_tags", obj.type_tags, names.lang),
        )
    elif entity == "visit":
        ent = db.session.get(Enterprise, obj.enterprise_id) if obj.enterprise_id else None
        out.update(
            method=vocab_text("methods", obj.method, names.lang),
            visited_at=names.when(obj.visited_at),
            work_group=names.groups.get(obj.work_group_id, ""),
            enterprise=ent.name if ent else "",
            participants=", ".join(u.display_name for u in obj.participants),
            workers_met=str(obj.workers_met),
            notes=obj.notes or "",
        )
    else:
        out.update(
            worker_name=obj.worker_name,
            id_last4=obj.id_last4 or "",
            phone=_mask_phone(obj.phone),
            visited_at=names.when(obj.visited_at),
            hardship=obj.hardship or "",
            amount=f"{(obj.amount_cents or 0) / 100:.2f}",
        )
    return out


def candidate_view(row: ReviewCandidate, names: _Names) -> dict[str, Any] | None:
    """A candidate with both records side by side; None when it is no longer a question."""
    model = SYNCED_MODELS[row.entity]
    a, b = db.session.get(model, row.a_id), db.session.get(model, row.b_id)
    if a is None or b is None or a.deleted or b.deleted:
        return None
    ra, rb = root_of(db.session, row.entity, a.id), root_of(db.session, row.entity, b.id)
    if ra is not None and rb is not None and ra.id == rb.id:
        return None  # merged meanwhile (another decision, or the workers)
    va, vb = record_values(row.entity, a, names), record_values(row.entity, b, names)
    fields = [
        {
            "key": key,
            "label": en if names.lang == "en" else zh,
            "a": va.get(key, ""),
            "b": vb.get(key, ""),
            "differs": key != "created" and va.get(key, "") != vb.get(key, ""),
        }
        for key, zh, en in FIELDS[row.entity]
    ]
    return {
        "id": row.id,
        "entity": row.entity,
        "status": row.status,
        "score": round(row.score or 0.0, 3),
        "rule": row.rule,
        "rule_text": rule_text(row.rule, names.lang),
        "features": row.features,
        "a_id": row.a_id,
        "b_id": row.b_id,
        "fields": fields,
        "differs": [f["key"] for f in fields if f["differs"]],
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }


def _open_candidates(entity: str | None, page: int, per_page: int) -> tuple[list, int]:
    query = select(ReviewCandidate).where(ReviewCandidate.status.in_(REVIEW_OPEN))
    if entity:
        query = query.where(ReviewCandidate.entity == entity)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    # Pending before "not sure", strongest first: the likeliest merges are decided first.
    query = query.order_by(
        case((ReviewCandidate.status == "pending", 0), else_=1),
        ReviewCandidate.score.desc(),
        ReviewCandidate.id,
    )
    rows = db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), total


def link_view(link: MergeLink, names: _Names) -> dict[str, Any]:
    """A merge link for the page and the API."""
    return {
        "id": link.id,
        "entity": link.entity,
        "record_id": link.record_id,
        "canonical_id": link.canonical_id,
        "status": link.status,
        "status_text": STATUSES.get(link.status, ("", ""))[1 if names.lang == "en" else 0],
        "rule": link.rule,
        "rule_text": rule_text(link.rule, names.lang),
        "score": link.score,
        "features": link.features,
        "decided_by": link.decided_by,
        "review_id": link.review_id,
        "parent_id": link.parent_id,
        "created_at": link.created_at.isoformat() if link.created_at else None,
        "when": names.when(link.created_at),
    }


def _entity_arg() -> str | None:
    return choice_arg("entity", DEDUP_ENTITIES)


# --------------------------------------------------------------------------- the page


@bp.get("/review")
@web_login_required(*REVIEWERS)
def page():  # noqa: ANN201
    """The review queue: pairs side by side, accept / reject / not sure, recent merges."""
    lang = page_lang()
    names = _Names(lang)
    entity = _entity_arg()
    page_no = page_arg()
    rows, total = _open_candidates(entity, page_no, PER_PAGE)
    pairs = [v for v in (candidate_view(r, names) for r in rows) if v is not None]
    links = db.session.scalars(
        select(MergeLink)
        .where(MergeLink.status == LINK_ACTIVE, MergeLink.rule != "chain")
        .order_by(MergeLink.id.desc())
        .limit(20)
    ).all()
    return render_template(
        "review/index.html",
        pairs=pairs,
        total=total,
        page=page_no,
        per_page=PER_PAGE,
        entity=entity,
        entities=DEDUP_ENTITIES,
        links=[link_view(x, names) for x in links],
        lang=lang,
        t=lambda key: _t(key, lang),
        entity_name=lambda e: ENTITY_NAMES[e][1 if lang == "en" else 0],
        # worker/merges.py: "worker" is the dedup workers, otherwise a reviewer's name
        by_text=lambda by: ("自动去重", "automatic dedup")[lang == "en"] if by == "worker" else by,
    )


def _back(anchor: str | None = None):  # noqa: ANN202
    args = {
        k: v
        for k, v in (
            ("entity", request.form.get("entity") or None),
            ("page", request.form.get("page") or None),
        )
        if v
    }
    return redirect(url_for("review.page", **args, _anchor=anchor))


@bp.post("/review/<int:candidate_id>/decision")
@web_login_required(*REVIEWERS)
def page_decision(candidate_id: int):  # noqa: ANN201
    """A decision from the page's form; back to the queue at the next pair."""
    try:
        decide(
            db.session,
            candidate_id,
            body_text(request.form, "decision", 16) or "",
            current_web_user(),
            note=body_text(request.form, "note", 2000, multiline=True),
        )
        db.session.commit()
    except MergeError as err:
        db.session.rollback()
        if err.status == 400:
            abort(400, err.message)
    nxt = request.form.get("next_id")
    return _back(f"c-{nxt}" if nxt else None)


@bp.post("/review/merges/<int:link_id>/undo")
@web_login_required(*REVIEWERS)
def page_undo(link_id: int):  # noqa: ANN201
    """Undo a merge from the page."""
    try:
        undo_merge(
            db.session,
            link_id,
            current_web_user(),
            reason=body_text(request.form, "reason", 2000, multiline=True)
            or "undone on the review page",
        )
        db.session.commit()
    except MergeError as err:
        db.session.rollback()
        if err.status == 404:
            abort(404)
    return _back("merges")


# --------------------------------------------------------------------------- JSON API


def _api_error(err: MergeError) -> ApiError:
    return ApiError(err.status, err.code, err.message)


@bp.get("/api/review/candidates")
@roles_required(*REVIEWERS)
def api_candidates():  # noqa: ANN201
    """Open review candidates, strongest first, both records included."""
    names = _Names(choice_arg("lang", ("zh", "en"), "zh"))
    per_page = per_page_arg()
    page_no = page_arg()
    rows, total = _open_candidates(_entity_arg(), page_no, per_page)
    items = [v for v in (candidate_view(r, names) for r in rows) if v is not None]
    return jsonify({"items": items, "page": page_no, "per_page": per_page, "total": total})


@bp.post("/api/review/candidates/<int:candidate_id>/decision")
@roles_required(*REVIEWERS)
def api_decision(candidate_id: int):  # noqa: ANN201
    """{"decision": "accept" | "reject" | "unsure", "note"?} → the candidate (and its merge)."""
    body = json_body()
    try:
        row = decide(
            db.session,
            candidate_id,
            body_text(body, "decision", 16) or "",
            g.user,
            note=body_text(body, "note", 2000, multiline=True),
        )
        db.session.commit()
    except MergeError as err:
        db.session.rollback()
        raise _api_error(err) from None
    return jsonify(
        {
            "id": row.id,
            "status": row.status,
            "merge_id": row.merge_id,
            "entity": row.entity,
            "a_id": row.a_id,
            "b_id": row.b_id,
        }
    )


@bp.get("/api/merges")
@roles_required(*REVIEWERS)
def api_merges():  # noqa: ANN201
    """Merge links, newest first (?entity=, ?status=active|undone|superseded, ?record_id=)."""
    names = _Names("zh")
    query = select(MergeLink)
    if entity := _entity_arg():
        query = query.where(MergeLink.entity == entity)
    if status := choice_arg("status", LINK_STATUSES):
        query = query.where(MergeLink.status == status)
    if record_id := text_arg("record_id", max_len=64):
        query = query.where(
            (MergeLink.record_id == record_id) | (MergeLink.canonical_id == record_id)
        )
    per_page = per_page_arg()
    page_no = page_arg()
    rows = db.session.scalars(
        query.order_by(MergeLink.id.desc()).limit(per_page).offset((page_no - 1) * per_page)
    ).all()
    return jsonify(
        {"items": [link_view(x, names) for x in rows], "page": page_no, "per_page": per_page}
    )


@bp.post("/api/merges/<int:link_id>/undo")
@roles_required(*REVIEWERS)
def api_undo(link_id: int):  # noqa: ANN201
    """Undo a merge: {"reason"?}; the record stands alone again and is not re-merged."""
    body = json_body() if request.data else {}
    try:
        link = undo_merge(
            db.session, link_id, g.user, reason=body_text(body, "reason", 2000, multiline=True)
        )
        db.session.commit()
    except MergeError as err:
        db.session.rollback()
        raise _api_error(err) from None
    return jsonify(link_view(link, _Names("zh")))
