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
        # A cookie issued before the user's last logout, password reset or disabling
        # (server/sessions.py) signs nobody in, even a copy kept from before.
        if user is not None and (
            not user.active or session.get("gen") != (user.session_generation or 0)
        ):
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


# The field app lives at the site root (pwa/, hash routes): a web sign-in never lands there.
_FIELD_APP_PATHS = ("/", "/index.html")


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths of server pages: a login link must not bounce to
    another site, nor into the field app (whose service worker would then own the tab)."""
    if not target or len(target) > 2000 or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if parts.path in _FIELD_APP_PATHS:
        return None
    return target


def home_url(user: User) -> str | None:
    """Where a role starts on the web: its own pages (None: it has none, only the app)."""
    from server.models import Role

    if user.role in (Role.ADMIN, Role.COORDINATOR, Role.SUPERVISOR, Role.DISTRICT_HEAD):
        return url_for("coordination.dashboard_page")
    if user.district is not None:  # cadres read their district's briefing
        return url_for("briefing.index")
    return None


@bp.get("/start")
def start():  # noqa: ANN201
    """After sign-in: the role's own pages, or a note that its work is in the field app."""
    user = current_web_user()
    if user is None:
        return redirect(url_for("web.login"))
    target = home_url(user)
    if target:
        return redirect(target)
    return render_template("web/start.html", lang=page_lang())


@bp.route("/login", methods=["GET", "POST"])
def login():  # noqa: ANN201
    """The sign-in form (登录)."""
    from server.errors import ApiError
    from server.signin import find_user, sign_in_check

    lang = page_lang()
    error = None
    next_url = _safe_next(request.values.get("next"))
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        user = find_user(db.session, username)
        try:
            # Rate-limited, equal work for unknown users (server/signin.py).
            ok = sign_in_check(username, user, password)
        except ApiError as refused:  # too many failures, or every hashing slot busy
            response = render_template(
                "web/login.html", error=refused.code, next_url=next_url or "", lang=lang
            )
            return response, refused.status, {"Retry-After": str(refused.extra["retry_after"])}
        if ok:
            session.clear()
            session["uid"] = user.id
            session["gen"] = user.session_generation or 0
            session["lang"] = lang
            session.permanent = False
            return redirect(next_url or url_for("web.start"))
        error = "bad_login"
    return render_template("web/login.html", error=error, next_url=next_url or "", lang=lang), (
        401 if error else 200
    )


@bp.post("/logout")
def logout():  # noqa: ANN201
    """Sign out (退出登录): ends every session and device token of the user."""
    from server.sessions import end_sessions

    user = current_web_user()
    if user is not None:
        end_sessions(user)
        db.session.commit()
    session.clear()
    g.pop("web_user", None)
    return redirect(url_for("web.login"))
