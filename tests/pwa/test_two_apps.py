"""Two apps on one origin: once the field app's service worker is installed, every server
page still comes from the server (online), or says it needs a network (offline)."""

from __future__ import annotations

import re
import tempfile
from datetime import date
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from tests.pwa.test_field_app import open_app

pytestmark = pytest.mark.browser

# GET rules that are not HTML pages: files, downloads, health checks, the field app itself.
NOT_PAGES = {
    "index",  # the field app's shell
    "pwa_file",  # the field app's files
    "health.healthz",
    "health.readyz",
    "briefing.download",  # xlsx
    "coordination.export",  # csv / xlsx
    "sync_health.export",  # xlsx
    "web_assets",  # the server pages' own CSS/JS files
}
# Pages opened with a value that matches nothing: the server answers its own "not found"
# page (still a server page, never the app's shell). A valid /r/<token> redirects to the
# field app on purpose (a reminder's link); the check here is that the worker leaves it
# to the server.
NO_MATCH = {
    "status.status_link": ({"code": "NOSUCHCODE0"}, 404),
    "nonreporters.opened": ({"token": "no-such-token"}, 404),
    "reminders.ack_link": ({"token": "no-such-token"}, 404),
    # a photo that does not exist (or that the reader may not see) is the server's 404
    "attachments.thumb": ({"attachment_id": "00000000-0000-4000-8000-000000000000"}, 404),
    "attachments.full": ({"attachment_id": "00000000-0000-4000-8000-000000000000"}, 404),
}
DISTRICT = "510104"  # the demo cadre's district (锦江区)


def server_pages() -> dict[str, str]:
    """Every GET rule of the Flask app that renders HTML, by endpoint (from the url_map,
    so a new page is checked the day it is added, or this test says it is unknown)."""
    from server.app import create_app

    app = create_app(DATA_DIR=tempfile.mkdtemp(prefix="fv-urlmap-"))
    pages = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.rule.startswith("/api/") or rule.rule == "/api":
            continue
        if rule.endpoint in NOT_PAGES or rule.endpoint == "static":
            continue
        pages[rule.endpoint] = rule.rule
    return pages


def send_queued_briefings(data_dir) -> None:  # noqa: ANN001
    """What the Celery worker does with the deliveries the page queued (this server runs
    without a worker): send them, into the server's file outbox."""
    from sqlalchemy import select

    from server.app import create_app
    from server.extensions import db
    from server.models_briefing import BriefingDelivery
    from worker.briefing.deliver import send_delivery

    app = create_app(DATA_DIR=str(data_dir))
    with app.app_context():
        ids = db.session.scalars(
            select(BriefingDelivery.id).where(BriefingDelivery.status == "pending")
        ).all()
        for delivery_id in ids:
            send_delivery(db.session, app.config["FV"], delivery_id)
        db.session.commit()
        db.session.remove()


def web_sign_in(page, user: str, password: str = "demo-2012") -> None:  # noqa: ANN001
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")


def assert_server_page(page, url: str, status: int = 200) -> str:  # noqa: ANN001
    """Open url as a navigation; it must be the server's page, not the app's shell, while
    the field app's worker controls the tab. Returns the page's title."""
    res = page.goto(url)
    assert res is not None and res.status == status, (url, res and res.status)
    assert page.evaluate("navigator.serviceWorker.controller !== null"), (
        f"{url}: the worker is not in control, the check would prove nothing"
    )
    shell = page.evaluate(
        "Boolean(document.querySelector('script[src=\"/js/app.js\"], #syncbar, main[data-screen]'))"
    )
    assert not shell, f"{url}: the field app's shell answered a server page"
    # The same URL fetched (not navigated) is what the server renders: titles agree.
    served, body = page.evaluate(
        "async (u) => { const r = await fetch(u, {credentials: 'same-origin'});"
        " const t = await r.text(); const m = t.match(/<title>([^<]*)<\\/title>/);"
        " return [m && m[1].trim(), t.slice(0, 200)]; }",
        url,
    )
    if served is None and body.lstrip().startswith("{"):
        # not a page (a photo's URL answered with the API's JSON error): the document
        # shown is the server's answer itself
        assert '"error"' in body and page.inner_text("body").strip()[:50] in body, (url, body)
        return ""
    title = page.title()
    assert served and title == served, (url, title, served)
    assert "职工走访" != title
    return title


