"""Log lines: with LOG_JSON=false a request line keeps method, path, status and request id."""

from __future__ import annotations

import json
import logging
import re

import pytest

from server.logs import JsonFormatter, TextFormatter, configure_logging


@pytest.fixture
def app_logging(tmp_path, capsys):  # noqa: ANN001, ANN201
    """Build an app with the given LOG_JSON; the stderr it logs to is captured."""
    from server.app import create_app

    def build(as_json: bool):  # noqa: ANN202
        app = create_app(
            DATA_DIR=str(tmp_path),
            DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
            LOG_JSON=as_json,
            LOG_LEVEL="INFO",
        )
        return app.test_client()

    yield build
    configure_logging("WARNING", False)  # the tests' own level again


def request_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "fieldvisit.http" in line]


def test_plain_request_lines_keep_method_path_status_and_request_id(app_logging, capsys) -> None:
    client = app_logging(as_json=False)
    capsys.readouterr()
    client.get("/api/openapi.json", headers={"X-Request-ID": "req-plain-1"})
    client.delete("/api/openapi.json")  # GET only: 405
    lines = request_lines(capsys.readouterr().err)
    assert len(lines) == 2, lines
    first, second = lines
    assert re.search(r" INFO fieldvisit\.http request method=GET path=/api/openapi\.json ", first)
    assert " status=200 " in first and re.search(r" ms=\d+(\.\d+)? ", first)
    assert first.endswith(" request_id=req-plain-1")
    assert "method=DELETE path=/api/openapi.json status=405" in second
    assert not first.lstrip().startswith("{")


def test_json_request_lines_have_the_same_fields(app_logging, capsys) -> None:
    client = app_logging(as_json=True)
    capsys.readouterr()
    client.get("/api/openapi.json", headers={"X-Request-ID": "req-json-1"})
    (line,) = request_lines(capsys.readouterr().err)
    record = json.loads(line)
    assert (record["method"], record["path"], record["status"]) == ("GET", "/api/openapi.json", 200)
    assert record["request_id"] == "req-json-1"


def test_text_values_with_spaces_are_quoted_and_exceptions_follow() -> None:
    from server.logs import request_id_var

    request_id_var.set(None)  # outside a request
    record = logging.LogRecord("fieldvisit.x", logging.ERROR, __file__, 1, "boom", (), None)
    record.reason = "a b=c"
    record.count = 3
    try:
        raise ValueError("inner")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    text = TextFormatter().format(record)
    head, _, rest = text.partition("\n")
    assert head.endswith(' ERROR fieldvisit.x boom reason="a b=c" count=3')
    assert "ValueError: inner" in rest
    assert json.loads(JsonFormatter().format(record))["reason"] == "a b=c"
