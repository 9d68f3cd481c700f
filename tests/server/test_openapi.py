"""The OpenAPI document lists every JSON endpoint under /api (issue 11, item 8)."""

from __future__ import annotations

import re


def _documented(app) -> set[tuple[str, str]]:
    doc = app.test_client().get("/api/openapi.json").json
    return {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}


def test_every_api_rule_is_documented(app):
    documented = _documented(app)
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (path, method) not in documented:
                missing.append(f"{method} {path}")
    assert not missing, f"missing from /api/openapi.json: {missing}"


def test_every_operation_has_a_response_schema(app):
    doc = app.test_client().get("/api/openapi.json").json
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ok = [r for code, r in op["responses"].items() if code.startswith("2")]
            assert ok and all("schema" in r["content"]["application/json"] for r in ok), (
                method,
                path,
            )
