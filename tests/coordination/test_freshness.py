"""Figures that say how fresh they are (issue 17, item 3): the dashboard gives each
district "as of" its phones' latest sync, and marks a district with a silent phone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from tests.coordination import fixture_data as fx
from tests.coordination.conftest import web_login


def test_dashboard_as_of_and_stale_mark(client, campaign, db_session):
    from server.models_health import DeviceHealth

    # district A's two phones sync now (the app pulls right after sign-in); cadre_c's
    # phone last synced 10 days ago (silent past SYNC_SILENT_DAYS)
    for name in ("cadre_a", "cadre_a2"):
        assert campaign.phones[name].get("/api/sync/pull").status_code == 200
    silent = campaign.phones["cadre_c"].device_id
    db_session.execute(
        update(DeviceHealth)
        .where(DeviceHealth.device_id == silent)
        .values(last_sync_at=datetime.now(UTC) - timedelta(days=10), pending=4)
    )
    db_session.commit()

    web_login(client, "coord")
    body = client.get("/api/dashboard?from=2026-01-01&to=2026-12-31").json
    fresh = body["freshness"]
    assert fresh[fx.A]["stale"] is False and fresh[fx.A]["phones"] == 2
    assert fresh[fx.A]["as_of"] is not None
    assert fresh[fx.C]["stale"] is True and fresh[fx.C]["phones_silent"] == 1
    assert fresh[fx.C]["entries_waiting"] == 4 and fresh[fx.C]["phones_waiting"] == 1
    html = client.get("/dashboard?from=2026-01-01&to=2026-12-31").get_data(as_text=True)
    assert html.count('data-testid="as-of"') == 3  # districts with phones
    assert html.count('data-testid="stale"') == 1 and "数据可能不完整" in html

    # a district head sees only their district's freshness
    web_login(client, "head_a")
    body = client.get("/api/dashboard?from=2026-01-01&to=2026-12-31").json
    assert set(body["freshness"]) == {fx.A}
