"""Exports open in openpyxl with the right rows and Chinese headers; evaluation ranks."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from tests.coordination import fixture_data as fx
from tests.coordination.conftest import web_login

PERIOD = "from=2026-01-01&to=2026-12-31"


def _xlsx(client, url: str) -> list[tuple]:
    r = client.get(url)
    assert r.status_code == 200, r.data[:200]
    assert r.mimetype.endswith("spreadsheetml.sheet")
    wb = load_workbook(io.BytesIO(r.get_data()), read_only=True)
    return list(wb.worksheets[0].iter_rows(values_only=True))


def test_visit_exports(client, campaign):
    web_login(client, "coord")
    rows = _xlsx(client, f"/export/visits.xlsx?{PERIOD}")
    assert rows[0][:5] == ("记录编号", "区(市)县", "工作组", "走访方式", "走访时间")
    live = fx.live_visits()
    assert len(rows) - 1 == len(live)
    assert {r[0] for r in rows[1:]} == {campaign.visit_ids[k] for k in live}
    by_id = {r[0]: r for r in rows[1:]}
    v1 = by_id[campaign.visit_ids["V1"]]
    assert v1[1] == "锦江区" and v1[3] == "座谈会" and v1[8] == 20
    raw = client.get(f"/export/visits.csv?{PERIOD}")
    body = raw.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert parsed[0][0] == "记录编号" and len(parsed) - 1 == len(live)


def test_problem_enterprise_dashboard_exports(client, campaign):
    web_login(client, "coord")
    rows = _xlsx(client, "/export/problems.xlsx")
    assert rows[0][3] == "问题类别" and len(rows) - 1 == len(fx.PROBLEMS)
    assert sorted(r[3] for r in rows[1:]).count("工资") == sum(
        1 for p in fx.PROBLEMS if p[1] == "wages"
    )
    rows = _xlsx(client, "/export/problems.xlsx?category=wages")
    assert len(rows) - 1 == sum(1 for p in fx.PROBLEMS if p[1] == "wages")
    rows = _xlsx(client, "/export/enterprises.xlsx")
    assert rows[0][1] == "企业名称"
    # The merged duplicate is not listed; its visit counts for the canonical one.
    assert len(rows) - 1 == len(fx.ENTERPRISES) - len(fx.MERGED)
    e2 = next(r for r in rows[1:] if r[1] == "测试企业E2有限公司")
    assert e2[10] == 2  # V2 and V3 (to E2dup)
    rows = _xlsx(client, f"/export/dashboard.xlsx?{PERIOD}")
    assert rows[0][1] == "区(市)县" and len(rows) - 1 == 20 + 1
    assert rows[-1][1] == "合计" and rows[-1][2] == len(fx.live_visits())
    assert client.get("/export/secrets.xlsx").status_code == 404


def test_evaluation_scores_and_ranking(client, campaign):
    web_login(client, "coord")
    r = client.get(f"/api/evaluation?{PERIOD}")
    assert r.status_code == 200
    results = r.json["results"]
    assert len(results) == 20
    scores = [e["score"] for e in results]
    assert scores == sorted(scores, reverse=True)
    a = next(e for e in results if e["code"] == fx.A)
    parts = {b["code"]: b for b in a["breakdown"]}
    assert abs(sum(b["points"] for b in a["breakdown"]) - a["score"]) < 0.05
    # A: 1 of its 5 problems resolved; no spot checks yet (weight spread over the rest).
    assert parts["problems_resolved"]["value"] == 0.2
    assert parts["spot_checks"]["value"] is None
    assert parts["spot_checks"]["effective_weight"] == 0
    # Ties share a rank: every district without visits scores 0.
    zero = [e["rank"] for e in results if e["score"] == 0]
    assert len(set(zero)) == 1
    assert set(r.json["commendation"]) <= {e["code"] for e in results[:5]}
    html = client.get(f"/evaluation?{PERIOD}").get_data(as_text=True)
    assert "年终表彰建议名单" in html and 'id="evaluation-table"' in html
