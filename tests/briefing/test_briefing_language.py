"""The briefing pages switch between Chinese and English like the other web pages
(issue 12, item 7): a 中文/English link on each, ?lang= remembered in the session, the
page's words and the figures' labels in the reader's language, the numbers the same."""

from __future__ import annotations

import re
from html import unescape

from tests.briefing.fixture_data import WEEK, A, seed
from tests.conftest import PASSWORD

Q = {"period": "week", "start": WEEK.isoformat()}
HAN = re.compile(r"[\u4e00-\u9fff]")


def _login(client, username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302, r.data


def _main_text(html: str) -> str:
    """What the reader sees inside <main> (the shared header is outside it)."""
    body = html.split("<main>", 1)[1].split("</main>", 1)[0]
    body = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", body)
    return unescape(re.sub(r"<[^>]+>", " ", body))


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?", text)


def test_district_briefing_in_both_languages(client, db_session):
    seed()
    _login(client, "head_a")
    zh = client.get(f"/briefings/{A}", query_string=Q).get_data(as_text=True)
    assert 'data-testid="lang-switch"' in zh and ">English</a>" in zh
    switch = re.search(r'href="([^"]+)"[^>]*data-testid="lang-switch"', zh).group(1)
    assert "lang=en" in switch and "period=week" in unescape(switch)
    en = client.get(unescape(switch)).get_data(as_text=True)
    text = _main_text(en)
    for words in ("City rank", "Visits", "Targets", "Enterprises visited", "Visit methods",
                  "Symposium", "Supervision:", "Print", "Download spreadsheet"):  # fmt: skip
        assert words in text, words
    # Only the names of records (enterprise, work group) may stay Chinese: none appear here.
    assert not HAN.findall(text.replace("中文", "")), HAN.findall(text)[:20]
    assert ">中文</a>" in en
    # Remembered: the next page without ?lang is English too; ?lang=zh switches back.
    assert "City rank" in client.get(f"/briefings/{A}", query_string=Q).get_data(as_text=True)
    back = client.get(f"/briefings/{A}", query_string={**Q, "lang": "zh"}).get_data(as_text=True)
    assert "全市排名" in back and "City rank" not in back
    # The same figures in both (the Chinese page's day labels aside).
    assert sorted(_numbers(_main_text(back))) != []
    kpis = lambda html: re.findall(r'<div class="big">(\d+)', html)  # noqa: E731
    assert kpis(back) == kpis(en)


def test_city_circular_in_both_languages(client, db_session):
    seed()
    from tests.conftest import create_user

    create_user("coord", "city_coordinator")
    _login(client, "coord")
    zh = client.get("/briefings/city", query_string=Q).get_data(as_text=True)
    assert "全市各单位进展" in zh and ">English</a>" in zh
    en = client.get("/briefings/city", query_string={**Q, "lang": "en"}).get_data(as_text=True)
    text = _main_text(en)
    assert "Progress of every unit" in text and "Jinjiang" in text and "Week " in text
    assert not HAN.findall(text.replace("中文", "")), HAN.findall(text)[:20]
    rows = lambda html: re.findall(r"<td>(\d+)</td>", html)  # noqa: E731
    assert rows(zh) == rows(en)
