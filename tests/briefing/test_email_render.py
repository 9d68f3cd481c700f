"""The HTML email at phone width in headless Chromium: no overflow, no network, screenshot."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.briefing.fixture_data import WEEK, A, seed
from tests.conftest import CHROMIUM_ARGS
from worker.briefing.compute import build_all, period_containing
from worker.briefing.render import render_city_email, render_district_email

SHOTS = Path(__file__).resolve().parents[1] / "screenshots"


@pytest.mark.browser
def test_email_at_phone_width(db_session, playwright_instance, chromium_path):  # noqa: ANN001
    seed()
    city, by_code = build_all(db_session, period_containing("week", WEEK, date(2026, 1, 1)))
    _, _, html = render_district_email(
        by_code[A],
        "https://fv.example.cn/briefings/510104",
        "https://fv.example.cn/briefings/unsubscribe/x",
    )
    _, _, city_html = render_city_email(city, "https://fv.example.cn/briefings/city")
    SHOTS.mkdir(exist_ok=True)
    requests: list[str] = []
    browser = playwright_instance.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    try:
        page = browser.new_page(viewport={"width": 375, "height": 740}, device_scale_factor=2)
        page.on("request", lambda r: requests.append(r.url))
        for name, body in (("briefing_email_phone", html), ("briefing_city_phone", city_html)):
            page.set_content(body, wait_until="load")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name}: {overflow}px wider than the phone"
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        assert page.evaluate("document.scripts.length") == 0
    finally:
        browser.close()
    assert [u for u in requests if not u.startswith(("about:", "data:"))] == []
