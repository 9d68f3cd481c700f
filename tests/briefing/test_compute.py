"""Briefing figures equal the counts written into the fixture, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tests.briefing.fixture_data import (
    EXPECTED_A,
    EXPECTED_A_PREVIOUS,
    EXPECTED_B,
    WEEK,
    A,
    B,
    seed,
)
from worker.briefing.compute import build_all, last_completed, period_containing

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


# Month and campaign-to-date figures of district A, counted by hand from the fixture
# (the comparison period is computed in the same pass, so it is checked too).
FIGURES = {
    # March: everything of the fixture week plus the visit of Monday 9 March (c3, 7
    # workers); February holds only the visit of 25 February and its problem.
    ("month", date(2026, 3, 4)): (
        {
            "visits": 7,
            "workers_met": 71,
            "enterprises": 4,
            "enterprise_types": 4,
            "cadres_active": 3 + 1,
            "problems_raised": 3,
            "problems_open": 2,
            "problems_resolved": 1,
            "home_visits": 2,
            "condolence_cents": 80000,
        },
        {
            "visits": 1,
            "workers_met": 8,
            "enterprises": 1,
            "enterprise_types": 2,
            "cadres_active": 1,
            "problems_raised": 1,
            "problems_open": 1,
            "problems_resolved": 0,
            "home_visits": 0,
            "condolence_cents": 0,
        },
    ),
    # From 1 January to Sunday 8 March, against the campaign up to 1 March.
    ("campaign", date(2026, 3, 8)): (
        {
            "visits": 7,
            "workers_met": 72,
            "enterprises": 4,
            "enterprise_types": 4,
            "cadres_active": 3,
            "problems_raised": 4,
            "problems_open": 2,
            "problems_resolved": 1,
            "home_visits": 2,
            "condolence_cents": 80000,
            "focus_groups": {"needy": 4, "laid_off": 0, "migrant": 15, "dispatched": 3},
        },
        {
            "visits": 1,
            "workers_met": 8,
            "enterprises": 1,
            "enterprise_types": 2,
            "cadres_active": 1,
            "problems_raised": 1,
            "problems_open": 1,
            "problems_resolved": 0,
            "home_visits": 0,
            "condolence_cents": 0,
        },
    ),
    # A long campaign (read with plain scans on SQLite): everything live, both times.
    ("campaign", date(2026, 6, 30)): (
        {
            "visits": 8,
            "workers_met": 79,
            "enterprises": 4,
            "cadres_active": 4,
            "problems_raised": 4,
            "problems_open": 2,
            "problems_resolved": 1,
            "home_visits": 2,
        },
        {
            "visits": 8,
            "workers_met": 79,
            "enterprises": 4,
            "cadres_active": 4,
            "problems_raised": 4,
            "problems_open": 2,
            "problems_resolved": 1,
            "home_visits": 2,
        },
    ),
}


def test_month_and_campaign_figures_match_fixture(db_session):
    seed()
    for (kind, day), (current, previous) in FIGURES.items():
        period = period_containing(kind, day, CAMPAIGN)
        _, by_code = build_all(db_session, period)
        briefing = by_code[A]
        for fig, expected in ((briefing.current, current), (briefing.previous, previous)):
            for name, value in expected.items():
                assert getattr(fig, name) == value, (kind, day, name)
            # The oldest open problem is the February one (employment) in every period.
            assert fig.oldest_open is not None and fig.oldest_open.category == "employment"
        assert briefing.previous.oldest_open.days_open <= briefing.current.oldest_open.days_open
        assert by_code[B].current.visits == 1 and by_code[B].current.cadres_active == 1
