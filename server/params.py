"""Strict parsing of query-string parameters (and of the fields of small JSON bodies),
shared by every page and JSON endpoint.

Every read of `request.args` in server/ goes through these helpers, so bad input is a
400 that names the parameter (JSON under /api, a 400 page elsewhere: see
server/errors.py), never a 5xx from the database or a template. An empty value means
the parameter was not given (HTML forms send empty fields). Dates are accepted only
inside the campaign's window (date_window: settings CAMPAIGN_START, CAMPAIGN_END,
SYNC_DATE_DAYS_BEFORE_CAMPAIGN, DATE_MIN and DATE_MAX_DAYS_AHEAD).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, current_app, request

from server.errors import ApiError

MAX_TEXT = 200
# Pages are bounded so OFFSET (page - 1) * per_page always fits a 32-bit integer.
PAGE_MAX = 1_000_000
INT_MAX = 2**31 - 1
_INT = re.compile(r"[+-]?[0-9]{1,10}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class ParamError(ApiError):
    """A bad query-string parameter: 400 `invalid` with the parameter as `field`."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(400, "invalid", f"{name}: {reason}", name)


def _raw(name: str, max_len: int = MAX_TEXT) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if len(value) > max_len:
        raise ParamError(name, f"at most {max_len} characters")
    if _CONTROL.search(value):
        raise ParamError(name, "must not contain control characters")
    return value


def text_arg(name: str, default: str | None = None, max_len: int = MAX_TEXT) -> str | None:
    """A free-text parameter (search boxes, codes looked up afterwards)."""
    value = _raw(name, max_len)
    return default if value is None else value


def choice_arg(name: str, allowed: Iterable[str], default: str | None = None) -> str | None:
    """One of `allowed`, or `default` when absent."""
    allowed = tuple(allowed)
    value = _raw(name)
    if value is None:
        return default
    if value not in allowed:
        raise ParamError(name, f"must be one of {', '.join(allowed)}")
    return value


def choices_arg(name: str, allowed: Iterable[str]) -> tuple[str, ...]:
    """A repeated parameter (?tag=a&tag=b), each value one of `allowed`."""
    allowed = tuple(allowed)
    values = []
    for value in request.args.getlist(name):
        if value == "":
            continue
        if value not in allowed:
            raise ParamError(name, f"each value must be one of {', '.join(allowed)}")
        values.append(value)
    return tuple(dict.fromkeys(values))


def flag_arg(name: str) -> bool:
    """A yes/no parameter: 1/true/yes/on or 0/false/no/off; absent is no."""
    value = _raw(name)
    if value is None:
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ParamError(name, "must be 1 or 0")


def int_arg(
    name: str, default: int | None, minimum: int = 1, maximum: int | None = None
) -> int | None:
    """A decimal integer between `minimum` and `maximum` (default: 32-bit)."""
    maximum = INT_MAX if maximum is None else maximum
    value = _raw(name)
    if value is None:
        return default
    if not _INT.fullmatch(value):
        raise ParamError(name, f"an integer between {minimum} and {maximum} is required")
    number = int(value)
    if not minimum <= number <= maximum:
        raise ParamError(name, f"must be between {minimum} and {maximum}")
    return number


def page_arg(name: str = "page") -> int:
    """A 1-based page number."""
    return int_arg(name, 1, 1, PAGE_MAX)


def per_page_arg(default: int = 50) -> int:
    """Rows per page: `default` when absent, never more than the API_PAGE_MAX setting."""
    most = current_app.config["FV"].API_PAGE_MAX
    return int_arg("per_page", min(default, most), 1, most)


def date_window() -> tuple[date, date]:
    """The dates a URL may name: the campaign's (settings).

    From the earliest day a record may carry (SYNC_DATE_DAYS_BEFORE_CAMPAIGN days before
    CAMPAIGN_START, never before DATE_MIN) to DATE_MAX_DAYS_AHEAD days after the earlier
    of today and CAMPAIGN_END. So a range spans at most the campaign and a year on each
    side: a dashboard of "every week since the year 1000" cannot be asked for.
    """
    settings = current_app.config["FV"]
    today = datetime.now(ZoneInfo(settings.TIMEZONE)).date()
    start = date.fromisoformat(settings.CAMPAIGN_START)
    end = date.fromisoformat(settings.CAMPAIGN_END)
    low = max(
        date.fromisoformat(settings.DATE_MIN),
        start - timedelta(days=settings.SYNC_DATE_DAYS_BEFORE_CAMPAIGN),
    )
    high = min(today, end) + timedelta(days=settings.DATE_MAX_DAYS_AHEAD)
    return low, max(low, high)


def _in_window(name: str, day: date) -> date:
    low, high = date_window()
    if not low <= day <= high:
        raise ParamError(name, f"must be a date between {low.isoformat()} and {high.isoformat()}")
    return day


def date_arg(name: str, default: date | None = None) -> date | None:
    """A calendar date YYYY-MM-DD inside date_window()."""
    value = _raw(name)
    if value is None:
        return default
    return parse_date(name, value)


def parse_date(name: str, value: str) -> date:
    """`value` as a date YYYY-MM-DD inside date_window(), or a ParamError naming `name`."""
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise ParamError(name, "expected a date YYYY-MM-DD") from None
    return _in_window(name, day)


def datetime_arg(name: str) -> datetime | None:
    """An ISO date or date-time (aware, in UTC); without an offset it is local time
    (the TIMEZONE setting), a bare date its local midnight."""
    value = _raw(name, 64)
    if value is None:
        return None
    tz = ZoneInfo(current_app.config["FV"].TIMEZONE)
    try:
        if _DATE.fullmatch(value):
            moment = datetime.combine(date.fromisoformat(value), time(), tz)
        else:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
    except ValueError:
        raise ParamError(name, "expected an ISO date or date-time") from None
    _in_window(name, moment.replace(tzinfo=None).date())
    return moment.astimezone(UTC)


# ---------------------------------------------------------------------------- JSON fields


def body_text(
    body: dict[str, Any],
    name: str,
    max_len: int = MAX_TEXT,
    *,
    multiline: bool = False,
    required: bool = False,
) -> str | None:
    """A string field of a JSON object body (null or absent: None)."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ParamError(name, "is required")
        return None
    if not isinstance(value, str):
        raise ParamError(name, "must be a string")
    if len(value) > max_len:
        raise ParamError(name, f"at most {max_len} characters")
    if (_CONTROL_MULTILINE if multiline else _CONTROL).search(value):
        raise ParamError(name, "must not contain control characters")
    return value


def body_int(body: dict[str, Any], name: str, minimum: int, maximum: int) -> int | None:
    """An integer field of a JSON object body (a decimal string is accepted too)."""
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and _INT.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(name, f"an integer between {minimum} and {maximum} is required")
    if not minimum <= value <= maximum:
        raise ParamError(name, f"must be between {minimum} and {maximum}")
    return value


def check_path_values() -> None:
    """A before_request hook: a control character (a NUL) in a URL's path segment, or an
    integer id beyond 32 bits, is a 404.

    Record ids and codes from the path go straight into queries, and PostgreSQL refuses
    NUL in text: such a URL names nothing, so it is answered like an unknown record.
    """
    for value in (request.view_args or {}).values():
        if isinstance(value, str) and _CONTROL.search(value):
            abort(404)
        if isinstance(value, int) and not 0 <= value <= INT_MAX:
            abort(404)  # an <int:...> id beyond the INTEGER column's range names nothing
