"""Bounded work per request (issue 13, item 2): date ranges stay inside the campaign's
window, the dashboard cache is bounded in bytes, and a district head's heavy exports are
bounded in rows. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.coordination.web import AnswerCache
from tests.conftest import Phone
from tests.coordination.conftest import web_login

WINDOWED = [
    "/api/dashboard?{p}={d}",
    "/api/evaluation?{p}={d}",
    "/api/dashboard/510104?{p}={d}",
    "/api/visits?{p}={d}",
]
WINDOWED_PAGES = [
    "/dashboard?{p}={d}",
    "/evaluation?{p}={d}",
    "/export/visits.csv?{p}={d}",
    "/export/dashboard.xlsx?{p}={d}",
]


@pytest.fixture
def short_campaign(app, monkeypatch):
    """A campaign from 2026-01-01 to 2026-03-31, a month of slack after it."""
    values = app.config["FV"].values
    monkeypatch.setitem(values, "CAMPAIGN_START", "2026-01-01")
    monkeypatch.setitem(values, "CAMPAIGN_END", "2026-03-31")
    monkeypatch.setitem(values, "SYNC_DATE_DAYS_BEFORE_CAMPAIGN", 10)
    monkeypatch.setitem(values, "DATE_MAX_DAYS_AHEAD", 30)
    today = datetime.now(ZoneInfo(values["TIMEZONE"])).date()
    low = date(2025, 12, 22)  # 10 days before the start
    high = min(today, date(2026, 3, 31)) + timedelta(days=30)
    return low, high


def _dates(low: date, high: date) -> list[tuple[str, str, bool]]:
    one = timedelta(days=1)
    return [
        ("from", (low - one).isoformat(), False),
        ("from", low.isoformat(), True),
        ("to", high.isoformat(), True),
        ("to", (high + one).isoformat(), False),
        ("from", "1000-01-01", False),
    ]


def test_api_dates_outside_the_campaign_are_400(client, campaign, short_campaign):
    phone = Phone(client, "coord")
    for url in WINDOWED:
        for param, day, ok in _dates(*short_campaign):
            full = url.format(p=param, d=day)
            if param == "to":
                full += "&from=" + short_campaign[0].isoformat()
            r = phone.get(full)
            if ok:
                assert r.status_code == 200, (full, r.status_code, r.data[:200])
            else:
                assert r.status_code == 400, (full, r.status_code)
                assert r.json["error"]["field"] == param, full
                assert r.json["error"]["message"].startswith(f"{param}: must be a date between")


def test_pages_and_exports_dates_outside_the_campaign_are_400(client, campaign, short_campaign):
    web_login(client, "coord")
    for url in WINDOWED_PAGES:
        for param, day, ok in _dates(*short_campaign):
            full = url.format(p=param, d=day)
            if param == "to":
                full += "&from=" + short_campaign[0].isoformat()
            r = client.get(full)
            assert r.status_code == (200 if ok else 400), (full, r.status_code)
            if not ok:
                assert param.encode() in r.data


def test_briefing_start_outside_the_campaign_is_400(client, campaign, short_campaign):
    phone = Phone(client, "coord")
    low, high = short_campaign
    assert phone.get(f"/api/briefings/city?start={low.isoformat()}").status_code == 200
    r = phone.get(f"/api/briefings/city?start={(low - timedelta(days=1)).isoformat()}")
    assert r.status_code == 400 and r.json["error"]["field"] == "start"


def test_widest_dashboard_is_bounded(client, campaign, short_campaign):
    """The widest range the window allows gives a series of a few dozen weeks at most."""
    web_login(client, "coord")
    low, high = short_campaign
    r = client.get(f"/api/dashboard?from={low.isoformat()}&to={high.isoformat()}")
    assert r.status_code == 200
    assert len(r.json["series"]) <= (high - low).days // 7 + 2
    assert len(r.get_data()) < 64 * 1024


def test_answer_cache_is_bounded_in_bytes():
    cache = AnswerCache(max_bytes=1000)
    for i in range(50):
        cache.put(("k", i), {"rows": ["x" * 90]}, now=0.0)  # about 100 bytes of JSON each
        assert cache.bytes <= 1000
    assert 5 <= len(cache) <= 10
    # The least recently used went first: the newest are kept, an old one read stays.
    assert cache.get(("k", 49), now=1.0) is not None
    assert cache.get(("k", 0), now=1.0) is None
    cache.get(("k", 41), now=1.0)  # touched: survives the next insertions
    for i in range(50, 55):
        cache.put(("k", i), {"rows": ["x" * 90]}, now=1.0)
    assert cache.get(("k", 41), now=1.0) is not None
    # An answer larger than the whole cache is answered but never kept.
    cache.put(("big",), {"rows": ["x" * 5000]}, now=1.0)
    assert cache.get(("big",), now=1.0) is None and cache.bytes <= 1000
    # Entries expire after a minute.
    assert cache.get(("k", 54), now=1000.0) is None


def test_dashboard_cache_stays_under_its_byte_limit(app, client, campaign, monkeypatch):
    from server.coordination.web import answer_cache

    monkeypatch.setitem(app.config["FV"].values, "DASHBOARD_CACHE_BYTES", 20_000)
    app.extensions.pop("coordination.cache", None)
    web_login(client, "coord")
    sizes = []
    for month in range(1, 13):
        r = client.get(f"/api/dashboard?from=2026-{month:02d}-01&to=2026-12-31")
        assert r.status_code == 200
        sizes.append(answer_cache().bytes)
    cache = answer_cache()
    assert cache.max_bytes == 20_000
    assert max(sizes) <= 20_000
    assert 1 <= len(cache) < 12  # some were dropped to stay under the limit


@pytest.mark.parametrize("kind", ["visits", "problems", "enterprises"])
def test_district_head_exports_are_bounded_in_rows(app, client, campaign, monkeypatch, kind):
    values = app.config["FV"].values
    period = "from=2026-01-01&to=2026-12-31"
    web_login(client, "head_a")
    ok = client.get(f"/export/{kind}.csv?{period}")
    assert ok.status_code == 200
    rows = len(ok.get_data().decode("utf-8-sig").strip().splitlines()) - 1
    assert rows >= 3
    monkeypatch.setitem(values, "EXPORT_MAX_ROWS", rows)
    assert client.get(f"/export/{kind}.xlsx?{period}").status_code == 200
    monkeypatch.setitem(values, "EXPORT_MAX_ROWS", rows - 1)
    for fmt in ("csv", "xlsx"):
        r = client.get(f"/export/{kind}.{fmt}?{period}")
        assert r.status_code == 400, r.status_code
        field = b"kind" if kind == "enterprises" else b"from"
        assert field + b": this export would hold" in r.data
        assert f"at most {rows - 1}".encode() in r.data
    # City staff are not bounded.
    web_login(client, "coord")
    assert client.get(f"/export/{kind}.csv?{period}").status_code == 200
