"""Briefing figures equal the counts written into the fixture, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from worker.briefing.compute import build_all, last_completed, period_containing
from tests.briefing.fixture_data import (
    A,
    B,
    EXPECTED_A,
    EXPECTED_A_PREVIOUS,
    EXPECTED_B,
    WEEK,
    seed,
)

CAMPAIGN = date(2026, 1, 1)


def _nonzero(d: dict) -> dict:
    return {k: v for k, v in d.items() if v}


def test_week_figures_match_fixture(db_session):
    seed()
    city, by_code = build_all(db_session, period_containing("week", WEEK, CAMPAIGN))
    cur = by_code[A].current
    for name, expected in EXPECTED_A.items():
        if name == "oldest_open_category":
            assert cur.oldest_open is not None and cur.oldest_open.category == expected
        elif isinstance(expected, dict):
            assert _nonzero(getattr(cur, name)) == _nonzero(expected), name
        else:
            assert getattr(cur, name) == expected, name
    assert cur.participation == 0.75
    prev = by_code[A].previous
    for name, expected in EXPECTED_A_PREVIOUS.items():
        assert getattr(prev, name) == expected, name
    for name, expected in EXPECTED_B.items():
        assert getattr(by_code[B].current, name) == expected, name
    # A did the most, so it ranks first of all district units; B second.
    assert cur.rank == 1 and by_code[B].current.rank == 2
    assert len(city.rows) == len(by_code) >= 20
    assert city.total("visits") == 7
    assert city.to_dict()["rows"][0]["code"] == A


def test_periods():
    assert period_containing("week", date(2026, 3, 8), CAMPAIGN).start == date(2026, 3, 2)
    month = period_containing("month", date(2026, 2, 14), CAMPAIGN)
    assert (month.start, month.end) == (date(2026, 2, 1), date(2026, 3, 1))
    assert month.previous().start == date(2026, 1, 1)
    # Beat fires Monday 08:00 Shanghai = Monday 00:00 UTC: reports the week just ended.
    now = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)
    assert last_completed("week", now, CAMPAIGN).start == WEEK
    start, end = period_containing("week", WEEK, CAMPAIGN).bounds()
    assert start == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 8, 16, 0, tzinfo=UTC)
