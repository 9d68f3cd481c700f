"""Structured (JSON) logs with a request id that follows a sync batch into Celery tasks."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = (
                    value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
                )
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """LOG_JSON=false: one readable line, with the same fields as the JSON line.

    `time LEVEL logger message key=value ...`: a request line reads
    `... fieldvisit.http request method=POST path=/api/sync/push status=200 ms=41.2
    request_id=...`, so nothing the JSON line has is lost.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        fields = [
            f"{key}={_text_value(value)}"
            for key, value in vars(record).items()
            if key not in _STANDARD and not key.startswith("_")
        ]
        request_id = request_id_var.get()
        if request_id and "request_id" not in vars(record):
            fields.append(f"request_id={_text_value(request_id)}")
        line = super().formatMessage(record)
        return f"{line} {' '.join(fields)}" if fields else line


def _text_value(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    return (
        json.dumps(text, ensure_ascii=False)
        if not text or any(c in text for c in ' "=\n')
        else text
    )


def configure_logging(level: str = "INFO", as_json: bool = True) -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_fieldvisit", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._fieldvisit = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
