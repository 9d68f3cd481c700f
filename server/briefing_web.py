"""Briefings on the web: district and city pages, XLSX downloads, the JSON API, the
unsubscribe link, and the admin pages (recipients, deliveries, the file outbox).

HTTP only: the figures come from worker.briefing.compute, the sending from
worker.briefing.deliver.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, select

from server.auth import login_required
from server.errors import ApiError
from server.extensions import db
from server.models import DistrictUnit, Role, User
from server.models_briefing import (
    CITY_SCOPE,
    DELIVERY_STATUSES,
    BriefingDelivery,
    BriefingRecipient,
)
from server.params import (
    ParamError,
    body_int,
    body_text,
    choice_arg,
    date_arg,
    parse_date,
    text_arg,
)
from server.web import current_web_user, page_lang, web_login_required
from worker.briefing import mail
from worker.briefing.compute import (
    PERIOD_KINDS,
    Period,
    build_all,
    labels,
    period_containing,
    vocabulary,
)
from worker.briefing.deliver import plan_deliveries, retry_failed
from worker.briefing.render import (
    bar_rows,
    briefing_context,
    city_context,
    mask_name,
    pct,
    signed,
    yuan,
)

bp = Blueprint("briefing", __name__)

SEE_ALL = (Role.ADMIN.value, Role.COORDINATOR.value, Role.SUPERVISOR.value)
_EML_NAME = re.compile(r"^[0-9a-f]{24}\.eml$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def register(app: Flask) -> None:
    """Attach the briefing pages, and the web sign-in unless another module did."""
    from server import web

    if "web" not in app.blueprints:
        app.register_blueprint(web.bp)
    app.register_blueprint(bp)


# ---------------------------------------------------------------------------- helpers


def _settings() -> Any:
    return current_app.config["FV"]


def _period_from_request() -> Period:
    """?period=week|month|campaign&start=YYYY-MM-DD; default: the period containing today."""
    settings = _settings()
    kind = choice_arg("period", PERIOD_KINDS, "week")
    day = date_arg("start") or datetime.now(ZoneInfo(settings.TIMEZONE)).date()
    return period_containing(
        kind, day, date.fromisoformat(settings.CAMPAIGN_START), settings.TIMEZONE
    )


def _may_see(user: User, code: str) -> bool:
    """District heads (and cadres) see their own district; city staff see every one."""
    if user.role in SEE_ALL:
        return True
    return code != CITY_SCOPE and user.district is not None and user.district.code == code


# ---------------------------------------------------------------------------- pages


@bp.get("/briefings/")
@web_login_required()
def index():  # noqa: ANN201
    """Where a signed-in user starts: their district, or every district for city staff."""
    user = current_web_user()
    assert user is not None
    # Only the period's own parameters carry over (a stray ?code= or ?_scheme= must not).
    args = {k: v for k in ("period", "start") if (v := text_arg(k, max_len=16))}
    if user.role not in SEE_ALL:
        if user.district is None:
            abort(403)
        return redirect(url_for("briefing.district_page", code=user.district.code, **args))
    return redirect(url_for("briefing.district_page", code=CITY_SCOPE, **args))


@bp.get("/briefings/<code>")
@web_login_required()
def district_page(code: str):  # noqa: ANN201
    """A district's briefing, or with code 'city' the city-wide one (printable)."""
    user = current_web_user()
    if code == CITY_SCOPE:
        return city_page()
    if not _may_see(user, code):
        abort(403)
    period = _period_from_request()
    _, by_code = build_all(db.session, period)
    briefing = by_code.get(code)
    if briefing is None:
        abort(404)
    ctx = briefing_context(briefing, request.url)
    if page_lang() == "en":
        ctx = _english_district(ctx)
    return render_template(
        "briefing/district.html", **ctx, kinds=_kinds(period, code), see_all=user.role in SEE_ALL
    )


def city_page():  # noqa: ANN201
    user = current_web_user()
    if user is None or user.role not in SEE_ALL:
        abort(403)
    period = _period_from_request()
    city = build_all(db.session, period)[0]
    ctx = city_context(city, request.url)
    if page_lang() == "en":
        ctx.update(names_en=_district_names_en(), kind_en=KIND_EN, period_en=period_label_en)
    return render_template("briefing/city.html", **ctx, kinds=_kinds(period, CITY_SCOPE))


