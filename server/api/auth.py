"""Sign-in and the current user."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify
from marshmallow import Schema, fields, validate

from server.auth import login_required, sign_in, token_expires_at
from server.errors import ApiError
from server.extensions import db
from server.signin import find_user, sign_in_check

bp = Blueprint("auth", __name__, url_prefix="/api")


class LoginSchema(Schema):
    """POST /api/auth/login body."""

    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200))
    device_id = fields.String(
        load_default=None, validate=validate.Regexp(r"^[0-9a-fA-F-]{36}$", error="not a UUID")
    )
    device_name = fields.String(
        load_default="",
        validate=[
            validate.Length(max=100),
            # stored with the device: PostgreSQL refuses a NUL in text
            validate.Regexp(r"^[^\x00]*$", error="must not contain NUL"),
        ],
    )


class UserSchema(Schema):
    """A user as the API shows them."""

    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    district_code = fields.Function(lambda u: u.district.code if u.district else None)
    work_group_code = fields.Function(lambda u: u.work_group.code if u.work_group else None)


_login = LoginSchema()
user_schema = UserSchema()


@bp.post("/auth/login")
def login():  # noqa: ANN201
    from server.api.common import json_body

    data = _login.load(json_body())
    user = find_user(db.session, data["username"])
    # Rate-limited, the same work and the same answer whether the user exists or not
    # (server/signin.py).
    if not sign_in_check(data["username"], user, data["password"]):
        raise ApiError(401, "bad_credentials", "wrong user name or password")
    token, device = sign_in(db.session, user, data["device_id"], data["device_name"])
    db.session.commit()
    # last_mid: the app continues its counter after it (a reinstalled app that kept its
    # device_id would otherwise number new entries as old ones).
    return jsonify(
        {
            "token": token,
            "device_id": device.id,
            "last_mid": device.last_mid or 0,
            "user": user_schema.dump(user),
            "expires_at": token_expires_at(device).isoformat(),
            "ttl_days": current_app.config["FV"].TOKEN_TTL_DAYS,
        }
    )


@bp.post("/auth/logout")
@login_required
def logout():  # noqa: ANN201
    """Sign out: ends this token and every other token and web session of the user."""
    from server.sessions import end_sessions

    g.device.token_hash = None
    end_sessions(g.user)
    db.session.commit()
    return jsonify({"ok": True})


@bp.get("/me")
@login_required
def me():  # noqa: ANN201
    db.session.commit()  # keeps the sliding expiry's last_seen_at
    return jsonify(user_schema.dump(g.user))
