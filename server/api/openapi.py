"""The OpenAPI document of the HTTP API, built from the marshmallow schemas."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, jsonify

from server.api.auth import LoginSchema, UserSchema
from sync.schemas import EnterpriseFields, HomeVisitFields, ProblemFields, PushSchema, VisitFields

bp = Blueprint("openapi", __name__)

_ERROR = {"description": "error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}


def _op(summary: str, *, body: str | None = None, params: list[dict] | None = None,
        auth: bool = True, errors: tuple[int, ...] = (400, 401)) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "ok"}}}
    for status in errors:
        op["responses"][str(status)] = _ERROR
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}}
    if params:
        op["parameters"] = params
    if auth:
        op["security"] = [{"bearer": []}]
    return op


def _q(name: str, kind: str = "string") -> dict[str, Any]:
    return {"in": "query", "name": name, "required": False, "schema": {"type": kind}}


def _p(name: str) -> dict[str, Any]:
    return {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}


@lru_cache(maxsize=1)
def build_spec() -> dict[str, Any]:
    """The OpenAPI 3.0 document as a dict."""
    spec = APISpec(title="fieldvisit API", version="1", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Field visits: sign-in, reference data, records, sync. "
                                        "The sync protocol is in docs/sync-protocol.md."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", {"type": "object", "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "field": {"type": "string"}}}}})
    for name, schema in (("Login", LoginSchema), ("User", UserSchema), ("Push", PushSchema),
                         ("EnterpriseFields", EnterpriseFields), ("VisitFields", VisitFields),
                         ("ProblemFields", ProblemFields), ("HomeVisitFields", HomeVisitFields)):
        spec.components.schema(name, schema=schema)
    page = [_q("page", "integer"), _q("per_page", "integer"), _q("district")]
    paths = {
        "/api/auth/login": {"post": _op("Sign in a device", body="Login", auth=False)},
        "/api/auth/logout": {"post": _op("Sign out this device")},
        "/api/me": {"get": _op("The signed-in user")},
        "/api/reference": {"get": _op("Reference data for offline use")},
        "/api/progress": {"get": _op("My district's progress against the targets")},
        "/api/visits": {"get": _op("Visits in scope", params=page + [
            _q("method"), _q("work_group"), _q("from"), _q("to"), _q("canonical")])},
        "/api/visits/{record_id}": {"get": _op("One visit with its problems",
                                               params=[_p("record_id")], errors=(401, 404))},
        "/api/problems": {"get": _op("Problems in scope", params=page + [
            _q("category"), _q("tag"), _q("stage")])},
        "/api/problems/{record_id}": {"get": _op("One problem with its stage history",
                                                 params=[_p("record_id")], errors=(401, 404))},
        "/api/enterprises": {"get": _op("Enterprises in scope", params=page + [_q("q")])},
        "/api/records/{entity}/{record_id}/history": {"get": _op(
            "Audit entries and conflicts of a record", params=[_p("entity"), _p("record_id")],
            errors=(401, 404))},
        "/api/sync/push": {"post": _op("Push a batch of mutations", body="Push",
                                       errors=(400, 401, 403, 413, 426, 503))},
        "/api/sync/pull": {"get": _op("Pull changes after a cursor", params=[
            _q("cursor"), _q("limit", "integer"), _q("protocol", "integer")],
            errors=(400, 401, 426))},
        "/api/admin/devices": {"get": _op("Signed-in devices (admin)", errors=(401, 403))},
        "/api/admin/devices/{device_id}/revoke": {"post": _op(
            "Revoke a lost device (admin)", params=[_p("device_id")], errors=(401, 403, 404))},
        "/api/admin/queue": {"get": _op("Outbox and broker queue state (admin)",
                                        errors=(401, 403))},
        "/healthz": {"get": _op("Process is up", auth=False, errors=())},
        "/readyz": {"get": _op("Database and broker reachable", auth=False, errors=())},
    }
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@bp.get("/api/openapi.json")
def openapi():  # noqa: ANN201
    return jsonify(build_spec())
