"""HTTP for the sync protocol (docs/sync-protocol.md); the logic is in sync/."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, g, jsonify, request

from server.auth import login_required
from server.errors import ApiError
from server.extensions import db
from server.messages import localize_results, prefers_chinese
from server.params import int_arg, text_arg
from server.privacy import sees_home_visit_details
from sync.health import HEADER as HEALTH_HEADER
from sync.health import parse_header, parse_state
from sync.health import record as record_health
from sync.pull import PullView
from sync.pull import pull as pull_changes
from sync.push import PROTOCOL_VERSION, ProtocolError, PushLimits
from sync.push import push as push_batch
from sync.schemas import MAX_DEPTH

# A cursor the server made is under 200 characters; a longer one is not ours.
CURSOR_MAX = 512


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


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
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed", f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "malformed", f"the body nests deeper than {MAX_DEPTH} levels") from None
    # Deep nesting inside a mutation is rejected with that entry (sync.push._envelope);
    # the body is not scanned twice.
    return body


def date_window() -> tuple[datetime, datetime]:
    """The visit dates a push accepts: from SYNC_DATE_DAYS_BEFORE_CAMPAIGN days before
    the campaign start to SYNC_DATE_DAYS_AHEAD days after now (settings)."""
    settings = current_app.config["FV"]
    start = date.fromisoformat(settings.CAMPAIGN_START)
    low = datetime.combine(start, time(), UTC) - timedelta(
        days=settings.SYNC_DATE_DAYS_BEFORE_CAMPAIGN
    )
    return low, datetime.now(UTC) + timedelta(days=settings.SYNC_DATE_DAYS_AHEAD)


@bp.post("/push")
@login_required
def push():  # noqa: ANN201
    settings = current_app.config["FV"]
    body = _body()
    # The phone's report about itself rides along; it never decides the push.
    state, state_error = (
        parse_state(body.pop("device_state", None)) if isinstance(body, dict) else (None, None)
    )
    try:
        answer = push_batch(
            db.session,
            device=g.device,
            user=g.user,
            scope=g.scope,
            body=body,
            id_hash_key=settings.ID_HASH_KEY,
            limits=PushLimits(settings.SYNC_MIN_PROTOCOL, settings.SYNC_MAX_BATCH, date_window()),
            request_id=g.request_id,
        )
    except ProtocolError as err:
        raise ApiError(err.status, err.code, err.message, err.field, **err.extra) from None
    record_health(db.session, g.device.id, state, "push")
    if state_error:
        answer["device_state_error"] = state_error
    db.session.commit()
    if any(r["status"] in ("applied", "conflict") for r in answer["results"]):
        # Only a push that changed records can have queued outbox work (a replay, a
        # batch of rejections, never): a send to the broker costs more than a replay.
        _kick_outbox()
    # After the commit: the stored results keep the server's own (English) words.
    chinese = prefers_chinese(request.headers.get("Accept-Language"))
    localize_results(answer["results"], chinese)
    response = jsonify(answer)
    response.vary.add("Accept-Language")
    return response


def campaign_start(settings) -> datetime:  # noqa: ANN001
    """The campaign's first day, midnight in the campaign's time zone."""
    day = date.fromisoformat(settings.CAMPAIGN_START)
    return datetime.combine(day, time(0), ZoneInfo(settings.TIMEZONE))


def _kick_outbox() -> None:
    """Ask the workers to drain the outbox now; if the broker is down, the beat will."""
    kick = current_app.extensions.get("fieldvisit.outbox_kick")
    if kick is not None:
        kick(g.request_id)


@bp.get("/pull")
@login_required
def pull():  # noqa: ANN201
    settings = current_app.config["FV"]
    protocol = int_arg("protocol", 1, 0)
    if protocol < settings.SYNC_MIN_PROTOCOL:
        raise ApiError(
            426,
            "protocol_outdated",
            "this app is too old for the server: please update it",
            min_protocol=settings.SYNC_MIN_PROTOCOL,
        )
    if protocol > PROTOCOL_VERSION:
        raise ApiError(
            400,
            "protocol_unknown",
            f"protocol {protocol} is newer than the server's {PROTOCOL_VERSION}",
            "protocol",
        )
    limit = int_arg("limit", 500, 1, settings.SYNC_PULL_MAX)
    # A cursor that is not one of ours (garbage, another database's) answers `reset`;
    # one too long to be ours is refused.
    cursor = text_arg("cursor", max_len=CURSOR_MAX)
    last_mid = g.device.last_mid  # read before the page: see sync/pull.py
    answer = pull_changes(
        db.session,
        scope=g.scope,
        last_mid=last_mid,
        cursor=cursor or None,
        limit=limit,
        view=PullView(
            window_days=settings.SYNC_PULL_WINDOW_DAYS,
            keep_from=campaign_start(settings),
            # Roles that read the whole city hold only their own records on a phone;
            # the districts' figures are on the dashboard.
            own_user_id=g.user.id if g.scope.read is None else None,
            mask_personal=not sees_home_visit_details(g.user),
        ),
    )
    state, state_error = parse_header(request.headers.get(HEALTH_HEADER))
    record_health(db.session, g.device.id, state, "pull")
    if state_error:
        answer["device_state_error"] = state_error
    db.session.commit()
    return jsonify(answer)
