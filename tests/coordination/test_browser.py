"""The pages in headless Chromium at phone (360×740) and desktop (1280×800) width.

A werkzeug server in a thread serves the test app on the test database. Screenshots
go to tests/screenshots/ (git-ignored) for a person to look at. Under CI=true a
missing Chromium fails; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM_ARGS, PASSWORD

SHOTS = Path(__file__).resolve().parents[1] / "screenshots"
SIZES = {"phone": (360, 740), "desktop": (1280, 800)}

# Elements a finger must hit: each at least 44 px tall.
TOUCH = (
    "nav.tabs a, .btn, table.data th a, a.cell, form.filters fieldset label, label.choice, "
    "form.filters input:not([type=checkbox]):not([type=radio]), form.filters select"
)


@pytest.fixture
def live_server(request, app, db_session):
    """The app served over HTTP from a thread; a sample drawn so every page has content."""
    campaign = request.getfixturevalue("campaign")
    from datetime import date

    from werkzeug.serving import make_server

    from server.coordination.filters import Filters
    from server.coordination.spotcheck import draw_sample

    sample = draw_sample(
        db_session, "browser", 5, Filters(date(2026, 1, 1), date(2026, 12, 31)), None
    )
    sample.items[0].result, sample.items[0].note = "not_confirmed", "走访对象称未参加座谈"
    db_session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", campaign, sample.id
    server.shutdown()
    thread.join(5)


def test_pages_at_phone_and_desktop_width(live_server, playwright_instance, chromium_path):  # noqa: ANN001
    base, campaign, sample_id = live_server
    SHOTS.mkdir(exist_ok=True)
    period = "from=2026-01-01&to=2026-12-31"
    pages = [
        ("dashboard", f"/dashboard?{period}&sort=workers_met&dir=desc"),
        ("dashboard-en", f"/dashboard?{period}&lang=en"),
        ("district", f"/dashboard/510104?{period}&lang=zh"),
        ("visit", f"/dashboard/visit/{campaign.visit_ids['V2']}"),
        ("problems", "/problems?n=3"),
        ("problem", f"/problems/{campaign.problem_ids[1]}"),
        ("spot-checks", "/spot-checks"),
        ("spot-check-sample", f"/spot-checks/{sample_id}"),
        ("evaluation", f"/evaluation?{period}"),
    ]
    browser = playwright_instance.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    try:
        for size, (width, height) in SIZES.items():
            context = browser.new_context(
                viewport={"width": width, "height": height}, device_scale_factor=1
            )
            page = context.new_page()
            page.goto(f"{base}/login?next=/dashboard")
            page.fill("input[name=username]", "sup")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/dashboard")
            for name, path in pages:
                response = page.goto(base + path)
                assert response is not None and response.status == 200, (name, path)
                page.screenshot(path=str(SHOTS / f"coordination-{name}-{size}.png"), full_page=True)
                # The page itself never scrolls sideways: wide tables scroll in their box.
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, (name, size, overflow)
                small = page.evaluate(
                    """sel => [...document.querySelectorAll(sel)]
                         .filter(e => e.offsetParent !== null)
                         .map(e => [e.tagName, e.textContent.trim().slice(0, 20),
                                    e.getBoundingClientRect().height])
                         .filter(x => x[2] < 43.5)""",
                    TOUCH,
                )
                assert not small, (name, size, small[:5])
            # The chart is drawn on the server: two SVG panels with a line each.
            page.goto(f"{base}/dashboard?{period}")
            assert page.locator("svg.chart polyline").count() == 2
            # Clicking a column header sorts on the server.
            page.click("th >> text=面对面职工")
            codes = page.eval_on_selector_all(
                "#dashboard-table tbody tr[data-code]", "rows => rows.map(r => r.dataset.code)"
            )
            assert codes[:3] == ["510104", "510105", "510106"], codes[:5]
            context.close()
    finally:
        browser.close()
