"""HTTP for the sync protocol (docs/sync-protocol.md); the logic is in sync/."""

from __future__ import annotations

import json
import zlib

from flask import Blueprint, current_app, g, jsonify, request

from server.auth import login_required
from server.errors import ApiError
from server.extensions import db
from sync.pull import pull as pull_changes
from sync.push import ProtocolError, PushLimits
from sync.push import push as push_batch

bp = Blueprint("sync", __name__, url_prefix="/api/sync")


def _body() -> object:
    settings = current_app.config["FV"]
    raw = request.get_data(cache=False)
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, settings.SYNC_MAX_BODY + 1)
        except zlib.error:
            raise ApiError(400, "malformed", "the gzip body is corrupt") from None
        if len(raw) > settings.SYNC_MAX_BODY or inflater.unconsumed_tail:
            raise ApiError(413, "too_large", f"the body is over {settings.SYNC_MAX_BODY} bytes")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed", f"the body is not JSON: {exc}") from None


@bp.post("/push")
@login_required
def push():  # noqa: ANN201
    settings = current_app.config["FV"]
    body = _body()
    try:
        answer = push_batch(
            db.session, device=g.device, user=g.user, scope=g.scope, body=body,
            id_hash_key=settings.ID_HASH_KEY,
            limits=PushLimits(settings.SYNC_MIN_PROTOCOL, settings.SYNC_MAX_BATCH),
            request_id=g.request_id)
    except ProtocolError as err:
        raise ApiError(err.status, err.code, err.message, err.field, **err.extra) from None
    db.session.commit()
    _kick_outbox()
    return jsonify(answer)


def _kick_outbox() -> None:
    """Ask the workers to drain the outbox now; if the broker is down, the beat will."""
    kick = current_app.extensions.get("fieldvisit.outbox_kick")
    if kick is not None:
        kick(g.request_id)


@bp.get("/pull")
@login_required
def pull():  # noqa: ANN201
    settings = current_app.config["FV"]
    protocol = request.args.get("protocol", "1")
    if not protocol.isdigit() or int(protocol) < settings.SYNC_MIN_PROTOCOL:
        raise ApiError(426, "protocol_outdated",
                       "this app is too old for the server: please update it",
                       min_protocol=settings.SYNC_MIN_PROTOCOL)
    raw_limit = request.args.get("limit", "500")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= settings.SYNC_PULL_MAX:
        raise ApiError(400, "invalid", f"limit: 1 to {settings.SYNC_PULL_MAX}", "limit")
    last_mid = g.device.last_mid  # read before the page: see sync/pull.py
    answer = pull_changes(db.session, scope=g.scope, last_mid=last_mid,
                          cursor=request.args.get("cursor") or None, limit=int(raw_limit))
    db.session.commit()
    return jsonify(answer)
