"""Security headers (issue 13, item 7) on every route of the app, signed in or not, and
the pages and the field app working under the Content-Security-Policy in Chromium.
On SQLite and PostgreSQL."""

from __future__ import annotations

import re
import secrets
import threading
import uuid

import pytest
from sqlalchemy import select

from tests.conftest import CHROMIUM_ARGS, PASSWORD, Phone, create_user, make_app

NOT_PERSONAL = ("/web-assets/",)  # the pages' scripts; the field app's files: see _static


def _static(path: str) -> bool:
    """The field app's own files and the pages' scripts: the same for everybody."""
    return path.startswith(NOT_PERSONAL) or bool(
        re.fullmatch(
            r"/(index\.html|sw[\w-]*\.js|app\.css|manifest\.webmanifest|js/.*|icons/.*)?", path
        )
    )


def _urls(app) -> list[tuple[str, str]]:
    """(method, path) of every rule, its variables filled with values that name nothing."""
    out = []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for arg in rule.arguments:
            converter = rule._converters[arg].__class__.__name__  # noqa: SLF001
            value = "1" if converter == "IntegerConverter" else "x"
            path = re.sub(rf"<(?:[^:<>]+:)?{arg}>", value, path)
        for method in sorted(rule.methods - {"OPTIONS", "HEAD"}):
            out.append((method, path))
    return out


def _check(r, method: str, path: str, production: bool = False) -> None:
    where = f"{method} {path} -> {r.status_code}"
    csp = r.headers.get("Content-Security-Policy", "")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if " " in d.strip())
    assert directives.get("script-src") == "'self'", where  # no inline script, no eval
    assert directives.get("frame-ancestors") == "'none'", where
    assert directives.get("object-src") == "'none'", where
    assert r.headers.get("X-Content-Type-Options") == "nosniff", where
    assert r.headers.get("X-Frame-Options") == "DENY", where
    assert r.headers.get("Referrer-Policy") == "no-referrer", where
    hsts = r.headers.get("Strict-Transport-Security")
    if production:
        assert (
            hsts and "max-age=" in hsts and int(hsts.split("max-age=")[1].split(";")[0]) >= 31536000
        ), where
    else:
        assert hsts is None, where
    cache = r.headers.get("Cache-Control", "")
    if _static(path) and r.status_code == 200:
        assert "no-cache" in cache or "no-store" in cache, where
    else:
        assert "no-store" in cache, where


def _all_routes(app, client, headers=None) -> int:
    seen = 0
    for method, path in _urls(app):
        r = client.open(path, method=method, headers=headers or {})
        _check(r, method, path, app.config["FV"].is_production)
        seen += 1
    return seen


def _forget_user() -> None:
    from flask import g

    g.pop("web_user", None)


def test_headers_on_every_route_anonymous(app, client):
    assert _all_routes(app, client) > 50


def test_headers_on_every_route_signed_in(app, client):
    create_user("coord", "city_coordinator")
    phone = Phone(client, "coord")
    _forget_user()
    # The bearer token (API), then the cookie session (pages).
    assert _all_routes(app, client, phone.headers) > 50
    r = client.post("/login", data={"username": "coord", "password": PASSWORD})
    assert r.status_code == 302
    _forget_user()
    assert _all_routes(app, client) > 50
    # A page with personal data, an API answer, an export and an error: never stored.
    for path in ("/dashboard", "/api/visits", "/export/visits.csv", "/api/visits/nope"):
        r = client.get(path, headers=phone.headers if path.startswith("/api") else {})
        assert r.headers["Cache-Control"] == "no-store", path


def test_hsts_in_production(_migrated, tmp_path):
    url, data_dir = _migrated
    prod = make_app(
        url,
        data_dir,
        FIELDVISIT_ENV="production",
        SECRET_KEY=secrets.token_hex(32),
        ID_HASH_KEY=secrets.token_hex(32),
        ALLOW_SQLITE_IN_PRODUCTION=True,
    )
    with prod.app_context():
        client = prod.test_client()
        for method, path in [
            ("GET", "/"),
            ("GET", "/login"),
            ("GET", "/healthz"),
            ("GET", "/api/visits"),
        ]:
            _check(client.open(path, method=method), method, path, production=True)
        from server.extensions import db

        db.session.remove()
        db.engine.dispose()


# ---------------------------------------------------------------------------- in Chromium


@pytest.fixture
def live(app, db_session):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def _review_pair() -> None:
    from server.extensions import db
    from server.models import DistrictUnit, Enterprise
    from worker.merges import propose_review

    district = db.session.scalar(select(DistrictUnit).where(DistrictUnit.code == "510104"))
    a, b = (
        Enterprise(id=str(uuid.uuid4()), name=n, district_id=district.id)
        for n in ("成都庆源实业有限公司", "庆源实业有限公司")
    )
    db.session.add_all([a, b])
    db.session.flush()
    propose_review(db.session, "enterprise", a.id, b.id, 0.8, "name_similar_uncertain", {})
    db.session.commit()


def test_pages_and_field_app_work_under_the_policy(
    live, db_session, playwright_instance, chromium_path
):  # noqa: ANN001
    create_user("coord", "city_coordinator")
    create_user("cadre", "field_cadre", "510104", "WG01")
    _review_pair()
    browser = playwright_instance.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    violations: list[str] = []
    try:
        ctx = browser.new_context()
        ctx.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => "
            "(window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI))"
        )
        page = ctx.new_page()
        page.on(
            "console",
            lambda m: "Content Security Policy" in m.text and violations.append(m.text),
        )
        page.on("pageerror", lambda e: violations.append(f"page error: {e}"))
        page.goto(f"{live}/login?next=/review")
        page.fill("input[name=username]", "coord")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/review")
        # review.js ran: the first pair has the keyboard focus mark.
        page.wait_for_selector(".pair.focus", timeout=5000)
        for path in ("/dashboard", "/problems", "/evaluation", "/briefings/city"):
            r = page.goto(live + path)
            assert r is not None and r.status == 200, path
            assert page.evaluate("window.__csp || []") == [], path
        # The print button works without its old inline onclick.
        page.evaluate("window.print = () => { window.__printed = true; }")
        page.click("[data-print]")
        assert page.evaluate("window.__printed === true")
        ctx.close()
        # The field app: signs in, renders and installs its service worker.
        ctx = browser.new_context()
        page = ctx.new_page()
        page.on(
            "console",
            lambda m: "Content Security Policy" in m.text and violations.append(m.text),
        )
        page.on("pageerror", lambda e: violations.append(f"page error: {e}"))
        page.goto(live + "/")
        page.wait_for_selector("body[data-ready]")
        page.fill("input[name=username]", "cadre")
        page.fill("input[name=password]", PASSWORD)
        page.click("#loginf button[type=submit]")
        page.wait_for_selector("[data-testid=new-visit]")
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=20000)
        ctx.close()
    finally:
        browser.close()
    assert violations == []
