"""催报: who has not reported in a period, and one click to remind them.

Coordinators and admins see the city, district heads their district, group leaders
their work group. The page lists the cadres without a visit in the period (with
checkboxes), the work groups without a visit and the districts short of their targets;
one click sends each selected cadre an e-mail through the worker (exactly once per
click: the form's one-time key), and the page then shows per recipient: sent, opened
(the mail's link was followed) and reported afterwards. The logic is in
server/nonreporters.py; the mails in worker/nonreporters.py.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from server.coordination import dashboard as dash
from server.coordination.filters import Filters
from server.extensions import db
from server.models import DistrictUnit, Role, User
from server.models_nonreporters import ReportReminder, ReportReminderBatch
from server.nonreporters import (
    create_batch,
    district_shortfalls,
    mark_opened,
    non_reporters,
    reported_after,
)
from server.params import ParamError, body_text, choice_arg, date_arg
from server.web import current_web_user, web_login_required
from worker.briefing.compute import PERIOD_KINDS, period_containing, vocabulary

bp = Blueprint("nonreporters", __name__)
ROLES = (
    Role.ADMIN.value,
    Role.COORDINATOR.value,
    Role.DISTRICT_HEAD.value,
    Role.GROUP_LEADER.value,
)
PERIOD_LABELS = {"week": "本周", "month": "本月", "campaign": "活动以来"}


def register(app: Flask) -> None:
    app.register_blueprint(bp)


def _settings():  # noqa: ANN202
    return current_app.config["FV"]


def _scope(user: User) -> tuple[frozenset[int] | None, int | None]:
    if user.role in (Role.ADMIN, Role.COORDINATOR):
        return None, None
    if user.role == Role.GROUP_LEADER:
        return None, user.work_group_id if user.work_group_id else -1
    return frozenset({user.district_id} if user.district_id else ()), None


def _period(kind: str | None, day: date | None):  # noqa: ANN202
    settings = _settings()
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo(settings.TIMEZONE)).date()
    return period_containing(
        kind or "week",
        day or today,
        date.fromisoformat(settings.CAMPAIGN_START),
        settings.TIMEZONE,
    )


def _view(user: User, kind: str | None, day: date | None) -> dict:
    period = _period(kind, day)
    districts, group = _scope(user)
    found = non_reporters(db.session, period.bounds(), districts, group)
    shortfalls = []
    if group is None:
        f = Filters(
            period.start,
            period.last_day,
            None,
            (),
            districts,
            _settings().TIMEZONE,
        )
        rows = dash.dashboard(db.session, f)["rows"]
        shortfalls = district_shortfalls(rows, vocabulary()["targets"])
    names = dict(db.session.execute(select(DistrictUnit.id, DistrictUnit.name)).all())
    return {"period": period, "found": found, "shortfalls": shortfalls, "names": names}


def _batches(user: User) -> list[dict]:
    """The recent clicks in the user's scope with each recipient's state."""
    districts, group = _scope(user)
    batches = db.session.scalars(
        select(ReportReminderBatch).order_by(ReportReminderBatch.id.desc()).limit(10)
    ).all()
    out = []
    for b in batches:
        rows = []
        for r, person in db.session.execute(
            select(ReportReminder, User)
            .join(User, User.id == ReportReminder.user_id)
            .where(ReportReminder.batch_id == b.id)
            .order_by(User.username)
        ):
            if districts is not None and person.district_id not in districts:
                continue
            if group is not None and person.work_group_id != group:
                continue
            rows.append({"r": r, "user": person, "reported": reported_after(db.session, r)})
        if rows:
            out.append({"batch": b, "rows": rows})
    return out


@bp.get("/nonreporters")
@web_login_required(*ROLES)
def page():  # noqa: ANN201
    user = current_web_user()
    kind = choice_arg("period", PERIOD_KINDS)
    day = date_arg("day", None)
    view = _view(user, kind, day)
    return render_template(
        "nonreporters/page.html",
        **view,
        kinds=PERIOD_KINDS,
        labels=PERIOD_LABELS,
        kind=view["period"].kind,
        day=day,
        batches=_batches(user),
        key=secrets.token_urlsafe(24),
    )


@bp.post("/nonreporters/remind")
@web_login_required(*ROLES)
def remind():  # noqa: ANN201
    """Remind the selected non-reporters; a resent form (same key) sends nothing twice."""
    user = current_web_user()
    key = body_text(request.form, "key", 64) or ""
    kind = body_text(request.form, "period", 10) or "week"
    if kind not in PERIOD_KINDS or len(key) < 16:
        raise ParamError("period" if kind not in PERIOD_KINDS else "key", "invalid form")
    day_text = body_text(request.form, "day", 10)
    try:
        day = date.fromisoformat(day_text) if day_text else None
    except ValueError:
        raise ParamError("day", "expected YYYY-MM-DD") from None
    period = _period(kind, day)
    districts, group = _scope(user)
    found = non_reporters(db.session, period.bounds(), districts, group)
    wanted = set(request.form.getlist("user"))
    # Only non-reporters in the sender's scope can be reminded, whatever the form says.
    chosen = [u for u in found.cadres if str(u.id) in wanted]
    if not chosen:
        flash("请至少选择一名未报送的干部", "error")
        return redirect(url_for("nonreporters.page", period=kind, day=day_text or None))
    batch, created = create_batch(
        db.session,
        key=key,
        sender=user,
        period_kind=period.kind,
        period_start=period.start,
        period_end=period.end,
        recipients=[(u, [{"code": "no_visit"}]) for u in chosen],
        mail_domain=_settings().MAIL_FROM.rpartition("@")[2],
    )
    if created:
        from server.briefing_web import enqueue_task

        enqueue_task("worker.tasks.report_reminders_send", {"batch_id": batch.id})
        flash(f"已提交 {len(chosen)} 条催报提醒，将由后台发送", "ok")
    else:
        flash("这次催报已经提交过，没有重复发送", "ok")
    return redirect(url_for("nonreporters.page", period=kind, day=day_text or None))


@bp.get("/r/<token>")
def opened(token: str):  # noqa: ANN201
    """A reminder's link: note that it was opened, then open the field app."""
    if len(token) > 64:
        abort(404)
    reminder = mark_opened(db.session, token, datetime.now(UTC))
    if reminder is None:
        abort(404)
    db.session.commit()
    return redirect("/")
