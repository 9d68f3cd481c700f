"""Sync under hostile input: nothing wedges a phone's queue, nothing silently undoes an
edit (issue 11). Real app, real SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.conftest import Phone, create_user, visit_fields


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def cadre(app):
    return create_user("cadre1", "field_cadre", "510104", "WG01")


def count(model, **where) -> int:  # noqa: ANN001
    from server.extensions import db

    query = select(func.count()).select_from(model)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    return db.session.scalar(query)


def statuses(r) -> list[tuple[str, str | None]]:  # noqa: ANN001
    assert r.status_code == 200, r.json
    return [(x["status"], x.get("code")) for x in r.json["results"]]


HOSTILE_FIELDS = [
    {"visited_at": "0001-01-01T00:00:00+08:00"},
    {"visited_at": "9999-12-31T23:59:59-08:00"},
    {"visited_at": "1999-03-05T10:00:00+08:00"},
    {"visited_at": "2099-03-05T10:00:00+08:00"},
    {"notes": "x\ud800y"},
    {"notes": "a\x00b"},
    {"workers_met": 3.5},
    {"workers_met": "5"},
    {"workers_met": 2**70},
    {"lat": float("inf")},
    {"participants": ["cadre1", "\udfff"]},
    {"workers_by_group": {"needy\x00": 1}},
]


@pytest.mark.parametrize("bad", HOSTILE_FIELDS, ids=[json.dumps(b)[:40] for b in HOSTILE_FIELDS])
def test_a_hostile_entry_fails_alone_and_the_counter_moves_past_it(client, cadre, bad):
    from server.models import Visit

    phone = Phone(client, "cadre1")
    batch = [
        phone.mutation("create", "visit", new_id(), visit_fields()),
        phone.mutation("create", "visit", new_id(), visit_fields(**bad)),
        phone.mutation("create", "visit", new_id(), visit_fields()),
    ]
    body = json.dumps(
        {"protocol": 1, "device_id": phone.device_id, "mutations": batch}, allow_nan=True
    )
    r = client.post(
        "/api/sync/push", data=body, headers=phone.headers, content_type="application/json"
    )
    if r.status_code == 400:  # a non-finite number is not JSON at all
        assert bad == {"lat": float("inf")} and r.json["error"]["code"] == "malformed"
        return
    got = statuses(r)
    assert got[0] == ("applied", None) and got[2] == ("applied", None)
    assert got[1][0] == "rejected" and r.json["results"][1].get("field")
    assert r.json["last_mid"] == 3
    assert count(Visit) == 2


def test_deep_json_is_malformed_not_a_server_error(client, cadre):
    phone = Phone(client, "cadre1")
    deep = "[" * 10_000 + "]" * 10_000
    body = f'{{"protocol": 1, "device_id": "{phone.device_id}", "mutations": {deep}}}'
    r = client.post(
        "/api/sync/push", data=body, headers=phone.headers, content_type="application/json"
    )
    assert r.status_code == 400 and r.json["error"]["code"] == "malformed"


def test_push_without_protocol_is_told_to_update(client, cadre):
    phone = Phone(client, "cadre1")
    r = client.post(
        "/api/sync/push",
        json={"device_id": phone.device_id, "mutations": []},
        headers=phone.headers,
    )
    assert r.status_code == 426 and r.json["error"]["code"] == "protocol_outdated"
    r = phone.get("/api/sync/pull?protocol=2")
    assert r.status_code == 400 and r.json["error"]["code"] == "protocol_unknown"


def test_a_stale_create_never_undoes_later_edits(client, cadre):
    from server.extensions import db
    from server.models import Conflict, Visit

    create_user("cadre2", "field_cadre", "510104", "WG01")
    first, other = Phone(client, "cadre1"), Phone(client, "cadre2")
    vid = new_id()
    create = first.mutation("create", "visit", vid, visit_fields(notes="first"))
    assert statuses(first.push([create])) == [("applied", None)]
    version = first.push([]).json["server_version"]
    edit = other.mutation(
        "update", "visit", vid, {"workers_met": 30, "notes": "later"}, base_version=version
    )
    assert statuses(other.push([edit]))[0][0] == "applied"
    # a reinstalled phone replays the exported queue under a new device id
    again = Phone(client, "cadre1")
    replay = again.mutation("create", "visit", vid, visit_fields(notes="first"))
    r = again.push([replay])
    assert statuses(r) == [("conflict", "replay_kept_newer")]
    db.session.expire_all()
    visit = db.session.get(Visit, vid)
    assert (visit.workers_met, visit.notes) == (30, "later")
    kept = {
        c.field: c.client_value
        for c in db.session.scalars(
            select(Conflict).where(Conflict.record_id == vid, Conflict.kind == "replayed")
        )
    }
    assert kept == {"workers_met": 12, "notes": "first"}


def test_a_restarted_counter_is_told_mid_reused_and_never_loses_work(client, cadre):
    from server.models import Visit

    phone = Phone(client, "cadre1")
    batch = [phone.mutation("create", "visit", new_id(), visit_fields()) for _ in range(3)]
    assert statuses(phone.push(batch)) == [("applied", None)] * 3
    # the same device id signs in again: the answer says where its counter stands
    r = client.post(
        "/api/auth/login",
        json={"username": "cadre1", "password": "test-pass-123", "device_id": phone.device_id},
    )
    assert r.json["last_mid"] == 3
    again = Phone(client, "cadre1", device_id=phone.device_id)
    phone.headers = again.headers  # one token per device: the newest
    fresh = [again.mutation("create", "visit", new_id(), visit_fields()) for _ in range(2)]
    r = again.push(fresh + [again.mutation("create", "visit", new_id(), visit_fields())])
    assert statuses(r) == [("rejected", "mid_reused")] * 3
    assert r.json["last_mid"] == 3 and count(Visit) == 3
    # a true replay is still a duplicate
    assert statuses(phone.push(batch)) == [("duplicate", None)] * 3
    # renumbered after last_mid, they are stored
    for n, m in enumerate(fresh):
        m["mid"] = 4 + n
    assert statuses(again.push(fresh)) == [("applied", None)] * 2
    assert count(Visit) == 5


def test_deleting_a_visit_deletes_its_children_and_keeps_late_child_edits(client, cadre):
    from server.extensions import db
    from server.models import Conflict, HomeVisit, Problem

    phone = Phone(client, "cadre1")
    vid, pid, hid = new_id(), new_id(), new_id()
    r = phone.push(
        [
            phone.mutation("create", "visit", vid, visit_fields()),
            phone.mutation(
                "create",
                "problem",
                pid,
                {"visit_id": vid, "category": "wages", "description": "欠薪"},
            ),
            phone.mutation(
                "create",
                "home_visit",
                hid,
                {
                    "visit_id": vid,
                    "district_code": "510104",
                    "worker_name": "某某",
                    "visited_at": "2026-03-05T10:20:00+08:00",
                    "amount_cents": 50000,
                },
            ),
            phone.mutation("delete", "visit", vid),
        ]
    )
    assert statuses(r) == [("applied", None)] * 4
    assert count(Problem, deleted=False) == 0 and count(HomeVisit, deleted=False) == 0
    late = phone.mutation(
        "create",
        "problem",
        new_id(),
        {"visit_id": vid, "category": "safety", "description": "车间太热"},
    )
    assert statuses(phone.push([late])) == [("rejected", "parent_deleted")]
    kept = db.session.scalars(select(Conflict).where(Conflict.kind == "deleted")).all()
    assert [c.client_value["description"] for c in kept] == ["车间太热"]
    tombstones = {(c["entity"], c["deleted"]) for c in phone.pull_all()[0]}
    assert ("problem", True) in tombstones and ("home_visit", True) in tombstones


def test_the_author_stays_among_participants(client, cadre):
    create_user("cadre2", "field_cadre", "510104", "WG01")
    phone = Phone(client, "cadre1")
    vid = new_id()
    phone.push([phone.mutation("create", "visit", vid, visit_fields())])
    version = phone.push([]).json["server_version"]
    phone.push(
        [phone.mutation("update", "visit", vid, {"participants": ["cadre2"]}, base_version=version)]
    )
    assert sorted(phone.get(f"/api/visits/{vid}").json["participants"]) == ["cadre1", "cadre2"]


def test_a_stage_moves_back_only_with_a_reason(client, cadre):
    phone = Phone(client, "cadre1")
    vid, pid = new_id(), new_id()
    phone.push(
        [
            phone.mutation("create", "visit", vid, visit_fields()),
            phone.mutation(
                "create",
                "problem",
                pid,
                {
                    "visit_id": vid,
                    "category": "wages",
                    "description": "欠薪",
                    "stage": "government",
                },
            ),
        ]
    )
    version = phone.push([]).json["server_version"]
    back = phone.mutation("update", "problem", pid, {"stage": "enterprise"}, base_version=version)
    assert statuses(phone.push([back])) == [("rejected", "stage_reason_required")]
    back = phone.mutation(
        "update",
        "problem",
        pid,
        {"stage": "enterprise", "stage_note": "企业承诺自行解决"},
        base_version=version,
    )
    assert statuses(phone.push([back])) == [("applied", None)]


def test_a_revoked_device_is_told_so(client, cadre):
    from server.extensions import db
    from server.models import Device

    phone = Phone(client, "cadre1")
    create_user("admin1", "admin")
    r = client.post("/api/auth/login", json={"username": "admin1", "password": "test-pass-123"})
    admin = {"Authorization": f"Bearer {r.json['token']}"}
    assert (
        client.post(f"/api/admin/devices/{phone.device_id}/revoke", headers=admin).status_code
        == 200
    )
    r = phone.push([])
    assert r.status_code == 401 and r.json["error"]["code"] == "device_revoked"
    # recovery: a new device, its counter from 1
    fresh = Phone(client, "cadre1")
    assert fresh.device_id != phone.device_id
    assert statuses(fresh.push([fresh.mutation("create", "visit", new_id(), visit_fields())])) == [
        ("applied", None)
    ]
    assert db.session.get(Device, fresh.device_id).last_mid == 1


def test_a_push_that_changes_nothing_does_not_move_the_version(client, cadre):
    phone = Phone(client, "cadre1")
    phone.push([phone.mutation("create", "visit", new_id(), visit_fields())])
    before = phone.push([]).json["server_version"]
    bad = phone.mutation("create", "visit", new_id(), visit_fields(method="party"))
    assert statuses(phone.push([bad]))[0][0] == "rejected"
    assert phone.push([]).json["server_version"] == before


def test_a_wrong_uscc_check_character_is_a_warning(client, cadre):
    phone = Phone(client, "cadre1")
    r = phone.push(
        [
            phone.mutation(
                "create",
                "enterprise",
                new_id(),
                {
                    "name": "成都华兴机械有限公司",
                    "district_code": "510104",
                    "uscc": "91510100MA61R3XK3A",
                },
            )
        ]
    )
    result = r.json["results"][0]
    if result["status"] == "applied" and "warnings" in result:
        assert result["warnings"][0]["field"] == "uscc"


# Hostile batches: random JSON in every field, the known classes among them, valid
# entries mixed in. Never a 5xx; every valid entry applied; the counter past all.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELD_NAMES = [
    "method",
    "visited_at",
    "district_code",
    "workers_met",
    "notes",
    "participants",
    "workers_by_group",
    "lat",
    "enterprise_id",
    "work_group_code",
    "place",
]
HOSTILE_VALUES = st.sampled_from(
    [
        "0001-01-01T00:00:00+08:00",
        "x\ud800y",
        "a\x00b",
        3.5,
        "5",
        2**63,
        -1,
        "",
        [],
        {},
        "9999-12-31T23:59:59-12:00",
        "2026-03-05T10:20:00",
    ]
)


@st.composite
def hostile_entry(draw):  # noqa: ANN001, ANN201
    # Valid visits fall on many days, as a cadre's do: one author's visits of one day
    # beyond PLAUSIBLE_HARD's visits_per_day would be refused, rightly.
    day = f"2026-{draw(st.integers(1, 10)):02d}-{draw(st.integers(1, 28)):02d}T10:20:00+08:00"
    if draw(st.booleans()):
        return "valid", {
            "op": "create",
            "entity": "visit",
            "id": new_id(),
            "fields": visit_fields(visited_at=day),
        }
    fields = visit_fields(visited_at=day)
    for name in draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=3)):
        fields[name] = draw(JSON | HOSTILE_VALUES)
    entry = {
        "op": draw(st.sampled_from(["create", "update", "delete", "create"])),
        "entity": draw(st.sampled_from(["visit", "visit", "problem", "home_visit", "enterprise"])),
        "id": draw(st.sampled_from([new_id(), "not-a-uuid"])),
        "fields": fields,
    }
    if draw(st.booleans()):
        entry["base_version"] = draw(JSON)
    return "hostile", entry


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(hostile_entry(), min_size=1, max_size=8))
def test_hostile_batches_never_5xx_and_valid_entries_apply(app, batch):
    from server.extensions import db
    from server.models import Device, Visit

    client = app.test_client()
    if db.session.scalar(select(func.count()).select_from(Device)) == 0:
        create_user("fuzz", "field_cadre", "510104", "WG01")
    phone = Phone(client, "fuzz")
    before = count(Visit)
    mutations = []
    for n, (_, entry) in enumerate(batch, start=1):
        mutations.append({"mid": n, **entry})
    body = json.dumps({"protocol": 1, "device_id": phone.device_id, "mutations": mutations})
    r = client.post(
        "/api/sync/push", data=body, headers=phone.headers, content_type="application/json"
    )
    assert r.status_code < 500, r.json
    assert r.status_code == 200, r.json
    assert r.json["last_mid"] == len(batch)
    results = r.json["results"]
    valid = [i for i, (kind, _) in enumerate(batch) if kind == "valid"]
    assert all(results[i]["status"] == "applied" for i in valid), results
    db.session.rollback()
    applied_visits = sum(
        1
        for i, (_, e) in enumerate(batch)
        if results[i]["status"] in ("applied", "conflict")
        and e["entity"] == "visit"
        and e["op"] == "create"
    )
    assert count(Visit) == before + applied_visits
    for (_, entry), res in zip(batch, results, strict=True):
        if res["status"] == "rejected" and entry["op"] == "create" and entry["entity"] == "visit":
            assert db.session.get(Visit, entry["id"]) is None  # nothing of it stored
