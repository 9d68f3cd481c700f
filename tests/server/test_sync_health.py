"""Sync health (issue 17): phones report their state with every push and pull; the
health page and API show it per role and scope; silent phones mark their district."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from tests.conftest import PASSWORD, Phone, create_user, visit_fields

STATE = {
    "pending": 7,
    "oldest_pending_at": "2026-03-04T09:00:00+08:00",
    "last_error": "network",
    "app_version": "1.4.2",
    "storage_used": 3_500_000,
    "storage_quota": 500_000_000,
    "persisted": True,
}


def push_with_state(phone: Phone, state: object, n: int = 1):  # noqa: ANN201
    mutations = [
        phone.mutation("create", "visit", str(uuid.uuid4()), visit_fields()) for _ in range(n)
    ]
    body = {
        "protocol": 1,
        "device_id": phone.device_id,
        "mutations": mutations,
        "device_state": state,
    }
    return phone.client.post("/api/sync/push", json=body, headers=phone.headers)


def health(phone_or_headers, **params):  # noqa: ANN001, ANN003, ANN201
    headers = getattr(phone_or_headers, "headers", phone_or_headers)
    client = phone_or_headers.client
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.get("/api/sync-health" + (f"?{query}" if query else ""), headers=headers)


def test_state_round_trip_push_and_pull(app):
    from server.extensions import db
    from server.models_health import DeviceHealth

    create_user("cadre1", "field_cadre", "510104", "WG01")
    create_user("coord", "city_coordinator")
    client = app.test_client()
    phone = Phone(client, "cadre1")
    r = push_with_state(phone, STATE)
    assert r.status_code == 200 and r.json["results"][0]["status"] == "applied"
    assert "device_state_error" not in r.json
    row = db.session.get(DeviceHealth, phone.device_id)
    assert row.pending == 7 and row.last_error == "network" and row.app_version == "1.4.2"
    assert row.oldest_pending_at == datetime(2026, 3, 4, 1, 0, tzinfo=UTC)
    assert row.last_push_at is not None and row.last_pull_at is None
    first_error_at = row.last_error_at
    assert first_error_at is not None

    # a pull carries the state as a header; the same error keeps its first time
    state = {**STATE, "pending": 0, "oldest_pending_at": None}
    r = client.get(
        "/api/sync/pull",
        headers={**phone.headers, "X-Device-State": json.dumps(state)},
    )
    assert r.status_code == 200 and "device_state_error" not in r.json
    db.session.expire_all()
    row = db.session.get(DeviceHealth, phone.device_id)
    assert row.pending == 0 and row.oldest_pending_at is None and row.last_pull_at is not None
    assert row.last_error_at == first_error_at
    # the error clears
    r = client.get(
        "/api/sync/pull",
        headers={**phone.headers, "X-Device-State": json.dumps({"last_error": None})},
    )
    db.session.expire_all()
    row = db.session.get(DeviceHealth, phone.device_id)
    assert row.last_error is None and row.last_error_at is None and row.pending == 0

    coord = Phone(client, "coord")
    body = health(coord).json
    mine = next(d for d in body["devices"] if d["device_id"] == phone.device_id)
    assert mine["status"] == "ok" and mine["app_version"] == "1.4.2"
    # a phone's clock ahead cannot make its oldest entry look newer than now
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    push_with_state(phone, {"pending": 1, "oldest_pending_at": future})
    db.session.expire_all()
    row = db.session.get(DeviceHealth, phone.device_id)
    assert row.oldest_pending_at <= datetime.now(UTC)


def test_a_bad_state_never_blocks_the_push(app):
    from server.extensions import db
    from server.models_health import DeviceHealth

    create_user("cadre1", "field_cadre", "510104", "WG01")
    client = app.test_client()
    phone = Phone(client, "cadre1")
    for bad, field in (
        ({"pending": -1}, "device_state.pending"),
        ({"pending": "7"}, "device_state.pending"),
        ({"last_error": "Network Error!"}, "device_state.last_error"),
        ({"oldest_pending_at": "yesterday"}, "device_state.oldest_pending_at"),
        ({"oldest_pending_at": "2026-03-04T09:00:00"}, "device_state.oldest_pending_at"),
        ({"app_version": "x" * 41}, "device_state.app_version"),
        ([1, 2], "device_state"),
    ):
        r = push_with_state(phone, bad)
        assert r.status_code == 200, r.json
        assert r.json["results"][0]["status"] == "applied"
        assert r.json["device_state_error"]["field"] == field, (bad, r.json)
    row = db.session.get(DeviceHealth, phone.device_id)
    assert row.pending is None and row.last_push_at is not None  # the sync still counted
    r = client.get("/api/sync/pull", headers={**phone.headers, "X-Device-State": "{not json"})
    assert r.status_code == 200 and r.json["device_state_error"]["field"] == "X-Device-State"


FUZZ_PHONES: dict = {}  # one sign-in per app for the generated cases (argon2 is slow)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    state=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither
        | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=20), inner),
        max_leaves=8,
    )
    | st.fixed_dictionaries(
        {},
        optional={
            "pending": st.integers() | st.text(),
            "oldest_pending_at": st.text() | st.datetimes().map(str),
            "last_error": st.text(),
            "app_version": st.text(),
            "storage_used": st.integers(),
            "persisted": st.integers() | st.booleans(),
        },
    )
)
def test_any_state_value_gives_a_working_push(app, state):
    from server.extensions import db
    from server.models import User

    if db.session.query(User).filter_by(username="fuzz").first() is None:
        create_user("fuzz", "field_cadre", "510104", "WG01")
    phone = FUZZ_PHONES.get(app) or FUZZ_PHONES.setdefault(app, Phone(app.test_client(), "fuzz"))
    r = push_with_state(phone, state)
    assert r.status_code == 200, r.json
    assert r.json["results"][0]["status"] == "applied"


def test_health_per_role_and_scope(app):
    from server.extensions import db
    from server.models_health import DeviceHealth

    create_user("c104", "field_cadre", "510104", "WG01")
    create_user("c105", "field_cadre", "510105", "WG02")
    create_user("c105b", "field_cadre", "510105", "WG01")
    create_user("head104", "district_head", "510104")
    create_user("lead01", "group_leader", "510104", "WG01")
    create_user("coord", "city_coordinator")
    create_user("admin1", "admin")
    client = app.test_client()
    p104, p105 = Phone(client, "c104"), Phone(client, "c105")
    Phone(client, "c105b")  # signed in, never synced
    push_with_state(p104, {"pending": 2, "last_error": "token_expired"})
    push_with_state(p105, {"pending": 0})
    # p105b never synced; p105 last synced 5 days ago (silent past SYNC_SILENT_DAYS=3)
    db.session.execute(
        update(DeviceHealth)
        .where(DeviceHealth.device_id == p105.device_id)
        .values(last_sync_at=datetime.now(UTC) - timedelta(days=5))
    )
    db.session.commit()

    def seen(username: str, **params) -> dict[str, str]:  # noqa: ANN003
        r = health(Phone(client, username), **params)
        assert r.status_code == 200, r.json
        return {d["username"]: d["status"] for d in r.json["devices"] if d["role"] == "field_cadre"}

    everything = {"c104": "failing", "c105": "silent", "c105b": "never"}
    assert seen("coord") == everything
    assert seen("admin1") == everything
    assert seen("head104") == {"c104": "failing"}
    assert seen("lead01") == {"c104": "failing", "c105b": "never"}
    assert seen("coord", status="silent") == {"c105": "silent"}
    assert seen("coord", district="510105") == {"c105": "silent", "c105b": "never"}
    r = health(Phone(client, "head104"), district="510105")
    assert r.status_code == 400 and r.json["error"]["field"] == "district"
    r = health(Phone(client, "coord"), status="bogus")
    assert r.status_code == 400 and r.json["error"]["field"] == "status"
    assert health(p104).status_code == 403
    paged = health(Phone(client, "coord"), per_page=2, page=2, sort="last_sync").json
    assert len(paged["devices"]) == 2 and paged["page"] == 2 and paged["matching"] >= 7
    assert health(Phone(client, "coord"), per_page=0).status_code == 400

    body = health(Phone(client, "coord")).json
    d105 = next(d for d in body["districts"] if d["code"] == "510105")
    assert (d105["silent"], d105["never"], d105["devices"]) == (1, 1, 2)

    from sync.health import district_freshness

    fresh = district_freshness(db.session, silent_days=3)
    ids = {u.code: u.id for u in __import__("server.models", fromlist=["x"]).DistrictUnit.query}
    assert fresh[ids["510105"]]["stale"] is True and fresh[ids["510105"]]["phones_silent"] >= 2
    f104 = fresh[ids["510104"]]
    assert f104["entries_waiting"] == 2 and f104["phones_waiting"] == 1
    assert f104["as_of"] is not None


def web_login(client, username: str) -> None:  # noqa: ANN001
    from flask import g

    g.pop("web_user", None)  # the test's app context outlives a request
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code in (302, 303)


def test_health_page_export_and_revoke(app):
    from openpyxl import load_workbook

    from server.extensions import db
    from server.models import Device

    create_user("c104", "field_cadre", "510104", "WG01")
    create_user("head104", "district_head", "510104")
    create_user("admin1", "admin")
    client = app.test_client()
    phone = Phone(client, "c104")
    push_with_state(phone, {"pending": 3, "app_version": "=HYPERLINK(1)"})  # refused: not a version
    push_with_state(phone, {"pending": 3, "app_version": "1.4.2"})

    web = app.test_client()
    web_login(web, "head104")
    html = web.get("/sync-health").get_data(as_text=True)
    assert "同步状态" in html and "c104" in html and "有待发送" in html and "/revoke" not in html
    r = web.get("/sync-health.xlsx")
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.data)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "区县" and rows[1][3] == "c104" and rows[1][7] == 3
    assert isinstance(rows[1][6], datetime)  # a date cell, not text
    assert web.get("/sync-health?sort=bogus").status_code == 400

    admin = app.test_client()
    web_login(admin, "admin1")
    html = admin.get("/sync-health").get_data(as_text=True)
    assert f"/sync-health/devices/{phone.device_id}/revoke" in html
    token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert admin.post(f"/sync-health/devices/{phone.device_id}/revoke").status_code == 400
    r = admin.post(f"/sync-health/devices/{phone.device_id}/revoke", data={"csrf_token": token})
    assert r.status_code in (302, 303)
    db.session.expire_all()
    assert db.session.get(Device, phone.device_id).revoked_at is not None
    r = push_with_state(phone, {"pending": 3})
    assert r.status_code == 401 and r.json["error"]["code"] == "device_revoked"
