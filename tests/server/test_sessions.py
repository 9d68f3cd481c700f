"""Sessions that end (issue 13, item 6): cookie flags; logout (web or app), a password
reset and disabling an account end every cookie and token of that user, copies
included; `fieldvisit disable-user` and the admin page's action. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import secrets

from flask import g

from server.cli import create_user as create_user_cmd
from server.cli import disable_user_cmd, enable_user_cmd
from tests.conftest import PASSWORD, Phone, create_user, make_app


def _fresh() -> None:
    """The test's app context outlives requests, and server.web caches the user in g."""
    g.pop("web_user", None)


def _web_login(client, username: str, password: str = PASSWORD):
    _fresh()
    r = client.post("/login", data={"username": username, "password": password})
    _fresh()
    return r


def _signed_in(client) -> bool:
    """True when the client's cookie still signs someone in (a page, not the login)."""
    _fresh()
    r = client.get("/start")
    _fresh()
    return not (r.status_code == 302 and "/login" in r.headers["Location"])


def _copy_cookie(src, dst) -> None:
    cookie = src.get_cookie("session")
    assert cookie is not None
    dst.set_cookie("session", cookie.value)


def _csrf(client, path: str) -> str:
    _fresh()
    page = client.get(path).get_data(as_text=True)
    _fresh()
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_cookie_flags_development(app, client):
    create_user("cadre", "field_cadre", "510104", "WG01")
    r = _web_login(client, "cadre")
    assert r.status_code == 302
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_cookie_flags_production(_migrated):
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
        from server.extensions import db

        try:
            create_user("prodcadre", "field_cadre", "510104", "WG01")
            r = _web_login(prod.test_client(), "prodcadre")
            assert r.status_code == 302
            cookie = r.headers["Set-Cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        finally:
            from server.models import User

            db.session.query(User).filter_by(username="prodcadre").delete()
            db.session.commit()
            db.session.remove()
            db.engine.dispose()


def test_web_logout_ends_copied_cookies_and_tokens(app, client):
    create_user("head", "district_head", "510104")
    phone = Phone(app.test_client(), "head")
    assert _web_login(client, "head").status_code == 302
    thief = app.test_client()
    _copy_cookie(client, thief)
    assert _signed_in(thief)
    _fresh()
    r = client.post("/logout")
    assert r.status_code == 302
    assert not _signed_in(client)
    assert not _signed_in(thief)  # the copy taken before logout no longer works
    r = phone.get("/api/me")
    assert r.status_code == 401 and r.json["error"]["code"] == "auth_required"
    # Signing in again works, and the new session is independent of the old copies.
    assert _web_login(client, "head").status_code == 302
    assert _signed_in(client) and not _signed_in(thief)
    assert Phone(app.test_client(), "head").get("/api/me").status_code == 200


def test_app_logout_ends_every_token_and_cookie(app, client):
    create_user("cadre", "field_cadre", "510104", "WG01")
    one, two = Phone(app.test_client(), "cadre"), Phone(app.test_client(), "cadre")
    assert _web_login(client, "cadre").status_code == 302
    assert one.get("/api/me").status_code == 200 and two.get("/api/me").status_code == 200
    r = one.client.post("/api/auth/logout", headers=one.headers)
    assert r.status_code == 200
    _fresh()
    assert one.get("/api/me").status_code == 401
    assert two.get("/api/me").status_code == 401
    assert not _signed_in(client)


def test_password_reset_ends_sessions(app, client):
    create_user("cadre", "field_cadre", "510104", "WG01")
    phone = Phone(app.test_client(), "cadre")
    assert _web_login(client, "cadre").status_code == 302
    runner = app.test_cli_runner()
    result = runner.invoke(
        create_user_cmd,
        ["cadre", "--role", "field_cadre", "--district", "510104", "--work-group", "WG01"],
        env={"FIELDVISIT_NEW_PASSWORD": "a-new-password-9"},
    )
    assert result.exit_code == 0, result.output
    _fresh()
    assert phone.get("/api/me").status_code == 401
    assert not _signed_in(client)
    assert _web_login(client, "cadre").status_code == 401  # the old password is gone
    assert _web_login(client, "cadre", "a-new-password-9").status_code == 302


def test_disable_user_command(app, client):
    create_user("cadre", "field_cadre", "510104", "WG01")
    phone = Phone(app.test_client(), "cadre")
    assert _web_login(client, "cadre").status_code == 302
    runner = app.test_cli_runner()
    result = runner.invoke(disable_user_cmd, ["cadre"])
    assert result.exit_code == 0, result.output
    assert "disabled" in result.output
    _fresh()
    r = phone.get("/api/me")
    assert r.status_code == 401 and r.json["error"]["code"] == "user_disabled"
    assert not _signed_in(client)
    assert _web_login(client, "cadre").status_code == 401
    r = app.test_client().post("/api/auth/login", json={"username": "cadre", "password": PASSWORD})
    assert r.status_code == 401
    # An unknown name is a clear error naming the argument, not a traceback.
    result = runner.invoke(disable_user_cmd, ["nobody"])
    assert result.exit_code == 2 and "nobody" in result.output
    # Enabled again: a new sign-in works, the old phone token stays ended.
    assert runner.invoke(enable_user_cmd, ["cadre"]).exit_code == 0
    _fresh()
    assert phone.get("/api/me").status_code == 401
    assert _web_login(client, "cadre").status_code == 302
    assert Phone(app.test_client(), "cadre").get("/api/me").status_code == 200


def test_admin_page_disables_an_account(app, client):
    create_user("admin", "admin")
    target = create_user("cadre", "field_cadre", "510104", "WG01")
    phone = Phone(app.test_client(), "cadre")
    victim = app.test_client()
    assert _web_login(victim, "cadre").status_code == 302
    assert _web_login(client, "admin").status_code == 302
    _fresh()
    page = client.get("/admin/users")
    assert page.status_code == 200 and b'data-user="cadre"' in page.data
    # Without the page's token the action is refused.
    _fresh()
    assert client.post(f"/admin/users/{target.id}/disable").status_code == 400
    assert phone.get("/api/me").status_code == 200
    csrf = _csrf(client, "/admin/users")
    _fresh()
    r = client.post(f"/admin/users/{target.id}/disable", data={"csrf_token": csrf})
    assert r.status_code == 302
    _fresh()
    assert phone.get("/api/me").status_code == 401
    assert not _signed_in(victim)
    _fresh()
    assert "已停用".encode() in client.get("/admin/users").data
    # The admin cannot lock themselves out; other roles may not see the page.
    from server.extensions import db
    from server.models import User

    me = db.session.query(User).filter_by(username="admin").one()
    _fresh()
    client.post(f"/admin/users/{me.id}/disable", data={"csrf_token": csrf})
    assert _signed_in(client)
    _fresh()
    assert client.post("/admin/users/999999/disable", data={"csrf_token": csrf}).status_code == 404
    create_user("coord", "city_coordinator")
    other = app.test_client()
    assert _web_login(other, "coord").status_code == 302
    _fresh()
    assert other.get("/admin/users").status_code == 403
