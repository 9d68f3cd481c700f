"""Server-rendered pages' sign-in: a username/password form and a signed session cookie.

The PWA and the API use bearer tokens (server/auth.py); the few server-rendered pages
(briefings, admin pages) use this instead, so a link in an email opens in a browser.
"""

from __future__ import annotations

import hmac
import secrets
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from server.extensions import db
from server.models import User
from server.params import choice_arg

bp = Blueprint("web", __name__)


def current_web_user() -> User | None:
    """The user signed in through the session cookie, or None."""
    if "web_user" in g:
        return g.web_user
    user = None
    user_id = session.get("uid")
    if user_id is not None:
        user = db.session.get(User, user_id)
        if user is not None and not user.active:
            user = None
    g.web_user = user
    return user


def web_login_required(*roles: str) -> Any:
    """Views behind this need a signed-in user (and, if roles are given, one of them)."""

    def decorate(view: Any) -> Any:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_web_user()
            if user is None:
                return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
            if roles and user.role not in roles:
                abort(403)
            if request.method == "POST" and not _csrf_ok():
                abort(400, "表单已过期，请刷新页面后重试")
            return view(*args, **kwargs)

        return wrapped

    return decorate


def page_lang() -> str:
    """zh by default; ?lang=en (or zh) switches and is remembered in the session."""
    wanted = choice_arg("lang", ("zh", "en"))
    if wanted:
        session["lang"] = wanted
    return session.get("lang", "zh")


def csrf_token() -> str:
    """The session's anti-forgery token; every POST form of a signed-in page carries it."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def _csrf_ok() -> bool:
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
    return bool(sent) and hmac.compare_digest(sent, session.get("csrf", ""))


@bp.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {"current_web_user": current_web_user, "csrf_token": csrf_token}


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: a login link must not bounce to another site."""
    if not target or len(target) > 2000 or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():  # noqa: ANN201
    """The sign-in form (登录)."""
    from sqlalchemy import select

    from server.auth import verify_password

    error = None
    next_url = _safe_next(request.values.get("next"))
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        user = db.session.scalar(select(User).where(User.username == username))
        if user is not None and user.active and verify_password(user, password):
            session.clear()
            session["uid"] = user.id
            session.permanent = False
            return redirect(next_url)
        error = "用户名或密码不正确"
    return render_template("web/login.html", error=error, next_url=next_url), (
        401 if error else 200
    )


@bp.post("/logout")
def logout():  # noqa: ANN201
    """Sign out (退出登录)."""
    session.clear()
    return redirect(url_for("web.login"))
