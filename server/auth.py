"""Passwords (argon2), device tokens, and the current-user check for API views."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g, request
from sqlalchemy.orm import Session

from server.errors import ApiError
from server.models import Device, User
from server.scope import scope_of

_hasher = PasswordHasher()
_LAST_SEEN_GRANULARITY = timedelta(hours=1)


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    """True when the password matches; constant work either way."""
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(
    session: Session, user: User, device_id: str | None, device_name: str
) -> tuple[str, Device]:
    """A new token for the device (re-using its row, and so its mutation counter)."""
    token = secrets.token_urlsafe(32)
    device = session.get(Device, device_id) if device_id else None
    if device is not None and device.user_id != user.id:
        raise ApiError(
            409, "device_taken", "device_id: this device belongs to another user", "device_id"
        )
    if device is not None and device.revoked_at is not None:
        raise ApiError(403, "device_revoked", "this device was revoked by an administrator")
    if device is None:
        device = Device(id=device_id or str(uuid.uuid4()), user_id=user.id, name=device_name[:100])
        session.add(device)
    device.token_hash = _token_hash(token)
    device.session_generation = user.session_generation or 0
    device.last_seen_at = datetime.now(UTC)
    return token, device


def token_expires_at(device: Device) -> datetime:
    ttl = timedelta(days=current_app.config["FV"].TOKEN_TTL_DAYS)
    seen = device.last_seen_at
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return seen + ttl


def authenticate(session: Session) -> tuple[User, Device]:
    """The user and device of the request's bearer token, or a 401 with the reason."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or len(header) < 20:
        raise ApiError(401, "auth_required", "sign in first")
    device = session.query(Device).filter_by(token_hash=_token_hash(header[7:].strip())).first()
    if device is None:
        raise ApiError(401, "auth_required", "unknown token: sign in again")
    if device.revoked_at is not None:
        raise ApiError(401, "device_revoked", "this device was revoked: sign in again")
    now = datetime.now(UTC)
    if token_expires_at(device) < now:
        raise ApiError(401, "token_expired", "signed out after a long time unused: sign in again")
    user = device.user
    if not user.active:
        raise ApiError(401, "user_disabled", "this account is disabled")
    if device.session_generation != (user.session_generation or 0):
        # The user logged out, had the password reset or was disabled since this token
        # was issued (server/sessions.py): every older token has ended.
        raise ApiError(401, "auth_required", "signed out: sign in again")
    seen = (
        device.last_seen_at
        if device.last_seen_at.tzinfo
        else device.last_seen_at.replace(tzinfo=UTC)
    )
    if now - seen > _LAST_SEEN_GRANULARITY:
        device.last_seen_at = now
    return user, device


def login_required(view: Any) -> Any:
    """Put g.user, g.device and g.scope in place, or answer 401."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        from server.extensions import db

        g.user, g.device = authenticate(db.session)
        g.scope = scope_of(g.user)
        return view(*args, **kwargs)

    return wrapped


def roles_required(*roles: str) -> Any:
    """Like login_required, and the user's role must be one of `roles`."""

    def decorate(view: Any) -> Any:
        @login_required
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.user.role not in roles:
                raise ApiError(403, "forbidden", "your role may not do this")
            return view(*args, **kwargs)

        return wrapped

    return decorate
