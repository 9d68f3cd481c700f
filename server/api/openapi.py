"""The OpenAPI document of the HTTP API, built from the marshmallow schemas."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, jsonify

from server.api.auth import LoginSchema, UserSchema
from sync.health import DeviceStateSchema
from sync.schemas import EnterpriseFields, HomeVisitFields, ProblemFields, PushSchema, VisitFields

bp = Blueprint("openapi", __name__)

_ERROR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _op(
    summary: str,
    *,
    body: str | None = None,
    params: list[dict] | None = None,
    auth: bool = True,
    errors: tuple[int, ...] = (400, 401),
    response: str = "Object",
    status: int = 200,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(status): {
                "description": "ok",
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{response}"}}
                },
            }
        },
    }
    for status in errors:
        op["responses"][str(status)] = _ERROR
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    if params:
        op["parameters"] = params
    if auth:
        op["security"] = [{"bearer": []}]
    return op


def _q(name: str, kind: str = "string") -> dict[str, Any]:
    return {"in": "query", "name": name, "required": False, "schema": {"type": kind}}


def _p(name: str, kind: str = "string") -> dict[str, Any]:
    return {"in": "path", "name": name, "required": True, "schema": {"type": kind}}


def _h(name: str, required: bool = True) -> dict[str, Any]:
    return {"in": "header", "name": name, "required": required, "schema": {"type": "string"}}


@lru_cache(maxsize=1)
def build_spec() -> dict[str, Any]:
    """The OpenAPI 3.0 document as a dict."""
    spec = APISpec(
        title="fieldvisit API",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Field visits: sign-in, reference data, records, sync. "
            "The sync protocol is in docs/sync-protocol.md."
        },
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema(
        "Error",
        {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                    },
                }
            },
        },
    )
    spec.components.schema("Object", {"type": "object"})
    spec.components.schema(
        "Page",
        {
            "type": "object",
            "required": ["items", "page", "per_page"],
            "properties": {
                "items": {"type": "array", "items": {"type": "object"}},
                "page": {"type": "integer"},
                "per_page": {"type": "integer"},
                "total": {"type": "integer"},
            },
        },
    )
    spec.components.schema(
        "Conflicts",
        {
            "type": "object",
            "required": ["conflicts"],
            "properties": {"conflicts": {"type": "array", "items": {"type": "object"}}},
        },
    )
    spec.components.schema("Body", {"type": "object"})
    for name, schema in (
        ("Login", LoginSchema),
        ("User", UserSchema),
        ("Push", PushSchema),
        ("EnterpriseFields", EnterpriseFields),
        ("VisitFields", VisitFields),
        ("ProblemFields", ProblemFields),
        ("HomeVisitFields", HomeVisitFields),
        ("DeviceState", DeviceStateSchema),
    ):
        spec.components.schema(name, schema=schema)
    page = [_q("page", "integer"), _q("per_page", "integer"), _q("district")]
    dated = [_q("from"), _q("to"), _q("group"), _q("tag"), _q("sort"), _q("dir")]
    paths = {
        "/api/auth/login": {"post": _op("Sign in a device", body="Login", auth=False)},
        "/api/auth/logout": {"post": _op("Sign out this device")},
        "/api/me": {"get": _op("The signed-in user")},
        "/api/reference": {"get": _op("Reference data for offline use")},
        "/api/progress": {"get": _op("My district's progress against the targets")},
        "/api/visits": {
            "get": _op(
                "Visits in scope",
                params=page
                + [_q("method"), _q("work_group"), _q("from"), _q("to"), _q("canonical")],
                response="Page",
            )
        },
        "/api/visits/{record_id}": {
            "get": _op("One visit with its problems", params=[_p("record_id")], errors=(401, 404))
        },
        "/api/problems": {
            "get": _op(
                "Problems in scope",
                params=page + [_q("category"), _q("tag"), _q("stage")],
                response="Page",
            )
        },
        "/api/problems/{record_id}": {
            "get": _op(
                "One problem with its stage history", params=[_p("record_id")], errors=(401, 404)
            )
        },
        "/api/enterprises": {
            "get": _op("Enterprises in scope", params=page + [_q("q")], response="Page")
        },
        "/api/records/{entity}/{record_id}/conflicts": {
            "get": _op(
                "Conflicts of a record (alias of the history's conflicts)",
                params=[_p("entity"), _p("record_id")],
                errors=(401, 404),
                response="Conflicts",
            )
        },
        "/api/records/{entity}/{record_id}/history": {
            "get": _op(
                "Audit entries and conflicts of a record",
                params=[_p("entity"), _p("record_id")],
                errors=(401, 404),
            )
        },
        "/api/sync/push": {
            "post": _op(
                "Push a batch of mutations", body="Push", errors=(400, 401, 403, 413, 426, 503)
            )
        },
        "/api/sync/pull": {
            "get": _op(
                "Pull changes after a cursor",
                params=[_q("cursor"), _q("limit", "integer"), _q("protocol", "integer")],
                errors=(400, 401, 426),
            )
        },
        "/api/uploads": {
            "post": _op(
                "Create a photo or signature upload (tus 1.0.0 creation; docs/sync-protocol.md "
                "Attachments): Upload-Length, Upload-Metadata (sha256, record_type, record_id, "
                "kind, mime, captured_at, device_time, lat, lng, accuracy); Location and "
                "Upload-Offset answered",
                params=[_h("Upload-Length"), _h("Upload-Metadata"), _h("Tus-Resumable", False)],
                errors=(400, 401, 403, 404, 409, 412, 413),
                status=201,
            )
        },
        "/api/uploads/{upload_id}": {
            "patch": _op(
                "Append a chunk at Upload-Offset (application/offset+octet-stream); the "
                "last one completes the upload (checksum, image check, metadata stripped, "
                "thumbnail); HEAD answers Upload-Offset and Upload-Length",
                params=[_p("upload_id"), _h("Upload-Offset"), _h("Tus-Resumable", False)],
                errors=(400, 401, 404, 409, 412, 413, 415, 422, 503),
                status=204,
            )
        },
        "/api/attachments": {
            "get": _op(
                "A record's photos and signatures (capture time, phone clock, place, sizes, "
                "thumbnail and full URLs under /attachments/{id}/thumb|full)",
                params=[_q("record_type"), _q("record_id")],
                errors=(400, 401, 404),
            )
        },
        "/api/admin/devices": {"get": _op("Signed-in devices (admin)", errors=(401, 403))},
        "/api/admin/devices/{device_id}/revoke": {
            "post": _op(
                "Revoke a lost device (admin)", params=[_p("device_id")], errors=(401, 403, 404)
            )
        },
        "/api/admin/queue": {
            "get": _op(
                "Outbox and broker queue state, failures and dead rows (admin)",
                errors=(401, 403),
            )
        },
        "/api/admin/queue/{outbox_id}/retry": {
            "post": _op(
                "Make a dead or failing outbox row due now (admin)",
                params=[_p("outbox_id", "integer")],
                errors=(401, 403, 404),
            )
        },
        "/api/sync-health": {
            "get": _op(
                "Devices' last sync, entries waiting, errors and versions, in the caller's "
                "scope (city staff, district heads, group leaders); the push body's "
                "device_state and the pull's X-Device-State header carry a DeviceState",
                params=[_q("district"), _q("work_group"), _q("status"), _q("sort")],
                errors=(400, 401, 403),
            )
        },
        "/api/openapi.json": {"get": _op("This document", auth=False, errors=())},
        "/api/briefings/{code}": {
            "get": _op(
                "A district's (or code city: the city's) briefing",
                params=[_p("code"), _q("period"), _q("start")],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/dashboard": {
            "get": _op(
                "Dashboard rows, total and weekly series", params=dated, errors=(400, 401, 403)
            )
        },
        "/api/dashboard/{code}": {
            "get": _op(
                "One district's row, series and a page of its visits",
                params=[_p("code"), _q("page", "integer"), *dated],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/dashboard/visits/{visit_id}": {
            "get": _op(
                "A visit with problems, audit, conflicts, spot checks",
                params=[_p("visit_id")],
                errors=(401, 403, 404),
            )
        },
        "/api/evaluation": {
            "get": _op(
                "Scores, ranks and the commendation list", params=dated, errors=(400, 401, 403)
            )
        },
        "/api/problem-tracker": {
            "get": _op(
                "The problem tracker",
                params=[
                    _q("category"),
                    _q("tag"),
                    _q("stage"),
                    _q("min_days", "integer"),
                    _q("district"),
                    _q("n", "integer"),
                    _q("recurring"),
                    _q("overdue"),
                    _q("colour"),  # red, yellow, blue or none (server/deadlines.py)
                    _q("sort"),
                    _q("page", "integer"),
                ],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/problem-tracker/{problem_id}": {
            "get": _op(
                "A problem with its ladder history and audit",
                params=[_p("problem_id")],
                errors=(401, 403, 404),
            )
        },
        "/api/spot-checks": {
            "get": _op("Check rates and samples per district", errors=(401, 403)),
            "post": _op(
                "Draw a sample {seed, size, from, to, group, note}",
                body="Body",
                errors=(400, 401, 403),
                status=201,
            ),
        },
        "/api/spot-checks/items/{item_id}": {
            "post": _op(
                "Record a finding {result, note}",
                body="Body",
                params=[_p("item_id", "integer")],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/spot-checks/flags": {
            "get": _op(
                "Records held as implausible, waiting for the supervision team",
                errors=(401, 403),
            )
        },
        "/api/spot-checks/flags/{flag_id}": {
            "post": _op(
                "Decide a held record {decision: accept|reject, note}",
                body="Body",
                params=[_p("flag_id", "integer")],
                errors=(400, 401, 403, 404),
            )
        },
        "/api/review/candidates": {
            "get": _op(
                "Open dedup review candidates",
                params=[_q("entity"), _q("lang"), _q("page", "integer"), _q("per_page", "integer")],
                errors=(400, 401, 403),
                response="Page",
            )
        },
        "/api/review/candidates/{candidate_id}/decision": {
            "post": _op(
                "Decide a candidate {decision, note}",
                body="Body",
                params=[_p("candidate_id", "integer")],
                errors=(400, 401, 403, 404, 409),
            )
        },
        "/api/merges": {
            "get": _op(
                "Merge links",
                params=[
                    _q("entity"),
                    _q("status"),
                    _q("record_id"),
                    _q("page", "integer"),
                    _q("per_page", "integer"),
                ],
                errors=(400, 401, 403),
                response="Page",
            )
        },
        "/api/merges/{link_id}/undo": {
            "post": _op(
                "Undo a merge {reason}",
                params=[_p("link_id", "integer")],
                errors=(400, 401, 403, 404, 409),
            )
        },
        "/api/reminders": {
            "get": _op("The signed-in user's deadline reminders (督办提醒), newest first")
        },
        "/api/reminders/{reminder_id}/ack": {
            "post": _op(
                "Acknowledge one of the user's reminders",
                params=[_p("reminder_id", "integer")],
                errors=(401, 404),
            )
        },
        "/api/problems/deadlines": {
            "get": _op(
                "Open problems in the user's scope with due date, owner and colour "
                "(red overdue, yellow behind, blue near) today"
            )
        },
        "/api/problems/{problem_id}/status-code": {
            "post": _op(
                "A new public status code (查询码) for a problem, shown once; the old one "
                "stops working",
                params=[_p("problem_id")],
                errors=(401, 404),
            )
        },
        "/api/problems/{problem_id}/status-code/revoke": {
            "post": _op(
                "Revoke a problem's status code", params=[_p("problem_id")], errors=(401, 404)
            )
        },
        "/healthz": {"get": _op("Process is up", auth=False, errors=())},
        "/readyz": {"get": _op("Database up and migrated; broker reported", auth=False, errors=())},
    }
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@bp.get("/api/openapi.json")
def openapi():  # noqa: ANN201
    return jsonify(build_spec())
