"""Issue 17 as a district head sees it, in Chromium: the sync health page with a failing,
a waiting and a silent phone; the dashboard's "as of" and stale mark; the 催报 page, one
click in the browser, and the reminder e-mail that arrives over SMTP, as a phone's mail
app shows it. Screenshots go to tests/screenshots/ for a person to look at."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from tests.briefing.smtp import smtp_settings_for, start_smtp
from tests.conftest import CHROMIUM_ARGS, PASSWORD, Phone, create_user, visit_fields

SHOTS = Path(__file__).resolve().parents[1] / "screenshots"


def _push(phone: Phone, state: dict, day: str) -> None:
    fields = visit_fields(visited_at=f"{day}T09:00:00+08:00", work_group_code="WG01")
    body = {
        "protocol": 1,
        "device_id": phone.device_id,
        "mutations": [phone.mutation("create", "visit", str(uuid.uuid4()), fields)],
        "device_state": state,
    }
    r = phone.client.post("/api/sync/push", json=body, headers=phone.headers)
    assert r.status_code == 200, r.json


@pytest.fixture
def fleet(app, db_session):
    """Four cadres of 锦江区: one fine, one failing with entries waiting, one silent for
    twelve days, one who never reported (no visit this week); and the district head."""
    from server.models_health import DeviceHealth

    for name, email in (("wangwu", "w@example.cn"), ("lisi", "l@example.cn")):
        create_user(name, "field_cadre", "510104", "WG01").email = email
    create_user("zhaoliu", "field_cadre", "510104", "WG01").email = "z@example.cn"
    create_user("qianqi", "field_cadre", "510104", "WG01").email = "q@example.cn"
    create_user("head", "district_head", "510104").email = "head@example.cn"
    db_session.commit()
    client = app.test_client()
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    _push(
        Phone(client, "wangwu"),
        {"pending": 0, "app_version": "2026.12.03", "persisted": True},
        today,
    )
    _push(
        Phone(client, "lisi"),
        {
            "pending": 12,
            "oldest_pending_at": (now - timedelta(days=2)).isoformat(),
            "last_error": "network",
            "app_version": "2026.11.20",
            "storage_used": 48_000_000,
            "storage_quota": 400_000_000,
            "persisted": False,
        },
        today,
    )
    silent = Phone(client, "zhaoliu")
    _push(silent, {"pending": 3, "app_version": "2026.11.20"}, today)
    db_session.execute(
        update(DeviceHealth)
        .where(DeviceHealth.device_id == silent.device_id)
        .values(last_sync_at=now - timedelta(days=12), last_push_at=now - timedelta(days=12))
    )
    db_session.commit()
    return today


@pytest.fixture
def live(app, fleet):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", fleet
    server.shutdown()
    thread.join(5)


@pytest.mark.browser
def test_health_page_reminder_click_and_mail(app, live, playwright_instance, chromium_path):
    from server.extensions import db
    from worker.nonreporters import send_batch

    base, today = live
    SHOTS.mkdir(exist_ok=True)
    controller, recorder = start_smtp()
    browser = playwright_instance.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    try:
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "head")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")

        r = page.goto(f"{base}/sync-health")
        assert r is not None and r.status == 200
        body = page.inner_text("main")
        for name in ("wangwu", "lisi", "zhaoliu"):
            assert name in body, name
        assert "network" in body or "网络" in body  # lisi's failing phone shows its error
        assert "2026.11.20" in body  # an old app version still in use
        page.screenshot(path=str(SHOTS / "sync-health-district-head.png"), full_page=True)

        r = page.goto(f"{base}/dashboard/510104")
        assert r is not None and r.status == 200
        assert "数据截至" in page.inner_text("[data-testid=as-of]")
        assert "1 台手机长时间未同步" in page.inner_text("[data-testid=stale]")
        page.screenshot(path=str(SHOTS / "dashboard-as-of-district-head.png"), full_page=True)

        r = page.goto(f"{base}/nonreporters?period=week&day={today}")
        assert r is not None and r.status == 200
        text = page.inner_text("main")
        assert "qianqi" in text  # the one cadre with no visit this week
        assert page.locator("input[name=user]").count() == 1
        page.screenshot(path=str(SHOTS / "nonreporters-district-head.png"), full_page=True)
        page.locator("input[name=user]").check()
        page.locator("#remind-form button[type=submit]").click()
        page.wait_for_load_state("networkidle")

        settings = smtp_settings_for(app, controller)
        outcome = send_batch(db.session, settings)
        assert outcome.get("sent", 0) >= 1, outcome
        to = {m["To"] for m in recorder.messages}
        assert to == {"q@example.cn"}, to
        mail = next(m for m in recorder.messages if m["To"] == "q@example.cn")
        html = mail.get_body(("html",)).get_content()
        assert "https://fv.example.cn/r/" in html
        for other in ("wangwu", "lisi", "zhaoliu"):
            assert other not in html, other  # a reminder names only its recipient's gaps

        page.goto(f"{base}/nonreporters?period=week&day={today}")
        assert "已发送" in page.inner_text("main")
        page.screenshot(path=str(SHOTS / "nonreporters-after-click.png"), full_page=True)

        r = page.goto(f"{base}/briefings/510104?period=week")
        assert r is not None and r.status == 200
        assert "数据截至" in page.inner_text("[data-testid=as-of]")
        assert "1 台手机超过 3 天未同步" in page.inner_text("[data-testid=stale]")
        page.screenshot(path=str(SHOTS / "briefing-as-of-district-head.png"), full_page=True)

        # the district's briefing e-mail says the same, in text and HTML
        from worker.briefing.compute import build_all, period_containing
        from worker.briefing.render import render_district_email

        day = datetime.fromisoformat(today).date()
        _, by_code = build_all(db.session, period_containing("week", day, day))
        _, text, brief_html = render_district_email(by_code["510104"], "https://x/b", None)
        assert "数据可能不完整：1台手机超过3天未同步" in text, text[:600]
        assert "2台手机尚有15条记录待发送" in text
        assert 'data-testid="stale"' in brief_html

        mail_page = browser.new_page(viewport={"width": 375, "height": 740})
        mail_page.set_content(html, wait_until="load")
        overflow = mail_page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, overflow
        mail_page.screenshot(path=str(SHOTS / "reminder-email-phone.png"), full_page=True)
    finally:
        browser.close()
        controller.stop()
