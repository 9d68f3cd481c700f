"""The accounts page (admins only): who may sign in, and the action that disables an
account, which ends every web session and device token of it at once
(server/sessions.py); a disabled account can be enabled again."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, abort, flash, redirect, render_template, url_for
from sqlalchemy import func, select

from server.extensions import db
from server.models import Device, Role, User
from server.sessions import disable_user, enable_user
from server.web import current_web_user, web_login_required

log = logging.getLogger(__name__)
bp = Blueprint("users_web", __name__)


def register(app: Flask) -> None:
    """Attach the accounts page (the web sign-in is registered by the other pages)."""
    app.register_blueprint(bp)


@bp.get("/admin/users")
@web_login_required(Role.ADMIN.value)
def users():  # noqa: ANN201
    """Every account with its role, unit, state and signed-in devices."""
    devices = dict(
        db.session.execute(
            select(Device.user_id, func.count())
            .where(Device.token_hash.is_not(None), Device.revoked_at.is_(None))
            .group_by(Device.user_id)
        ).all()
    )
    rows = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template("admin/users.html", users=rows, devices=devices)


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.post("/admin/users/<int:user_id>/disable")
@web_login_required(Role.ADMIN.value)
def disable(user_id: int):  # noqa: ANN201
    """Disable the account: no sign-in, every session and token ended."""
    user = _user_or_404(user_id)
    if user.id == current_web_user().id:
        flash("不能停用自己的账号", "error")
        return redirect(url_for("users_web.users"))
    disable_user(user)
    db.session.commit()
    log.info("user disabled", extra={"user_id": user.id})
    flash(f"已停用 {user.username}：其所有登录（网页和手机）均已失效", "ok")
    return redirect(url_for("users_web.users"))


@bp.post("/admin/users/<int:user_id>/enable")
@web_login_required(Role.ADMIN.value)
def enable(user_id: int):  # noqa: ANN201
    """Let the account sign in again (its old sessions stay ended)."""
    user = _user_or_404(user_id)
    enable_user(user)
    db.session.commit()
    log.info("user enabled", extra={"user_id": user.id})
    flash(f"已启用 {user.username}，需重新登录", "ok")
    return redirect(url_for("users_web.users"))