def test_every_server_page_is_the_servers_own_after_the_field_app_installed(
    fv_server, launch, shot
):  # noqa: ANN001
    pages = server_pages()
    ctx = launch("two-apps")
    page = open_app(ctx, fv_server.url)
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=20000)
    page.wait_for_function(
        "navigator.serviceWorker.ready.then(r => r.active && r.active.state === 'activated')"
    )
    # The web sign-in, reached through the worker, lands each role on its own pages.
    landings = {
        "admin": "/dashboard",
        "coordinator": "/dashboard",
        "supervisor": "/dashboard",
        "head_jinjiang": "/dashboard",
        "demo": f"/briefings/{DISTRICT}",
        "leader": "/start",
    }
    for user, path in landings.items():
        assert_server_page(page, fv_server.url + "/login")
        web_sign_in(page, user)
        got = re.sub(r"\?.*$", "", page.url.removeprefix(fv_server.url))
        assert got == path, (user, page.url)
        assert not page.evaluate("Boolean(document.querySelector('#syncbar'))")
        if user == "leader":
            assert "走访应用" in page.inner_text("main")
        page.context.clear_cookies()
    # A district head taps the emailed briefing link on the phone that has the app.
    assert_server_page(page, fv_server.url + f"/briefings/{DISTRICT}")  # the sign-in form
    assert "/login" in page.url
    web_sign_in(page, "head_jinjiang")
    assert page.url.split("?")[0] == fv_server.url + f"/briefings/{DISTRICT}"
    assert "锦江区" in page.inner_text("body")
    shot(page, "two-apps-emailed-briefing")
    page.context.clear_cookies()

    # As admin: the data that the pages with an id need, made through the pages (POST
    # navigations pass through the worker too).
    assert_server_page(page, fv_server.url + "/login")
    web_sign_in(page, "admin")
    assert_server_page(page, fv_server.url + "/briefings/admin/recipients")
    page.select_option("#district", DISTRICT)
    page.fill("#email", "head.e2e@example.invalid")
    with page.expect_navigation():
        page.click("form:has(#email) button[type=submit]")
    assert "head.e2e@example.invalid" in page.inner_text("body")
    assert_server_page(page, fv_server.url + "/briefings/admin/deliveries")
    page.fill("input[name=start]", date.today().isoformat())
    with page.expect_navigation():
        page.click("form:has(input[name=start]) button[type=submit]")
    assert_server_page(page, fv_server.url + "/spot-checks")
    page.fill("input[name=size]", "3")
    with page.expect_navigation():
        page.click("form:has(input[name=seed]) button[type=submit]")
    sample_id = int(re.search(r"/spot-checks/(\d+)", page.url).group(1))
    send_queued_briefings(fv_server.data_dir)
    mails = sorted((fv_server.data_dir / "outbox-mail").glob("*.eml"))
    assert mails, "sending the briefing wrote no message"
    msg = message_from_bytes(mails[0].read_bytes(), policy=default_policy)
    unsubscribe = re.search(r"/briefings/unsubscribe/([^>\s]+)", msg["List-Unsubscribe"]).group(1)
    changes = fv_server.pull_all()
    visit_id = next(c["id"] for c in changes if c["entity"] == "visit" and not c["deleted"])
    problem_id = next(c["id"] for c in changes if c["entity"] == "problem" and not c["deleted"])
    args = {
        "code": DISTRICT,
        "visit_id": visit_id,
        "problem_id": problem_id,
        "sample_id": str(sample_id),
        "name": mails[0].name,
        "token": unsubscribe,
    }
    checked = []
    for endpoint, rule in sorted(pages.items(), key=lambda kv: kv[1]):
        values, status = NO_MATCH.get(endpoint, (args, 200))
        names = re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", rule)
        unknown = [n for n in names if n not in values]
        assert not unknown, f"{endpoint} {rule}: no value for {unknown}; add one to this test"
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m, v=values: v[m.group(1)], rule)
        urls = [path] + (["/briefings/city"] if endpoint == "briefing.district_page" else [])
        for u in urls:
            title = assert_server_page(page, fv_server.url + u, status)
            if u == "/login":
                assert page.is_visible("input[name=password]")
            checked.append((u, title))
            shot(page, "two-apps" + re.sub(r"[^a-z0-9]+", "-", u.lower()).rstrip("-"))
    print("server pages checked:", *(f"{u}  [{t}]" for u, t in checked), sep="\n  ")
    assert len(checked) >= len(pages)
    # The briefing index redirects city staff to the city-wide page (was a 500).
    assert page.goto(fv_server.url + "/briefings/").status == 200
    assert page.url.split("?")[0].endswith("/briefings/city")

    # Offline: server pages say they need a network and lead to the app, which starts.
    ctx.set_offline(True)
    for u in ("/dashboard", "/login", f"/briefings/{DISTRICT}", "/review"):
        res = page.goto(fv_server.url + u)
        assert res.status == 503, u
        assert page.is_visible("[data-page=offline]"), u
        assert "需要网络" in page.inner_text("h1")
    shot(page, "two-apps-offline-server-page")
    page.click("[data-testid=open-app]")
    page.wait_for_selector("body[data-ready]")
    assert page.is_visible("#loginf, [data-testid=new-visit]")
    ctx.set_offline(False)
