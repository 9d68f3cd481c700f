"""Server pages' errors speak the reader's language (issue 12, item 7): a 404, 405 or
400 on a page is a Chinese page (English after the switch) that keeps its status and
headers; the API keeps its JSON errors."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("path", "method", "status", "title"),
    [
        ("/r/no-such-token", "get", 404, "页面不存在"),
        ("/no/such/page", "get", 404, "页面不存在"),
        ("/login", "put", 405, "操作不允许"),
    ],
)
def test_page_errors_are_chinese_pages(client, path, method, status, title):
    r = getattr(client, method)(path)
    assert r.status_code == status
    html = r.get_data(as_text=True)
    assert r.mimetype == "text/html"
    assert f"<title>{title} · 基层走访</title>" in html and 'data-page="error"' in html
    assert "Not Found" not in html and "Method Not Allowed" not in html
    if status == 405:
        assert "GET" in r.headers["Allow"]


def test_page_errors_follow_the_language_switch(client):
    client.get("/login?lang=en")
    r = client.get("/no/such/page")
    assert r.status_code == 404 and "<title>Page not found · fieldvisit</title>" in r.text


def test_our_own_error_text_is_shown_and_escaped(client):
    from tests.conftest import PASSWORD, create_user

    create_user("coord", "city_coordinator")
    from server.extensions import db

    db.session.commit()
    assert client.post("/login", data={"username": "coord", "password": PASSWORD}).status_code in (
        302,
        303,
    )
    from flask import g

    g.pop("web_user", None)
    r = client.get("/dashboard?from=<script>x</script>")
    assert r.status_code == 400 and 'data-page="error"' in r.text
    assert "请求参数有误" in r.text and "from" in r.text  # says what and where
    assert "<script>x</script>" not in r.text


def test_api_errors_stay_json(client):
    r = client.get("/api/no-such-thing")
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
