"""Photos on the coordinators' pages (issue 18): the visit page and the spot-check screen
show thumbnails with the full image behind them, capture time, place, distance from the
visit and the phone's clock; a photo far away or long after the visit is flagged; the
home visit's photos only for roles that see its personal data; another district's user
sees nothing. In Chromium at 360 px: images load under the strict CSP, no violation."""

from __future__ import annotations

import re
import threading
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM_ARGS, PASSWORD, Phone, create_user
from tests.server.attachment_util import jpeg, push_home_visit, push_visit, upload

SHOTS = Path(__file__).resolve().parents[1] / "screenshots"
VISIT_AT = {"visited_at": "2026-03-05T10:20:00+08:00", "lat": 30.6600, "lng": 104.0600}


def web_login(client, username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302, r.data[:300]
    from flask import g

    g.pop("web_user", None)


@pytest.fixture(autouse=True)
def _own_storage(app, tmp_path):
    app.config["FV"].values["ATTACHMENTS_DIR"] = str(tmp_path / "attachments")
    app.extensions.pop("fieldvisit.attachments", None)


@pytest.fixture
def photographed(client, app):
    """A visit with three photos (on the spot; 5 km away; two days later) and a home
    visit with a receipt photo."""
    create_user("cadre", "field_cadre", "510104", "WG01")
    phone = Phone(client, "cadre")
    vid = push_visit(phone, **VISIT_AT)
    near = upload(phone, jpeg(seed=31), vid, lat="30.6605", lng="104.0604")
    far = upload(phone, jpeg(seed=32), vid, lat="30.7050", lng="104.0600")
    late = upload(
        phone,
        jpeg(seed=33),
        vid,
        captured_at="2026-03-07T12:00:00+08:00",
        device_time="2026-03-07T11:00:00+08:00",
    )
    hid = push_home_visit(phone, visit_id=vid)
    receipt = upload(phone, jpeg(seed=34), hid, "home_visit")
    for r in (near, far, late, receipt):
        assert r.status_code == 204, r.json
    ids = {
        "near": near.headers["Upload-Attachment-Id"],
        "far": far.headers["Upload-Attachment-Id"],
        "late": late.headers["Upload-Attachment-Id"],
        "receipt": receipt.headers["Upload-Attachment-Id"],
    }
    return vid, ids


def _figure(html: str, att_id: str) -> str:
    m = re.search(rf'<figure class="photo[^"]*" id="att-{att_id}">.*?</figure>', html, re.S)
    assert m, att_id
    return m.group(0)


def test_visit_page_shows_photos_with_checks(client, photographed):
    vid, ids = photographed
    create_user("head", "district_head", "510104")
    web_login(client, "head")
    html = client.get(f"/dashboard/visit/{vid}").get_data(as_text=True)
    near = _figure(html, ids["near"])
    assert 'class="photo"' in near  # not flagged
    assert f'src="/attachments/{ids["near"]}/thumb"' in near
    assert f'href="/attachments/{ids["near"]}/full"' in near
    assert "2026-03-05 10:25" in near and "30.66050, 104.06040 ±12 m" in near
    assert "距走访地点 67 m" in near and "手机时钟快 2 分钟" in near
    far = _figure(html, ids["far"])
    assert 'class="photo flag"' in far and "距走访地点 5.0 km" in far and "距走访地点过远" in far
    late = _figure(html, ids["late"])
    assert 'class="photo flag"' in late and "与走访时间相差过久" in late
    assert "手机时钟慢 60 分钟" in late and "拍摄于走访后 2.1 天" in late
    # a district head sees the home visit's details, so its receipt too
    assert f'id="att-{ids["receipt"]}"' in html
    assert "<script>" not in html
    en = client.get(f"/dashboard/visit/{vid}?lang=en").get_data(as_text=True)
    assert "5.0 km from the visit" in _figure(en, ids["far"])
    assert "phone clock 2 min fast" in _figure(en, ids["near"])


def test_city_staff_see_the_visits_photos_but_not_the_home_visits(client, photographed):
    vid, ids = photographed
    create_user("sup", "supervisor")
    web_login(client, "sup")
    html = client.get(f"/dashboard/visit/{vid}").get_data(as_text=True)
    assert f'id="att-{ids["near"]}"' in html and f'id="att-{ids["far"]}"' in html
    assert f'id="att-{ids["receipt"]}"' not in html
    assert client.get(f"/attachments/{ids['near']}/thumb").status_code == 200
    assert client.get(f"/attachments/{ids['receipt']}/thumb").status_code == 404
    assert client.get(f"/attachments/{ids['receipt']}/full").status_code == 404


def test_another_districts_head_sees_no_photo(client, photographed):
    vid, ids = photographed
    create_user("other", "district_head", "510105")
    web_login(client, "other")
    assert client.get(f"/dashboard/visit/{vid}").status_code == 404
    for att in ids.values():
        assert client.get(f"/attachments/{att}/thumb").status_code == 404


def _sample(db_session):
    from server.coordination.filters import Filters
    from server.coordination.spotcheck import draw_sample

    sample = draw_sample(
        db_session, "photos", 5, Filters(date(2026, 1, 1), date(2026, 12, 31)), None
    )
    db_session.commit()
    return sample


def test_spot_check_screen_shows_photos_beside_the_visit(client, photographed, db_session):
    vid, ids = photographed
    sample = _sample(db_session)
    create_user("sup", "supervisor")
    web_login(client, "sup")
    html = client.get(f"/spot-checks/{sample.id}").get_data(as_text=True)
    item = re.search(r'<div class="item" id="item-\d+">.*?</form>', html, re.S).group(0)
    assert vid in item
    for key in ("near", "far", "late"):
        assert f'id="att-{ids[key]}"' in item, key
    assert f'id="att-{ids["receipt"]}"' not in item  # supervisors: no home-visit photos
    assert item.count('class="photo flag"') == 2


@pytest.fixture
def live_server(app, photographed, db_session):
    from werkzeug.serving import make_server

    sample = _sample(db_session)
    create_user("sup", "supervisor")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", photographed, sample.id
    server.shutdown()
    thread.join(5)


@pytest.mark.browser
def test_photos_in_chromium_at_phone_width(live_server, playwright_instance, chromium_path):
    base, (vid, ids), sample_id = live_server
    SHOTS.mkdir(exist_ok=True)
    browser = playwright_instance.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    try:
        context = browser.new_context(viewport={"width": 360, "height": 740})
        page = context.new_page()
        violations: list[str] = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(f"{base}/login?next=/dashboard")
        page.fill("input[name=username]", "sup")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard")
        for name, path in (
            ("visit", f"/dashboard/visit/{vid}"),
            ("spot-check", f"/spot-checks/{sample_id}"),
        ):
            response = page.goto(base + path)
            assert response is not None and response.status == 200
            page.wait_for_load_state("networkidle")
            loaded = page.eval_on_selector_all(
                ".photo img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
            )
            assert loaded and all(loaded), (name, loaded)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (name, overflow)
            page.screenshot(path=str(SHOTS / f"attachments-{name}-phone.png"), full_page=True)
        # the full image opens behind the thumbnail
        full = page.goto(f"{base}/attachments/{ids['far']}/full")
        assert full.status == 200 and full.headers["content-type"] == "image/jpeg"
        assert full.headers["cache-control"] == "private, no-store"
        assert not violations, violations
        context.close()
    finally:
        browser.close()
