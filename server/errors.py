"""API errors: every 4xx/5xx under /api answers {"error": {"code", "message", "field"?}}."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, jsonify, request
from marshmallow import ValidationError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import BadRequest, HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer with a stable code the PWA maps to a message."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, **extra: Any
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.extra = (
            status,
            code,
            message,
            field,
            extra,
        )

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, **self.extra}
        if self.field:
            err["field"] = self.field
        return {"error": err}


def validation_error(err: ValidationError) -> ApiError:
    """The first field error of a marshmallow ValidationError as an ApiError (400)."""

    def first(messages: Any, path: str = "") -> tuple[str, str]:
        if isinstance(messages, dict):
            key, value = next(iter(messages.items()))
            return first(value, f"{path}.{key}" if path else str(key))
        if isinstance(messages, list) and messages:
            return first(messages[0], path)
        return path, str(messages)

    field, reason = first(err.messages)
    return ApiError(400, "invalid", f"{field}: {reason}", field or None)


def _json_error(body: dict[str, Any], status: int):  # noqa: ANN202
    """The error body with its message in the language the request prefers."""
    from server.messages import localize_error, prefers_chinese

    chinese = prefers_chinese(request.headers.get("Accept-Language"))
    response = jsonify(localize_error(body, chinese))
    response.vary.add("Accept-Language")
    return response, status


# A server page's error in the reader's language (werkzeug's own pages are English).
PAGE_ERRORS = {
    400: (
        "请求有误",
        "Bad request",
        "请检查链接或表单后重试。",
        "Check the link or form and try again.",
    ),
    401: ("需要登录", "Sign-in needed", "请先登录。", "Please sign in first."),
    403: (
        "无权访问",
        "Not allowed",
        "您的账号不能查看此页。",
        "Your account may not see this page.",
    ),
    404: (
        "页面不存在",
        "Page not found",
        "链接可能已失效、输入有误，或此记录不在您的范围内。",
        "The link may have expired or be mistyped, or the record is outside your scope.",
    ),
    405: (
        "操作不允许",
        "Method not allowed",
        "此页不接受这种请求。",
        "This page does not accept it.",
    ),
    413: ("内容过大", "Too large", "提交的内容超过上限。", "What was sent is over the limit."),
    429: ("操作太频繁", "Too many requests", "请稍后再试。", "Please try again later."),
}


def error_page(err: HTTPException):  # noqa: ANN201
    """An HTML error page in Chinese (or English when the reader switched) that keeps the
    error's status and headers (Allow, Retry-After, WWW-Authenticate). Redirects and
    anything below 400 pass through unchanged. It reads no database: it must render
    when the database is the problem."""
    from flask import render_template, session

    status = err.code or 500
    if status < 400 or err.response is not None:
        return err
    try:
        en = session.get("lang") == "en"
    except Exception:  # noqa: BLE001 - an unreadable session: the default language
        en = False
    zh_title, en_title, zh_hint, en_hint = PAGE_ERRORS.get(
        status, ("出错了", "Something went wrong", "请稍后再试。", "Please try again later.")
    )
    # Our own descriptions say what was wrong; werkzeug's defaults are English boilerplate.
    detail = err.description if err.description != type(err).description else None
    body = render_template(
        "web/error.html",
        en=en,
        status=status,
        title=en_title if en else zh_title,
        hint=en_hint if en else zh_hint,
        detail=detail,
    )
    headers = [(k, v) for k, v in err.get_headers() if k.lower() != "content-type"]
    return body, status, headers


def register_error_handlers(app: Flask) -> None:
    """JSON errors for /api; the database session rolled back on every error. Messages
    follow Accept-Language (server/messages.py); codes never change."""
    from server.extensions import db
    from server.params import ParamError

    @app.errorhandler(ParamError)
    def _param_error(err: ParamError):  # noqa: ANN202
        db.session.rollback()
        if request.path.startswith("/api"):
            return _json_error(err.body(), err.status)
        return error_page(BadRequest(f"请求参数有误 (invalid parameter) — {err.message}"))

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):  # noqa: ANN202
        db.session.rollback()
        response, status = _json_error(err.body(), err.status)
        if "retry_after" in err.extra:  # 429 too_many_attempts, 503 busy
            response.headers["Retry-After"] = str(err.extra["retry_after"])
        return response, status

    @app.errorhandler(ValidationError)
    def _validation(err: ValidationError):  # noqa: ANN202
        db.session.rollback()
        api = validation_error(err)
        return _json_error(api.body(), api.status)

    @app.errorhandler(OperationalError)
    def _db_down(err: OperationalError):  # noqa: ANN202
        db.session.rollback()
        log.error("database unavailable: %s", type(err.orig).__name__)
        return _json_error(
            {
                "error": {
                    "code": "unavailable",
                    "message": "the database is unavailable; try again later",
                }
            },
            503,
        )

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):  # noqa: ANN202
        if not request.path.startswith("/api"):
            return error_page(err)
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            400: "malformed",
            415: "unsupported_media_type",
        }.get(err.code or 500, "error")
        return _json_error({"error": {"code": code, "message": err.description}}, err.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):  # noqa: ANN202
        db.session.rollback()
        # The error's class and where it happened, never its message: a database error's
        # text can quote the values of the row (a needy worker's name, a phone).
        log.error(
            "unexpected error: %s",
            type(err).__name__,
            extra={
                "path": request.path,
                "record_id": (request.view_args or {}).get("record_id")
                or (request.view_args or {}).get("visit_id"),
                "where": "".join(traceback.format_tb(err.__traceback__)[-3:]),
            },
        )
        return _json_error(
            {"error": {"code": "server_error", "message": "unexpected server error"}}, 500
        )
