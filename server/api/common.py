"""Small helpers shared by the API views: JSON bodies, pagination, scope filters."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from sqlalchemy import Select, func, select

from server.errors import ApiError
from server.extensions import db


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 that says why not."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "malformed", "the body must be a JSON object")
    return data


def int_arg(name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid", f"{name}: an integer is required", name) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ApiError(400, "invalid", f"{name}: must be between {minimum} and {maximum}", name)
    return value


def paginate(query: Select, serialize: Any) -> dict[str, Any]:
    """One page of a query as {"items", "page", "per_page", "total"}."""
    settings = current_app.config["FV"]
    page = int_arg("page", 1)
    per_page = int_arg("per_page", 50, 1, settings.API_PAGE_MAX)
    total = db.session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": [serialize(r) for r in rows], "page": page, "per_page": per_page,
            "total": total}