# ---------------------------------------------------------------------------- English
# The briefing's figures are labelled in Chinese for the mails (worker/briefing/render.py);
# the web pages follow the reader's language (?lang=en, remembered: server/web.page_lang)
# and relabel them from the vocabulary's English names here.


def _labels_en(kind: str) -> dict[str, str]:
    return {r["code"]: r.get("name_en") or r["name"] for r in vocabulary()[kind]}


def _district_names_en() -> dict[str, str]:
    return dict(db.session.execute(select(DistrictUnit.code, DistrictUnit.name_en)).all())


def period_label_en(period: Period) -> str:
    """The period as an English reader names it: Week 10, 2026 (2 Mar – 8 Mar), March 2026."""
    last = period.last_day
    if period.kind == "week":
        year, week, _ = period.start.isocalendar()
        return f"Week {week}, {year} ({period.start:%-d %b} – {last:%-d %b})"
    if period.kind == "month":
        return f"{period.start:%B %Y}"
    return f"Since the campaign began ({period.start:%Y.%m.%d} – {last:%Y.%m.%d})"


KIND_EN = {"week": "weekly", "month": "monthly", "campaign": "to date"}
TARGETS_EN = ("Enterprises visited", "Enterprise types", "Workers met face to face", "Cadres")


def _english_district(ctx: dict[str, Any]) -> dict[str, Any]:
    """The district page's labels in English (the numbers are the same)."""
    cur, t = ctx["cur"], ctx["b"].targets
    out = dict(ctx)
    out["name_en"] = _district_names_en().get(cur.code, cur.name)
    out["period_label"] = period_label_en(ctx["period"])
    out["kind_label"] = KIND_EN[ctx["period"].kind]
    goals = (
        f"≥{t['enterprises']}",
        f"≥{t['enterprise_types']}",
        f"≥{t['workers_met']}",
        f"{round(t['cadre_participation'] * 100)}%",
    )
    out["targets"] = [
        {**row, "label": label, "target": goal, "unit": ""}
        | ({"note": f"{cur.cadres_active}/{cur.cadres_total}"} if row.get("note") else {})
        for row, label, goal in zip(ctx["targets"], TARGETS_EN, goals, strict=True)
    ]
    cats, stages = _labels_en("categories"), _labels_en("stages")
    out["methods"] = bar_rows(cur.visits_by_method, _labels_en("methods"))
    out["focus"] = bar_rows(cur.focus_groups, _labels_en("focus_groups"))
    out["categories"] = bar_rows({k: v for k, v in cur.problems_by_category.items() if v}, cats)
    out["stages"] = bar_rows(cur.problems_by_stage, stages)
    out["types"] = bar_rows(cur.enterprises_by_type, _labels_en("enterprise_type_tags"))
    out["tags"] = bar_rows(cur.problems_by_tag or {}, _labels_en("problem_tags"))
    if cur.oldest_open is not None and ctx["oldest"]:
        out["oldest"] = {
            **ctx["oldest"],
            "category": cats.get(cur.oldest_open.category, cur.oldest_open.category),
            "stage": stages.get(cur.oldest_open.stage, cur.oldest_open.stage),
        }
    red = {r["problem_id"]: r for r in cur.red_list}
    out["red_list"] = [
        {
            **r,
            "category": cats.get(red[r["problem_id"]]["category"], r["category"]),
            "stage": stages.get(red[r["problem_id"]]["stage"], r["stage"]),
        }
        for r in ctx["red_list"]
    ]
    return out


def _lang_ctx() -> dict[str, Any]:
    """The reader's language and the link that switches it (this page, other language)."""
    lang = page_lang()
    args = {**request.args.to_dict(), "lang": "zh" if lang == "en" else "en"}
    return {
        "lang": lang,
        "other_lang": url_for(request.endpoint, **{**request.view_args, **args}),
        "sg": signed_en if lang == "en" else signed,
    }


