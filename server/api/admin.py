"""Administration over HTTP: devices (revoke a lost phone) and users."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, jsonify
from sqlalchemy import select

from server.auth import roles_required
from server.errors import ApiError
from server.extensions import db
from server.models import Device, Role

bp = Blueprint("admin", __name__, url_prefix="/api/admin")


@bp.get("/devices")
@roles_required(Role.ADMIN)
def devices():  # noqa: ANN201
    rows = db.session.scalars(select(Device).order_by(Device.last_seen_at.desc())).all()
    return jsonify(
        {
            "items": [
                {
                    "id": d.id,
                    "user": d.user.username,
                    "name": d.name,
                    "last_mid": d.last_mid,
                    "last_seen_at": d.last_seen_at.isoformat(),
                    "revoked_at": d.revoked_at.isoformat() if d.revoked_at else None,
                }
                for d in rows
            ]
        }
    )


@bp.post("/devices/<device_id>/revoke")
@roles_required(Role.ADMIN)
def revoke(device_id: str):  # noqa: ANN201
    device = db.session.get(Device, device_id)
    if device is None:
        raise ApiError(404, "not_found", f"no device {device_id}")
    # The token hash stays: the phone's next request is then told `device_revoked`
    # (not a bare `auth_required`), and the app starts its recovery (a new device).
    device.revoked_at = datetime.now(UTC)
    db.session.commit()
    return jsonify({"ok": True, "id": device.id})
