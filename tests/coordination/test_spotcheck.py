"""Spot checks: reproducible from the seed, stratified, findings per district."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date

from server.coordination.filters import Filters
from server.coordination.spotcheck import allocate, plan_sample
from tests.conftest import Phone
from tests.coordination import fixture_data as fx
from tests.coordination.conftest import web_login


def test_allocation_is_proportional_with_one_each():
    assert allocate(10, [("a", 50), ("b", 30), ("c", 20)], True) == {"a": 5, "b": 3, "c": 2}
    share = allocate(4, [("a", 90), ("b", 5), ("c", 5)], True)
    assert share == {"a": 2, "b": 1, "c": 1}
    assert allocate(100, [("a", 3), ("b", 2)], True) == {"a": 3, "b": 2}
    assert sum(allocate(7, [("a", 11), ("b", 13), ("c", 17)], False).values()) == 7


def _more_visits(client, n_per: dict[str, int]) -> None:
    """Bulk up the fixture so the draw has something to choose from."""
    owner = {fx.A: "cadre_a", fx.B: "cadre_b", fx.C: "cadre_c"}
    for district, n in n_per.items():
        phone = Phone(client, owner[district])
        r = phone.push(
            [
                phone.mutation(
                    "create",
                    "visit",
                    str(uuid.uuid4()),
                    {
                        "method": "interview",
                        "visited_at": f"2026-05-{1 + i % 28:02d}T09:00:00+08:00",
                        "district_code": district,
                        "workers_met": 1,
                        "work_group_code": fx.GROUP[district] if i % 2 else None,
                    },
                )
                for i in range(n)
            ]
        )
        assert r.status_code == 200


def test_sample_reproducible_and_stratified(client, campaign, db_session):
    _more_visits(client, {fx.A: 60, fx.B: 30, fx.C: 10})
    f = Filters(date(2026, 1, 1), date(2026, 12, 31))
    one = plan_sample(db_session, "2026-spring", 20, f)
    two = plan_sample(db_session, "2026-spring", 20, f)
    assert one == two and len(one) == 20
    other = plan_sample(db_session, "another-seed", 20, f)
    assert [v for v, *_ in other] != [v for v, *_ in one]
    counts = Counter(d for _, d, _ in one)
    from sqlalchemy import func, select

    from server.models import Visit

    sizes = dict(
        db_session.execute(
            select(Visit.district_id, func.count())
            .where(Visit.deleted.is_(False))
            .group_by(Visit.district_id)
        ).all()
    )
    total = sum(sizes.values())
    assert set(counts) == set(sizes)  # every district with visits is represented
    for district_id, n in sizes.items():
        assert abs(counts[district_id] - 20 * n / total) <= 1, (district_id, counts, sizes)
    # A tiny sample still reaches every district.
    tiny = plan_sample(db_session, "x", 3, f)
    assert len({d for _, d, _ in tiny}) == 3


def test_draw_check_and_rates(client, campaign, db_session):
    web_login(client, "sup")
    # Cookie-signed JSON POSTs need the page's anti-forgery token; phones use bearer tokens.
    assert client.post("/api/spot-checks", json={"seed": "s1", "size": 4}).status_code == 400
    sup = Phone(client, "sup")
    r = client.post(
        "/api/spot-checks",
        json={"seed": "s1", "size": 4, "from": "2026-01-01", "to": "2026-12-31"},
        headers=sup.headers,
    )
    assert r.status_code == 201, r.json
    again = client.post(
        "/api/spot-checks",
        json={"seed": "s1", "size": 4, "from": "2026-01-01", "to": "2026-12-31"},
        headers=sup.headers,
    )
    assert again.json["visit_ids"] == r.json["visit_ids"]
    from sqlalchemy import select

    from server.models_supervision import SpotCheckItem

    items = db_session.scalars(
        select(SpotCheckItem)
        .where(SpotCheckItem.sample_id == r.json["id"])
        .order_by(SpotCheckItem.id)
    ).all()
    results = ["confirmed", "doubtful", "not_confirmed", "confirmed"]
    for item, result in zip(items, results, strict=True):
        res = client.post(
            f"/api/spot-checks/items/{item.id}",
            json={"result": result, "note": "电话回访"},
            headers=sup.headers,
        )
        assert res.status_code == 200, res.json
    assert (
        client.post(
            f"/api/spot-checks/items/{items[0].id}", json={"result": "maybe"}, headers=sup.headers
        ).status_code
        == 400
    )
    stats = client.get("/api/spot-checks").json["districts"]
    live = fx.live_visits()
    for code in (fx.A, fx.B, fx.C):
        s = stats[code]
        assert s["visits"] == sum(1 for v in live.values() if v[0] == code)
        assert s["check_rate"] == s["checked"] / s["visits"]
    assert sum(s["findings"]["not_confirmed"] for s in stats.values()) == 1
    assert sum(s["checked"] for s in stats.values()) == 4
    # The page shows the sample with its forms, and a coordinator may look but not draw.
    html = client.get(f"/spot-checks/{r.json['id']}").get_data(as_text=True)
    assert html.count('class="item"') == 4 and "不属实" in html
    web_login(client, "coord")
    assert client.get("/spot-checks").status_code == 200
    coord = Phone(client, "coord")
    assert (
        client.post(
            "/api/spot-checks", json={"seed": "z", "size": 1}, headers=coord.headers
        ).status_code
        == 403
    )
    # The page's form (cookie + CSRF token) records a finding too.
    web_login(client, "sup")
    with client.session_transaction() as sess:
        token = sess.setdefault("csrf", "t0ken-for-test")
    res = client.post(
        f"/spot-checks/items/{items[0].id}",
        data={"result": "doubtful", "note": "复核", "csrf_token": token},
    )
    assert res.status_code == 302
    db_session.expire_all()
    assert db_session.get(SpotCheckItem, items[0].id).result == "doubtful"
