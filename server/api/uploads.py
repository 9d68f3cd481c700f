"""HTTP of photo and signature uploads: tus 1.0.0 core + creation under /api/uploads
(docs/sync-protocol.md, "Attachments"); the logic is in server/attachments.py."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import ClientDisconnected

from server.attachments import (
    TUS_VERSION,
    AttachmentError,
    Limits,
    append_chunk,
    create_upload,
    delete_garbage,
    parse_metadata_header,
    upload_of,
    validate_metadata,
)
from server.attachments_store import AttachmentStore, StoreError, store_from_settings
from server.auth import login_required
from server.errors import ApiError
from server.extensions import db

bp = Blueprint("uploads", __name__, url_prefix="/api/uploads")
OFFSET_TYPE = "application/offset+octet-stream"


def attachment_store() -> AttachmentStore:
    """The app's attachment storage (built once per app from the settings)."""
    store = current_app.extensions.get("fieldvisit.attachments")
    if store is None:
        store = store_from_settings(current_app.config["FV"])
        current_app.extensions["fieldvisit.attachments"] = store
    return store


def _limits() -> Limits:
    return Limits.from_settings(current_app.config["FV"])


def _api(err: AttachmentError) -> ApiError:
    return ApiError(err.status, err.code, err.message, err.field, **err.extra)


@bp.after_request
def _tus_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    if "upload_offset" in (response.get_json(silent=True) or {}).get("error", {}):
        response.headers["Upload-Offset"] = str(response.get_json()["error"]["upload_offset"])
    return response


@bp.before_request
def _tus_version() -> None:
    asked = request.headers.get("Tus-Resumable")
    if request.method != "OPTIONS" and asked is not None and asked.strip() != TUS_VERSION:
        raise ApiError(
            412,
            "tus_version_unsupported",
            f"Tus-Resumable {asked[:20]!r}: this server speaks tus {TUS_VERSION}",
            "Tus-Resumable",
            tus_version=TUS_VERSION,
        )


def _int_header(name: str) -> int:
    raw = request.headers.get(name)
    if raw is None:
        raise ApiError(400, "invalid", f"{name} is required", name)
    raw = raw.strip()
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses
    if not re.fullmatch(r"[0-9]{1,15}", raw):
        raise ApiError(400, "invalid", f"{name}: expected a whole number of bytes", name)
    return int(raw)


@bp.route("", methods=["OPTIONS"], provide_automatic_options=False)
def options():  # noqa: ANN201
    response = Response(status=204)
    response.headers["Tus-Version"] = TUS_VERSION
    response.headers["Tus-Extension"] = "creation"
    response.headers["Tus-Max-Size"] = str(_limits().max_bytes)
    return response


@bp.post("")
@login_required
def create():  # noqa: ANN201
    if request.headers.get("Upload-Defer-Length") is not None:
        raise ApiError(400, "invalid", "Upload-Defer-Length is not supported: send Upload-Length")
    length = _int_header("Upload-Length")
    limits = _limits()
    try:
        meta = validate_metadata(parse_metadata_header(request.headers.get("Upload-Metadata")))
        upload = create_upload(
            db.session,
            user=g.user,
            device_id=g.device.id,
            scope=g.scope,
            length=length,
            meta=meta,
            limits=limits,
        )
    except AttachmentError as err:
        raise _api(err) from None
    db.session.commit()
    response = jsonify(
        {
            "id": upload.id,
            "offset": upload.received,
            "length": upload.length,
            "complete": upload.completed_at is not None,
            "attachment_id": upload.attachment_id,
        }
    )
    response.status_code = 201
    response.headers["Location"] = f"/api/uploads/{upload.id}"
    response.headers["Upload-Offset"] = str(upload.received)
    return response


def _progress_headers(response: Response, upload: Any) -> Response:
    response.headers["Upload-Offset"] = str(upload.received)
    response.headers["Upload-Length"] = str(upload.length)
    response.headers["Cache-Control"] = "no-store"
    if upload.attachment_id:
        response.headers["Upload-Attachment-Id"] = upload.attachment_id
    return response


@bp.route("/<upload_id>", methods=["HEAD"])
@login_required
def head(upload_id: str):  # noqa: ANN201
    try:
        upload = upload_of(db.session, upload_id, g.user)
    except AttachmentError as err:
        raise _api(err) from None
    return _progress_headers(Response(status=200), upload)


def _read_chunk(limit: int) -> bytes:
    """The request body, whole, or a 4xx: a body cut short (the connection dropped) is
    dropped too, so no part of a chunk is ever stored."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise ApiError(413, "too_large", f"a chunk is at most {limit} bytes (UPLOAD_CHUNK_MAX)")
    try:
        data = request.stream.read(limit + 1)
    except (ClientDisconnected, OSError, ValueError):
        # a Content-Length body cut short, or a chunked body broken off mid-chunk
        raise ApiError(
            400, "incomplete_body", "the chunk ended before its Content-Length"
        ) from None
    if len(data) > limit:
        raise ApiError(413, "too_large", f"a chunk is at most {limit} bytes (UPLOAD_CHUNK_MAX)")
    if declared is not None and len(data) != declared:
        raise ApiError(400, "incomplete_body", "the chunk ended before its Content-Length")
    return data


@bp.patch("/<upload_id>")
@login_required
def patch(upload_id: str):  # noqa: ANN201
    if request.mimetype != OFFSET_TYPE:
        raise ApiError(415, "unsupported_media_type", f"Content-Type must be {OFFSET_TYPE}")
    offset = _int_header("Upload-Offset")
    limits = _limits()
    store = attachment_store()
    try:
        upload = upload_of(db.session, upload_id, g.user)
        if offset != upload.received:  # answered before reading a body that is wasted
            raise AttachmentError(
                409,
                "offset_mismatch",
                f"Upload-Offset: the server has {upload.received} bytes of this upload",
                "Upload-Offset",
                upload_offset=upload.received,
            )
        # No transaction stays open while the body arrives: a phone on a weak link (or
        # one that stalls mid-chunk) must not hold a lock on the upload, or on the
        # table, for as long as it takes. The upload is read again, and its offset
        # checked again (append_chunk), once the chunk is here.
        db.session.rollback()
        data = _read_chunk(limits.chunk_max)
        upload = upload_of(db.session, upload_id, g.user)
        result = append_chunk(
            db.session,
            store,
            upload=upload,
            scope=g.scope,
            offset=offset,
            data=data,
            limits=limits,
        )
    except AttachmentError as err:
        raise _api(err) from None
    except StoreError:
        raise ApiError(503, "storage_unavailable", "the file storage is unavailable") from None
    db.session.commit()
    finished = result.upload is None or result.upload.completed_at is not None
    try:
        delete_garbage(store, result.garbage)
        if finished:  # chunks of crashed writes that never made it into the database
            delete_garbage(store, store.keys(f"uploads/{upload_id}"))
    except StoreError:
        pass  # left for the retention sweep
    if result.error is not None:
        raise _api(result.error)
    db.session.refresh(result.upload)
    return _progress_headers(Response(status=204), result.upload)
