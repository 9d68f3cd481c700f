"""The public status page (查询码), on SQLite and PostgreSQL: unguessable codes stored only
as keyed hashes, issued and revoked by those who may write the problem, a page with no
personal data and nothing of other problems, and the rate limit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

from config.settings import load_settings
from server import status_codes
from tests.conftest import PASSWORD, Phone, create_user, visit_fields

SECRET_WORDS = ["王小明", "13800001234", "夜班工资拖欠三个月", "锦江区"]


def test_codes_are_random_and_typed_forgivingly():
    codes = {status_codes.new_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:50]:
        assert len(code) == 14 and code.count("-") == 2
        assert set(code.replace("-", "")) <= set(status_codes.ALPHABET)
        assert status_codes.normalise(code.lower().replace("-", " ")) == code.replace("-", "")
    assert len(status_codes.ALPHABET) == 30 and not set("01IOLU") & set(status_codes.ALPHABET)
    assert status_codes.normalise("ABCD-EFGH-JKM") is None  # too short
    assert status_codes.normalise("ABCD-EFGH-JKM0") is None  # not in the alphabet
    assert status_codes.normalise("") is None


def _problem(client, cadre: str = "cadre1") -> tuple[Phone, str]:
    phone = Phone(client, cadre)
    vid, pid = str(uuid.uuid4()), str(uuid.uuid4())
    r = phone.push(
        [
            phone.mutation("create", "visit", vid, visit_fields(notes="王小明 13800001234")),
            phone.mutation(
                "create",
                "problem",
                pid,
                {
                    "visit_id": vid,
                    "category": "wages",
                    "description": "夜班工资拖欠三个月（王小明）",
                },
            ),
        ]
    )
    assert [x["status"] for x in r.json["results"]] == ["applied", "applied"], r.json
    return phone, pid


def test_issue_lookup_resolve_and_revoke(client, app):
    from server.extensions import db
    from server.models import Problem

    create_user("cadre1", "field_cadre", "510104", "WG01")
    create_user("other", "field_cadre", "510105")
    phone, pid = _problem(client)
    _, unrelated = _problem(client)  # another problem: never shown by this code
    outsider = Phone(client, "other")
    r = outsider.client.post(f"/api/problems/{pid}/status-code", headers=outsider.headers)
    assert r.status_code == 404  # outside the writer's scope
    r = phone.client.post(f"/api/problems/{pid}/status-code", headers=phone.headers)
    assert r.status_code == 200
    code = r.json["code"]
    # Only a keyed hash is stored: the code is in no column of any problem.
    raw = [tuple(map(str, row)) for row in db.session.execute(text("SELECT * FROM problems"))]
    assert not any(code.replace("-", "") in cell or code in cell for row in raw for cell in row)
    stored = db.session.get(Problem, pid).status_code_hash
    assert stored == status_codes.code_hash(app.config["FV"].SECRET_KEY, code.replace("-", ""))

    public = app.test_client()  # no cookie, no token
    page = public.post("/q", data={"code": code.lower()})
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="status"' in body
    assert "工资" in body and "与企业沟通协调" in body
    assert page.headers["Cache-Control"] == "no-store" and "noindex" in page.headers["X-Robots-Tag"]
    for secret in [*SECRET_WORDS, pid, unrelated]:
        assert secret not in body, secret
    assert "办理结果" not in body
    # Resolved: the page shows what was done.
    version = db.session.get(Problem, pid).version
    phone.push(
        [
            phone.mutation(
                "update",
                "problem",
                pid,
                {"stage": "resolved", "resolution": "企业已补发工资"},
                base_version=version,
            )
        ]
    )
    body = public.get(f"/q/{code}").get_data(as_text=True)
    assert "已解决" in body and "企业已补发工资" in body
    # Revoked: exactly like an unknown code.
    r = phone.client.post(f"/api/problems/{pid}/status-code/revoke", headers=phone.headers)
    assert r.json == {"revoked": True}
    gone = public.post("/q", data={"code": code})
    unknown = public.post("/q", data={"code": status_codes.new_code()})
    assert gone.status_code == unknown.status_code == 404
    assert gone.get_data(as_text=True) == unknown.get_data(as_text=True)
    # A new code works, the old one stays dead.
    new = phone.client.post(f"/api/problems/{pid}/status-code", headers=phone.headers).json
    assert public.post("/q", data={"code": new["code"]}).status_code == 200
    assert public.post("/q", data={"code": code}).status_code == 404


def test_lookups_are_rate_limited_per_client(client, app):
    from server.extensions import db

    settings = load_settings(
        env={},
        **{**app.config["FV"].values, "STATUS_LOOKUPS_PER_WINDOW": 3},
    )
    app.config["FV"] = settings
    create_user("cadre1", "field_cadre", "510104", "WG01")
    phone, pid = _problem(client)
    code = phone.client.post(f"/api/problems/{pid}/status-code", headers=phone.headers).json["code"]
    guesser = app.test_client()
    answers = [
        guesser.post("/q", data={"code": status_codes.new_code()}).status_code for _ in range(3)
    ]
    assert answers == [404, 404, 404]
    blocked = guesser.post("/q", data={"code": code})  # even the right code, now
    assert blocked.status_code == 429 and blocked.headers["Retry-After"] == "600"
    assert "查询过于频繁" in blocked.get_data(as_text=True)
    other = app.test_client()
    ok = other.post("/q", data={"code": code}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert ok.status_code == 200
    # After the window the guesser may look up again; old rows are dropped.
    later = datetime.now(UTC) + timedelta(seconds=601)
    assert status_codes.allowed(db.session, "x", 3, 600, later)
    from server.models_deadlines import StatusLookup

    assert db.session.scalars(select(StatusLookup.client)).all() == ["x"]


def test_tracker_buttons_and_the_public_page_screenshot(
    client, app, playwright_instance, chromium_path
):
    create_user("cadre1", "field_cadre", "510104", "WG01")
    create_user("coord", "city_coordinator")
    _, pid = _problem(client)
    web = app.test_client()
    web.post("/login", data={"username": "coord", "password": PASSWORD})
    page = web.get(f"/problems/{pid}").get_data(as_text=True)
    assert "生成查询码" in page and "未生成" in page
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    issued = web.post(f"/problems/{pid}/status-code", data={"csrf_token": token})
    html = issued.get_data(as_text=True)
    code = html.split('id="code"')[1].split(">")[1].split("<")[0]
    assert status_codes.normalise(code)
    assert "已生成" in web.get(f"/problems/{pid}").get_data(as_text=True)
    found = app.test_client().post("/q", data={"code": code}).get_data(as_text=True)
    out = Path(__file__).resolve().parents[1] / "screenshots" / "status-page-found.png"
    browser = playwright_instance.chromium.launch(
        executable_path=chromium_path,
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    )
    try:
        tab = browser.new_page(viewport={"width": 390, "height": 700})
        tab.set_content(found)
        assert tab.locator("#status").is_visible()
        tab.screenshot(path=str(out), full_page=True)
    finally:
        browser.close()
    assert out.stat().st_size > 5_000
    revoked = web.post(
        f"/problems/{pid}/status-code", data={"csrf_token": token, "action": "revoke"}
    )
    assert 'id="revoked"' in revoked.get_data(as_text=True)
    assert app.test_client().post("/q", data={"code": code}).status_code == 404
