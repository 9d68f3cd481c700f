"""The dashboard's numbers equal numbers computed here from the fixture tables."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from server.coordination import dashboard as dash
from server.coordination.filters import Filters
from tests.coordination import fixture_data as fx
from tests.coordination.conftest import web_login


def expected() -> dict[str, dict]:
    """Every district's figures, from the fixture tables alone."""
    out: dict[str, dict] = defaultdict(
        lambda: {
            "visits": 0,
            "workers_met": 0,
            "enterprises": set(),
            "types": set(),
            "methods": defaultdict(int),
            "stages": defaultdict(int),
            "participants": set(),
            "problems": 0,
            "cents": 0,
            "home": 0,
        }
    )
    for key, (district, cadre, method, _, ent, _, _, extra, _) in fx.live_visits().items():
        e = out[district]
        e["visits"] += 1
        e["workers_met"] += fx.workers(key)
        canon = fx.MERGED.get(ent, ent)
        e["enterprises"].add(canon)
        e["types"].update(fx.ENTERPRISES[canon][1])
        e["methods"][method] += 1
        e["participants"].update([cadre, *extra])
    for visit_key, _, _, stage in fx.PROBLEMS:
        e = out[fx.VISITS[visit_key][0]]
        e["stages"][stage] += 1
        e["problems"] += 1
    for visit_key, cents in fx.HOME_VISITS:
        out[fx.VISITS[visit_key][0]]["cents"] += cents
        out[fx.VISITS[visit_key][0]]["home"] += 1
    return out


def test_dashboard_json_matches_fixture(client, campaign):
    web_login(client, "coord")
    r = client.get("/api/dashboard?from=2026-01-01&to=2026-12-31")
    assert r.status_code == 200, r.json
    rows = {row["code"]: row for row in r.json["rows"]}
    assert len(rows) == 20  # every active district unit has a row
    cadre_roles = ("field_cadre", "group_leader")
    cadres = {
        d: sum(1 for _, role, dd, _ in fx.USERS if role in cadre_roles and dd == d)
        for d in (fx.A, fx.B, fx.C)
    }
    for code, e in expected().items():
        row = rows[code]
        assert row["visits"] == e["visits"], code
        assert row["workers_met"] == e["workers_met"], code
        assert row["enterprises"] == len(e["enterprises"]), code
        assert row["enterprise_types"] == len(e["types"]), code
        for method in ("report", "symposium", "interview", "home_visit", "outreach"):
            assert row[f"method_{method}"] == e["methods"][method], (code, method)
        for stage in ("enterprise", "government", "source", "resolved", "closed"):
            assert row[f"stage_{stage}"] == e["stages"][stage], (code, stage)
        assert row["problems_raised"] == e["problems"]
        assert row["problems_open"] == sum(
            e["stages"][s] for s in ("enterprise", "government", "source")
        )
        assert row["condolence_cents"] == e["cents"]
        assert row["home_visits"] == e["home"]
        assert row["cadres_total"] == cadres[code]
        assert row["cadres_active"] == len(e["participants"])
    assert rows["510107"]["visits"] == 0
    total = r.json["total"]
    assert total["visits"] == len(fx.live_visits())
    assert total["workers_met"] == sum(fx.workers(k) for k in fx.live_visits())
    # Weekly cumulative series ends at the totals.
    assert r.json["series"][-1]["cum_visits"] == len(fx.live_visits())
    assert r.json["series"][-1]["cum_workers"] == total["workers_met"]


def test_period_filter_and_weekly_series(client, campaign):
    web_login(client, "coord")
    r = client.get("/api/dashboard?from=2026-03-01&to=2026-03-31")
    march = {k: v for k, v in fx.live_visits().items() if v[3].startswith("2026-03")}
    assert r.json["total"]["visits"] == len(march)
    weeks = {s["week"]: s for s in r.json["series"]}
    # Week of Monday 2026-03-02: V1, V2, V6, V8 (VDEL deleted).
    assert weeks["2026-03-02"]["visits"] == 4
    assert weeks["2026-03-02"]["workers_met"] == 20 + 4 + 12 + 9
    assert weeks["2026-03-09"]["cum_visits"] == 4 + 3


def test_work_group_and_tag_filters(client, campaign):
    web_login(client, "coord")
    r = client.get("/api/dashboard?from=2026-01-01&to=2026-12-31&group=WG01")
    rows = {row["code"]: row for row in r.json["rows"]}
    a_grouped = [k for k, v in fx.live_visits().items() if v[0] == fx.A and v[8]]
    assert rows[fx.A]["visits"] == len(a_grouped)
    assert rows[fx.B]["visits"] == 0
    r = client.get("/api/dashboard?from=2026-01-01&to=2026-12-31&tag=sme")
    rows = {row["code"]: row for row in r.json["rows"]}
    sme = [
        k
        for k, v in fx.live_visits().items()
        if "sme" in fx.ENTERPRISES[fx.MERGED.get(v[4], v[4])][1]
    ]
    assert r.json["total"]["visits"] == len(sme)
    assert rows[fx.A]["visits"] == sum(1 for k in sme if fx.VISITS[k][0] == fx.A)
    # Problems of the narrowed visits only.
    assert rows[fx.A]["problems_raised"] == sum(
        1 for v, *_ in fx.PROBLEMS if v in sme and fx.VISITS[v][0] == fx.A
    )


def test_filtered_path_agrees_with_briefing_aggregates(app, campaign, db_session):
    """With no narrowing filter, our own aggregates equal the briefing engineer's."""
    f = Filters(date(2026, 1, 1), date(2026, 12, 31))
    districts = dash.scoped_districts(db_session, None)
    ours = dash._filtered_figures(db_session, f, districts)
    theirs = dash.district_figures(db_session, f)
    for district_id, fig in theirs.items():
        mine = ours[district_id]
        for name in (
            "visits",
            "workers_met",
            "enterprises",
            "enterprise_types",
            "cadres_total",
            "cadres_active",
            "problems_raised",
            "problems_open",
            "problems_resolved",
            "home_visits",
            "condolence_cents",
            "visits_by_method",
            "problems_by_stage",
            "focus_groups",
        ):
            assert getattr(mine, name) == getattr(fig, name), (fig.code, name)


def test_dashboard_page_sorts_and_drills_down(client, campaign):
    web_login(client, "coord")
    r = client.get("/dashboard?from=2026-01-01&to=2026-12-31&sort=workers_met&dir=desc")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    order = [html.index(f'data-code="{c}"') for c in (fx.A, fx.B, fx.C)]
    assert order == sorted(order)  # A (72) > B (20) > C (11) workers
    assert "<svg" in html and "polyline" in html
    r = client.get(f"/dashboard/{fx.A}?from=2026-01-01&to=2026-12-31")
    assert r.status_code == 200
    assert campaign.visit_ids["V1"] in r.get_data(as_text=True)
    assert client.get("/dashboard/999999").status_code == 404


def test_field_cadre_is_refused(client, campaign):
    web_login(client, "cadre_a")
    assert client.get("/dashboard").status_code == 403
    assert client.get("/problems").status_code == 403
    assert client.get("/api/dashboard").status_code == 403
    assert client.get("/export/visits.csv").status_code == 403
    phone = campaign.phones["cadre_a"]
    assert phone.get("/api/dashboard").status_code == 403
