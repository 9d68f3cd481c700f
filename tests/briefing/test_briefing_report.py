"""Briefings report the work on problems (issue 16, item 5), on SQLite and PostgreSQL:
per district the problems by tag (最盼/最急/最忧/最怨) and the median days to resolve;
the city circular ranks districts by resolution as well as by visits."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from server.extensions import db
from server.models import Problem, Visit
from tests.briefing.fixture_data import WEEK, A, seed
from worker.briefing.compute import build_all, period_containing
from worker.briefing.render import render_city_email, render_district_email


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_tags_median_days_and_the_resolution_ranking(db_session):
    ids = seed()
    v = Visit(
        id=str(uuid.uuid4()),
        method="symposium",
        visited_at=_at("2026-03-05T10:00:00+08:00"),
        district_id=ids["a"],
        workers_met=3,
    )
    db.session.add(v)
    for tag, stage, resolved in (
        ("urgent", "enterprise", None),
        ("urgent", "government", None),
        ("hope", "enterprise", None),
        ("resent", "resolved", "2026-03-08T10:00:00+08:00"),  # 3.0 days
    ):
        db.session.add(
            Problem(
                id=str(uuid.uuid4()),
                visit_id=v.id,
                category="wages",
                tag=tag,
                stage=stage,
                resolution="已解决" if resolved else None,
                resolved_at=_at(resolved) if resolved else None,
                description="x",
                district_id=ids["a"],
            )
        )
    db.session.commit()
    city, by_code = build_all(db.session, period_containing("week", WEEK, date(2026, 1, 1)))
    cur = by_code[A].current
    assert cur.problems_by_tag == {"hope": 1, "urgent": 2, "worry": 0, "resent": 1}
    # the seed's social-insurance problem: raised 3 March 09:00, resolved 4 March 12:00
    # (1.125 days); the new one 3.0 days: the median of the two is 2.0625
    assert cur.problems_resolved == 2 and cur.median_days_to_resolve == 2.1
    assert cur.problems_open == 2 + 3
    assert abs(cur.resolution_rate - 2 / 7) < 1e-9
    _, text, html = render_district_email(by_code[A], "https://x")
    assert "按职工诉求：最盼1个；最急2个；最忧0个；最怨1个" in text
    assert "用时中位数2.1天" in text and "用时中位数" in html
    ranking = city.by_resolution()
    assert ranking[0] == (1, cur)
    assert {rank for rank, f in ranking[1:]} == {2}  # no problems: all share the last rank
    _, ctext, chtml = render_city_email(city, "https://x")
    assert "按问题解决情况排名" in ctext and "1  锦江区  解决率29%  解决2个  未解决5个" in ctext
    assert "按问题解决情况排名" in chtml
