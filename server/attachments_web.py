"""Reading attachments: a record's list (JSON) and the thumbnail and full image files,
for a bearer token or a page's cookie session, under the record's scope and privacy
rules (server/attachments.py may_read). Anything not visible answers 404."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from server.api.uploads import attachment_store
from server.attachments import (
    Checks,
    attachments_of,
    describe,
    find_record,
    may_read,
    readable_attachment,
    visit_of,
)
from server.attachments_store import StoreError
from server.errors import ApiError
from server.extensions import db
from server.models import User
from server.models_attachments import RECORD_TYPES
from server.params import choice_arg, text_arg
from server.scope import Scope, scope_of

bp = Blueprint("attachments", __name__)


def register(app: Flask) -> None:
    app.register_blueprint(bp)


def _caller() -> tuple[User, Scope]:
    """The bearer token's user if one is sent, else the page's cookie session."""
    if request.headers.get("Authorization"):
        from server.auth import authenticate

        user, _ = authenticate(db.session)
    else:
        from server.web import current_web_user

        user = current_web_user()
        if user is None:
            raise ApiError(401, "auth_required", "sign in first")
    return user, scope_of(user)


@bp.get("/api/attachments")
def list_attachments():  # noqa: ANN201
    """The attachments of one record the caller may read."""
    user, scope = _caller()
    record_type = choice_arg("record_type", RECORD_TYPES)
    record_id = text_arg("record_id", max_len=36)
    if not record_type:
        raise ApiError(400, "invalid", "record_type is required", "record_type")
    if not record_id:
        raise ApiError(400, "invalid", "record_id is required", "record_id")
    record = find_record(db.session, record_type, record_id)
    if not may_read(user, scope, record_type, record):
        raise ApiError(404, "not_found", f"no {record_type} {record_id}")
    visit = visit_of(db.session, record_type, record)
    checks = Checks.from_settings(current_app.config["FV"])
    return jsonify(
        {
            "record_type": record_type,
            "record_id": record_id,
            "attachments": [
                describe(a, visit, checks)
                for a in attachments_of(db.session, record_type, [record_id])
            ],
        }
    )


def _file(attachment_id: str, which: str) -> Response:
    user, scope = _caller()
    att = readable_attachment(db.session, user, scope, attachment_id)
    if att is None:
        raise ApiError(404, "not_found", "no such attachment")
    blob = att.blob
    key, mime = (blob.thumb_key, "image/jpeg") if which == "thumb" else (blob.full_key, blob.mime)
    try:
        data = attachment_store().get(key)
    except KeyError:
        raise ApiError(404, "not_found", "the file of this attachment is gone") from None
    except StoreError:
        raise ApiError(503, "storage_unavailable", "the file storage is unavailable") from None
    response = Response(data, mimetype=mime)
    # Photos are evidence and may show people: never kept by a browser or a proxy
    # (server/security.py keeps an answer's own no-store).
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Disposition"] = "inline"
    return response


@bp.get("/attachments/<attachment_id>/thumb")
def thumb(attachment_id: str):  # noqa: ANN201
    return _file(attachment_id, "thumb")


@bp.get("/attachments/<attachment_id>/full")
def full(attachment_id: str):  # noqa: ANN201
    return _file(attachment_id, "full")
