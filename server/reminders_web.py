"""Deadline reminders over HTTP: the in-app list and acknowledgement (bearer token, for
the field app), the open problems' deadline colours for the app, and the mailed
acknowledgement link (signed, no sign-in).

HTTP only: the logic is in server/reminders.py and server/deadlines.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, render_template, request

from server import deadlines, reminders
from server.auth import login_required
from server.errors import ApiError
from server.extensions import db
from server.models_deadlines import ReminderDigest

bp = Blueprint("reminders", __name__)


def register(app: Flask) -> None:
    app.register_blueprint(bp)


def _settings() -> Any:
    return current_app.config["FV"]


@bp.app_context_processor
def _deadline_helpers() -> dict[str, Any]:
    return {"deadline_of": deadline_of}


def deadline_of(problem: Any) -> dict[str, Any]:
    """A problem's deadline for the pages: due date, colour, days, owner, clock start."""
    rules = deadlines.current_rules(_settings())
    st = deadlines.state_of(problem, deadlines.today(None, rules.tz), rules)
    started = problem.stage_started_at
    return {
        **st.as_dict(),
        "handling_days": st.handling_days,
        "started": deadlines.local_day(started, rules.tz).isoformat() if started else "",
        "owner": deadlines.owner_name(db.session, problem.owner_level, problem.owner_work_group_id),
    }


@bp.get("/api/reminders")
@login_required
def my_reminders():  # noqa: ANN201
    """The signed-in user's reminders, newest first (the app's 督办提醒 list)."""
    items = reminders.user_reminders(db.session, g.user.id)
    return jsonify(
        {
            "items": items,
            "unacknowledged": sum(1 for i in items if i["acknowledged_at"] is None),
        }
    )


@bp.post("/api/reminders/<int:reminder_id>/ack")
@login_required
def ack_one(reminder_id: int):  # noqa: ANN201
    """Acknowledge one of the user's own reminders (404 for anyone else's)."""
    mine = {i["id"]: i for i in reminders.user_reminders(db.session, g.user.id, limit=10_000)}
    if reminder_id not in mine:
        raise ApiError(404, "not_found", "no such reminder of yours")
    newly = reminders.acknowledge(db.session, g.user.id, reminder_ids=[reminder_id], via="app")
    return jsonify({"id": reminder_id, "acknowledged": True, "newly": newly})


@bp.get("/api/problems/deadlines")
@login_required
def problem_deadlines():  # noqa: ANN201
    """Every open problem in the user's scope with its deadline and colour today, so
    the field app's 问题跟进 shows the same colours as the web pages."""
    rules = deadlines.current_rules(_settings())
    on = deadlines.today(datetime.now(UTC), rules.tz)
    rows = deadlines.open_problems(db.session, rules, on, g.scope.read)
    return jsonify(
        {
            "today": on.isoformat(),
            "rules": {"near_days": rules.near_days, "behind_share": rules.behind_share},
            "items": [
                {
                    "id": p.id,
                    "stage": p.stage,
                    "owner_level": p.owner_level,
                    "owner": deadlines.owner_name(db.session, p.owner_level, p.owner_work_group_id),
                    "stage_started_at": p.stage_started_at.isoformat()
                    if p.stage_started_at
                    else None,
                    **p.state.as_dict(),
                }
                for p in rows
            ],
        }
    )


@bp.route("/reminders/ack/<token>", methods=["GET", "POST"])
def ack_link(token: str):  # noqa: ANN201
    """The mailed link: GET shows the digest's reminders (mail scanners prefetch links),
    POST records that the recipient saw them."""
    found = reminders.read_ack_token(_settings(), token)
    digest = db.session.get(ReminderDigest, found[0]) if found else None
    if digest is None or digest.user_id != found[1]:
        return render_template("reminders/ack.html", state="invalid"), 404
    newly = 0
    if request.method == "POST":
        newly = reminders.acknowledge(db.session, digest.user_id, digest_id=digest.id, via="mail")
    items = reminders.digest_items(db.session, digest.id)
    state = "done" if request.method == "POST" else "ask"
    return render_template("reminders/ack.html", state=state, items=items, newly=newly)