def signed_en(value: int | float | None) -> str:
    """render.signed in English: +3, -2, +5 points (a share), unchanged."""
    if value is None:
        return "—"
    if isinstance(value, float):
        value = round(value * 100)
        return f"{value:+d} points" if value else "unchanged"
    return f"{value:+d}" if value else "unchanged"


def _kinds(period: Period, code: str) -> list[dict[str, Any]]:
    """The period switcher's links: this kind's previous/next, and the other kinds."""
    prev = period.previous()
    nxt = period_containing(period.kind, period.end, period.start, period.tz)
    if period.kind == "campaign":
        nxt = period_containing(
            "campaign",
            period.last_day.fromordinal(period.last_day.toordinal() + 7),
            period.start,
            period.tz,
        )
    links = [
        (("上一期", "Previous"), period.kind, prev.key_date),
        (("下一期", "Next"), period.kind, nxt.key_date),
        (("周报", "Weekly"), "week", period.last_day),
        (("月报", "Monthly"), "month", period.last_day),
        (("累计", "To date"), "campaign", period.last_day),
    ]
    en = page_lang() == "en"
    return [
        {
            "label": label[1 if en else 0],
            "url": url_for("briefing.district_page", code=code, period=kind, start=day.isoformat()),
        }
        for label, kind, day in links
    ]


@bp.get("/briefings/<code>/xlsx")
@web_login_required()
def download(code: str):  # noqa: ANN201
    """The briefing's tables as an .xlsx workbook."""
    from worker.briefing.xlsx import city_workbook, district_workbook

    user = current_web_user()
    if not _may_see(user, code):
        abort(403)
    period = _period_from_request()
    city, by_code = build_all(db.session, period)
    if code == CITY_SCOPE:
        data, name = city_workbook(city), "全市"
    elif code in by_code:
        data, name = district_workbook(by_code[code]), by_code[code].current.name
    else:
        abort(404)
    filename = f"走访简报-{name}-{period.kind}-{period.key_date.isoformat()}.xlsx"
    from urllib.parse import quote

    return Response(
        data,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": f'attachment; filename="briefing-{code}.xlsx"; '
            f"filename*=UTF-8''{quote(filename)}"
        },
    )


# ---------------------------------------------------------------------------- JSON API


@bp.get("/api/briefings/<code>")
@login_required
def api_briefing(code: str):  # noqa: ANN201
    """GET /api/briefings/<district_code>?period=week&start=YYYY-MM-DD (or code 'city')."""
    period = _period_from_request()
    if code == CITY_SCOPE:
        if g.scope.read is not None:
            raise ApiError(403, "forbidden", "the city-wide briefing is for city staff")
        return jsonify(build_all(db.session, period)[0].to_dict())
    unit = db.session.scalar(select(DistrictUnit).where(DistrictUnit.code == code))
    if unit is None:
        raise ApiError(404, "not_found", f"no district unit {code}")
    # District heads read only their own unit (their scope is exactly that).
    if not g.scope.can_read(unit.id) or (
        g.user.role not in SEE_ALL and g.user.district_id != unit.id
    ):
        raise ApiError(403, "forbidden", "this district's briefing is not yours to read")
    _, by_code = build_all(db.session, period)
    if code not in by_code:
        raise ApiError(404, "not_found", f"district unit {code} is inactive")
    return jsonify(by_code[code].to_dict())


# ---------------------------------------------------------------------------- unsubscribe


@bp.route("/briefings/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str):  # noqa: ANN201
    """The emailed opt-out link. GET asks (mail scanners prefetch links); POST does it —
    also the RFC 8058 one-click POST from the mail app."""
    found = mail.read_unsubscribe_token(_settings(), token)
    recipient = db.session.get(BriefingRecipient, found[0]) if found else None
    if recipient is None or recipient.email.lower() != found[1]:
        return render_template("briefing/unsubscribe.html", state="invalid"), 404
    if request.method == "POST":
        if recipient.unsubscribed_at is None:
            recipient.unsubscribed_at = datetime.now(UTC)
            db.session.commit()
        return render_template("briefing/unsubscribe.html", state="done", r=recipient)
    return render_template(
        "briefing/unsubscribe.html", state="ask", r=recipient, masked=_mask_email(recipient.email)
    )


def _mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:2]}***@{domain}"


