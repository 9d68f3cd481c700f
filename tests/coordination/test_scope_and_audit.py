"""A district head sees only their own district (pages, JSON, exports); the record page
shows the audit history of sync changes."""

from __future__ import annotations

import csv
import io

from tests.coordination import fixture_data as fx
from tests.coordination.conftest import web_login


def test_district_head_sees_own_district_only(client, campaign):
    web_login(client, "head_a")
    r = client.get("/api/dashboard?from=2026-01-01&to=2026-12-31")
    assert r.status_code == 200
    assert [row["code"] for row in r.json["rows"]] == [fx.A]
    html = client.get("/dashboard?from=2026-01-01&to=2026-12-31").get_data(as_text=True)
    assert f'data-code="{fx.A}"' in html and f'data-code="{fx.B}"' not in html
    assert client.get(f"/dashboard/{fx.A}").status_code == 200
    assert client.get(f"/dashboard/{fx.B}").status_code == 403
    assert client.get(f"/api/dashboard/{fx.B}").status_code == 403
    b_visit = campaign.visit_ids["V6"]
    assert client.get(f"/dashboard/visit/{b_visit}").status_code == 404
    assert client.get(f"/api/dashboard/visits/{b_visit}").status_code == 404
    assert client.get(f"/dashboard/visit/{campaign.visit_ids['V1']}").status_code == 200
    # Problems: only district A's.
    data = client.get("/api/problem-tracker").json
    a_problems = [p for p in fx.PROBLEMS if fx.VISITS[p[0]][0] == fx.A]
    assert data["total"] == len(a_problems)
    assert {p["district"] for p in data["items"]} == {"锦江区"}
    assert client.get(f"/problems?district={fx.B}").status_code == 403
    # Exports: only district A's rows.
    body = client.get("/export/visits.csv?from=2026-01-01&to=2026-12-31").get_data()
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    a_visits = [k for k, v in fx.live_visits().items() if v[0] == fx.A]
    assert len(rows) - 1 == len(a_visits)
    assert {r[1] for r in rows[1:]} == {"锦江区"}
    body = client.get("/export/enterprises.csv").get_data().decode("utf-8-sig")
    assert "测试企业E5" not in body and "测试企业E1" in body
    # Spot checks are the city's supervision: not for district heads.
    assert client.get("/spot-checks").status_code == 403
    # Evaluation: their own row, ranked among all districts.
    ev = client.get("/api/evaluation?from=2026-01-01&to=2026-12-31").json
    assert [e["code"] for e in ev["results"]] == [fx.A]


def test_group_leader_is_refused(client, campaign):
    web_login(client, "leader_a")
    assert client.get("/dashboard").status_code == 403
    assert client.get("/evaluation").status_code == 403


def test_signed_out_page_redirects_and_api_401(client, campaign):
    r = client.get("/dashboard")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert client.get("/api/dashboard").status_code == 401


def test_bearer_token_works_for_json(client, campaign):
    from tests.conftest import Phone

    phone = Phone(client, "coord")
    r = phone.get("/api/dashboard?from=2026-01-01&to=2026-12-31")
    assert r.status_code == 200 and len(r.json["rows"]) == 20


def test_record_page_shows_sync_audit(client, campaign, db_session):
    from sqlalchemy import select

    from server.models import AuditEntry

    web_login(client, "coord")
    vid = campaign.visit_ids["V2"]
    entries = db_session.scalars(select(AuditEntry).where(AuditEntry.record_id == vid)).all()
    assert [e.action for e in entries] == ["create", "update"]
    html = client.get(f"/dashboard/visit/{vid}").get_data(as_text=True)
    assert html.count('class="audit-row"') >= 2 + 1  # visit create, update, its problem
    assert "workers_met" in html and "3 → 4" in html
    assert "cadre_a" in html and "sync" in html
    assert campaign.phones["cadre_a"].device_id[:8] in html
    js = client.get(f"/api/dashboard/visits/{vid}").json
    visit_audit = [a for a in js["audit"] if a["record_id"] == vid]
    assert [a["action"] for a in visit_audit] == ["create", "update"]
    assert visit_audit[1]["changes"]["workers_met"] == [3, 4]
    assert visit_audit[1]["device_id"] == campaign.phones["cadre_a"].device_id
    assert visit_audit[1]["source"] == "sync"
