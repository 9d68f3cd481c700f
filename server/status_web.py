"""The public status page of a problem (查询码) and the endpoints that issue and revoke
codes. HTTP only: the logic is in server/status_codes.py.

- `GET /q` — a form to type a code; `POST /q` — look it up (the code stays out of the
  URL, so out of logs and histories); `GET /q/<code>` — the same for a printed link.
  No sign-in; every lookup counts toward STATUS_LOOKUPS_PER_WINDOW per client address
  and STATUS_LOOKUP_WINDOW_SECONDS (then 429). Unknown and revoked codes answer alike.
- `POST /api/problems/<id>/status-code` (bearer token, write scope over the problem's
  district): a new code, returned once; `POST /api/problems/<id>/status-code/revoke`.
- `POST /problems/<id>/status-code` (web, CSRF): the same for the tracker page.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    render_template,
    request,
)

from server import status_codes
from server.auth import login_required
from server.errors import ApiError
from server.extensions import db
from server.models import Problem, Role
from server.scope import scope_of
from server.web import current_web_user, web_login_required

bp = Blueprint("status", __name__)


def register(app: Flask) -> None:
    app.register_blueprint(bp)


def _settings() -> Any:
    return current_app.config["FV"]


def _client() -> str:
    """A keyed hash of the client's address: the rate limit's key, no address stored."""
    address = request.remote_addr or "unknown"
    return hmac.new(_settings().SECRET_KEY.encode(), address.encode(), hashlib.sha256).hexdigest()


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _answer(typed: str | None) -> Response:
    settings = _settings()
    if typed is None:
        return _private(make_response(render_template("status/page.html", state="ask")))
    if not status_codes.allowed(
        db.session,
        _client(),
        settings.STATUS_LOOKUPS_PER_WINDOW,
        settings.STATUS_LOOKUP_WINDOW_SECONDS,
    ):
        page = render_template("status/page.html", state="limited")
        response = make_response(page, 429)
        response.headers["Retry-After"] = str(settings.STATUS_LOOKUP_WINDOW_SECONDS)
        return _private(response)
    found = status_codes.lookup(db.session, settings.SECRET_KEY, typed, settings.TIMEZONE)
    if found is None:
        return _private(make_response(render_template("status/page.html", state="unknown"), 404))
    return _private(make_response(render_template("status/page.html", state="found", p=found)))


@bp.route("/q", methods=["GET", "POST"])
def status_form():  # noqa: ANN201
    """The public page: a form, and (POST) the answer for the typed code."""
    if request.method == "POST":
        return _answer((request.form.get("code") or "")[:64])
    return _answer(None)


@bp.get("/q/<code>")
def status_link(code: str):  # noqa: ANN201
    return _answer(code[:64])


def _writable_problem(problem_id: str, user: Any) -> Problem:
    problem = db.session.get(Problem, problem_id)
    if problem is None or problem.deleted or not scope_of(user).can_write(problem.district_id):
        return None  # type: ignore[return-value]
    return problem


def _issued(code: str) -> dict[str, str]:
    return {"code": code, "url": f"{_settings().PUBLIC_URL.rstrip('/')}/q"}


@bp.post("/api/problems/<problem_id>/status-code")
@login_required
def api_issue(problem_id: str):  # noqa: ANN201
    """A new status code for a problem (the previous one stops working); shown once."""
    problem = _writable_problem(problem_id, g.user)
    if problem is None:
        raise ApiError(404, "not_found", "no such problem in your scope")
    return jsonify(_issued(status_codes.issue(db.session, _settings().SECRET_KEY, problem)))


@bp.post("/api/problems/<problem_id>/status-code/revoke")
@login_required
def api_revoke(problem_id: str):  # noqa: ANN201
    """Stop a problem's status code from working."""
    problem = _writable_problem(problem_id, g.user)
    if problem is None:
        raise ApiError(404, "not_found", "no such problem in your scope")
    return jsonify({"revoked": status_codes.revoke(db.session, problem)})


@bp.post("/problems/<problem_id>/status-code")
@web_login_required(
    Role.ADMIN.value, Role.COORDINATOR.value, Role.DISTRICT_HEAD.value, Role.GROUP_LEADER.value
)
def web_issue(problem_id: str):  # noqa: ANN201
    """The tracker's 生成查询码 / 停用查询码 buttons."""
    user = current_web_user()
    problem = _writable_problem(problem_id, user)
    if problem is None:
        abort(404)
    if request.form.get("action") == "revoke":
        status_codes.revoke(db.session, problem)
        return render_template("status/issued.html", code=None, problem_id=problem_id)
    code = status_codes.issue(db.session, _settings().SECRET_KEY, problem)
    return _private(
        make_response(render_template("status/issued.html", code=code, problem_id=problem_id))
    )