# ---------------------------------------------------------------------------- admin


def _district_choices() -> list[tuple[str, str]]:
    units = db.session.scalars(
        select(DistrictUnit).where(DistrictUnit.active.is_(True)).order_by(DistrictUnit.code)
    )
    return [(CITY_SCOPE, "全市（协调组）")] + [(u.code, u.name) for u in units]


@bp.route("/briefings/admin/recipients", methods=["GET", "POST"])
@web_login_required(Role.ADMIN.value)
def recipients():  # noqa: ANN201
    """Who receives which briefing: add, pause, resubscribe, remove."""
    choices = _district_choices()
    if request.method == "POST":
        action = request.form.get("action", "add")
        if action == "add":
            district = body_text(request.form, "district", 16) or ""
            email = (body_text(request.form, "email", 254) or "").strip().lower()
            if district not in dict(choices) or not _EMAIL.match(email):
                flash("请选择单位并填写有效的邮箱地址", "error")
            elif db.session.scalar(
                select(BriefingRecipient).where(
                    BriefingRecipient.district == district, BriefingRecipient.email == email
                )
            ):
                flash("该邮箱已在此单位的接收名单中", "error")
            else:
                db.session.add(
                    BriefingRecipient(
                        district=district,
                        email=email,
                        name=(body_text(request.form, "name", 64) or ""),
                    )
                )
                db.session.commit()
                flash("已添加", "ok")
        else:
            r = db.session.get(BriefingRecipient, body_int(request.form, "id", 1, 2**31 - 1) or 0)
            if r is None:
                abort(404)
            if action == "delete":
                db.session.delete(r)
            elif action == "toggle":
                r.active = not r.active
            elif action == "resubscribe":
                r.unsubscribed_at = None
            db.session.commit()
        return redirect(url_for("briefing.recipients"))
    rows = db.session.scalars(
        select(BriefingRecipient).order_by(BriefingRecipient.district, BriefingRecipient.email)
    ).all()
    return render_template(
        "briefing/recipients.html", rows=rows, choices=choices, names=dict(choices)
    )


@bp.get("/briefings/admin/deliveries")
@web_login_required(Role.ADMIN.value, Role.COORDINATOR.value)
def deliveries():  # noqa: ANN201
    """What was sent to whom; failures with their error and a 'send again' button."""
    status = choice_arg("status", DELIVERY_STATUSES)
    query = select(BriefingDelivery).order_by(BriefingDelivery.id.desc()).limit(500)
    if status:
        query = query.where(BriefingDelivery.status == status)
    rows = db.session.scalars(query).all()
    failed_retrying, failed_for_good = (
        db.session.scalar(
            select(func.count())
            .select_from(BriefingDelivery)
            .where(BriefingDelivery.status == "failed", cond)
        )
        for cond in (
            BriefingDelivery.next_attempt_at.is_not(None),
            BriefingDelivery.next_attempt_at.is_(None),
        )
    )
    return render_template(
        "briefing/deliveries.html",
        rows=rows,
        failed_retrying=failed_retrying,
        failed_for_good=failed_for_good,
        tz=ZoneInfo(_settings().TIMEZONE),
        status=status,
        statuses=DELIVERY_STATUSES,
        names=dict(_district_choices()),
        smtp=_settings().SMTP_HOST,
    )


@bp.post("/briefings/admin/send")
@web_login_required(Role.ADMIN.value)
def send_now():  # noqa: ANN201
    """Build and send a period's briefings now (idempotent: sent rows are not resent)."""
    try:
        kind = body_text(request.form, "period", 16) or "week"
        if kind not in PERIOD_KINDS:
            raise ParamError("period", f"expected one of {', '.join(PERIOD_KINDS)}")
        period = period_containing(
            kind,
            parse_date("start", body_text(request.form, "start", 10) or ""),
            date.fromisoformat(_settings().CAMPAIGN_START),
            _settings().TIMEZONE,
        )
    except ParamError:
        flash("请选择有效的简报类型和日期", "error")
        return redirect(url_for("briefing.deliveries"))
    # Only queues: the rows are planned here (a few inserts) and the worker computes the
    # period once and sends. With the broker down the sweep takes the rows within minutes.
    plan = plan_deliveries(db.session, _settings(), period)
    queued = enqueue_task(
        "worker.tasks.briefings_scheduled",
        {"kind": period.kind, "day": period.last_day.isoformat()},
    )
    waiting = len(plan.to_send)
    if queued:
        flash(f"{period.label}：新建{plan.created}条，{waiting}条待发送，已交后台发送。", "ok")
    else:
        flash(
            f"{period.label}：新建{plan.created}条，{waiting}条待发送；任务队列暂不可用，"
            "后台将在几分钟内自动补发。",
            "error",
        )
    return redirect(url_for("briefing.deliveries"))


