"""Small helpers shared by the API views: JSON bodies, pagination, scope filters."""

from __future__ import annotations

from typing import Any

from flask import request
from sqlalchemy import Select, func, select

from server.errors import ApiError
from server.extensions import db
from server.params import int_arg, page_arg, per_page_arg

__all__ = ["int_arg", "json_body", "paginate"]


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 that says why not."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "malformed", "the body must be a JSON object")
    return data


def paginate(query: Select, serialize: Any) -> dict[str, Any]:
    """One page of a query as {"items", "page", "per_page", "total"}."""
    page = page_arg()
    per_page = per_page_arg()
    total = db.session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    return {
        "items": [serialize(r) for r in rows],
        "page": page,
        "per_page": per_page,
        "total": total,
    }