def enqueue_task(name: str, kwargs: dict[str, Any]) -> bool:
    """Hand a task to the workers; False when the broker cannot be reached (then the
    beat's sweep picks up what was planned)."""
    from celery import Celery

    settings = _settings()
    producer = current_app.extensions.get("fieldvisit.briefing_producer")
    if producer is None:
        producer = Celery(
            "fieldvisit-web-briefing", broker=settings.broker_url, set_as_current=False
        )
        options = (
            {"socket_connect_timeout": 1, "socket_timeout": 1, "max_retries": 0}
            if settings.REDIS_URL
            else {}
        )
        producer.conf.update(
            broker_connection_timeout=1,
            broker_connection_retry=False,
            broker_transport_options=options,
        )
        current_app.extensions["fieldvisit.briefing_producer"] = producer
    try:
        producer.send_task(name, kwargs=kwargs, retry=False)
    except Exception:  # noqa: BLE001 - a broker outage must not fail the page
        current_app.logger.warning("broker unavailable: %s waits for the sweep", name)
        return False
    return True


@bp.post("/briefings/admin/deliveries/<int:delivery_id>/retry")
@web_login_required(Role.ADMIN.value)
def retry(delivery_id: int):  # noqa: ANN201
    """Send a failed delivery again (queued to the workers like 立即发送)."""
    if retry_failed(db.session, delivery_id):
        enqueue_task("worker.tasks.briefing_send", {"delivery_id": delivery_id})
    return redirect(url_for("briefing.deliveries"))


@bp.get("/briefings/admin/outbox")
@web_login_required(Role.ADMIN.value, Role.COORDINATOR.value)
def outbox():  # noqa: ANN201
    """Messages written to DATA_DIR/outbox-mail (no SMTP server configured)."""
    folder = mail.outbox_dir(_settings())
    files = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True)
    items = []
    for path in files[:300]:
        msg = message_from_bytes(path.read_bytes(), policy=default_policy)
        items.append(
            {
                "name": path.name,
                "subject": msg["Subject"],
                "to": msg["To"],
                "date": msg["Date"],
                "size": path.stat().st_size,
            }
        )
    return render_template(
        "briefing/outbox.html", items=items, folder=str(folder), smtp=_settings().SMTP_HOST
    )


@bp.get("/briefings/admin/outbox/<name>")
@web_login_required(Role.ADMIN.value, Role.COORDINATOR.value)
def outbox_message(name: str):  # noqa: ANN201
    """One message of the file outbox: headers, the HTML as a mail app shows it, the text."""
    if not _EML_NAME.match(name):
        abort(404)
    path = mail.outbox_dir(_settings()) / name
    if not path.exists():
        abort(404)
    msg = message_from_bytes(path.read_bytes(), policy=default_policy)
    html = msg.get_body(("html",))
    text = msg.get_body(("plain",))
    return render_template(
        "briefing/outbox_message.html",
        name=name,
        msg=msg,
        headers=[
            (k, msg[k]) for k in ("Subject", "From", "To", "Date", "Message-ID", "List-Unsubscribe")
        ],
        html=html.get_content() if html else "",
        text=text.get_content() if text else "",
        structure=[p.get_content_type() for p in msg.walk()],
    )


# Helpers shared with the templates.
for _name, _fn in (("mask_name", mask_name), ("yuan", yuan), ("pct", pct), ("signed", signed)):
    bp.add_app_template_filter(_fn, _name)


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"vocab_labels": labels}


@bp.context_processor
def _language() -> dict[str, Any]:
    return _lang_ctx() if request.endpoint else {}
