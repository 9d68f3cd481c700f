"""The sync protocol end to end through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest
from sqlalchemy import func, select

from tests.conftest import Phone, create_user, visit_fields


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def cadre(app):
    return create_user("cadre1", "field_cadre", "510104", "WG01")


def count(model) -> int:  # noqa: ANN001
    from server.extensions import db

    return db.session.scalar(select(func.count()).select_from(model))


def test_same_batch_three_times_applies_once(client, cadre):
    from server.models import AuditEntry, Problem, Visit

    phone = Phone(client, "cadre1")
    vid = new_id()
    batch = [
        phone.mutation("create", "visit", vid, visit_fields()),
        phone.mutation(
            "create",
            "problem",
            new_id(),
            {"visit_id": vid, "category": "wages", "description": "欠薪"},
        ),
    ]
    answers = [phone.push(batch) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert [r["status"] for r in answers[0].json["results"]] == ["applied", "applied"]
    for later in answers[1:]:
        assert [r["status"] for r in later.json["results"]] == ["duplicate", "duplicate"]
        assert later.json["last_mid"] == 2
    assert count(Visit) == 1 and count(Problem) == 1
    assert count(AuditEntry) == 2


def test_out_of_order_batches_and_gap(client, cadre):
    from server.models import Visit

    phone = Phone(client, "cadre1")
    first = [phone.mutation("create", "visit", new_id(), visit_fields()) for _ in range(2)]
    second = [phone.mutation("create", "visit", new_id(), visit_fields()) for _ in range(2)]
    early = phone.push(second)  # batch 2 arrives first: a gap, nothing applied
    assert [r["status"] for r in early.json["results"]] == ["skipped", "skipped"]
    assert early.json["results"][0]["code"] == "gap"
    assert early.json["last_mid"] == 0 and count(Visit) == 0
    assert [r["status"] for r in phone.push(first).json["results"]] == ["applied"] * 2
    assert [r["status"] for r in phone.push(second).json["results"]] == ["applied"] * 2
    assert count(Visit) == 4
    # the whole history replayed in reverse order changes nothing
    replay = phone.push(second + first)
    assert {r["status"] for r in replay.json["results"]} == {"duplicate"}
    assert count(Visit) == 4


def test_push_cut_off_then_retried(client, cadre, app):
    """A batch whose answer was lost is retried: applied once, answer repeated."""
    from server.models import Visit

    phone = Phone(client, "cadre1")
    batch = [phone.mutation("create", "visit", new_id(), visit_fields()) for _ in range(3)]
    phone.push(batch[:2])  # the phone never saw this answer: connection dropped
    retry = phone.push(batch)
    assert [r["status"] for r in retry.json["results"]] == ["duplicate", "duplicate", "applied"]
    assert count(Visit) == 3


def test_a_failed_transaction_leaves_nothing_half_written(client, cadre, app):
    """An error in the middle of a batch rolls the whole batch back: the retry applies it."""
    import sync.records as records
    from server.extensions import db
    from server.models import Device, Visit

    phone = Phone(client, "cadre1")
    batch = [
        phone.mutation("create", "visit", new_id(), visit_fields(notes=n))
        for n in ("ok", "boom", "ok")
    ]
    original = records._BUILDERS["visit"]

    def failing(session, ref, actor, data, obj):  # noqa: ANN001, ANN202
        if data.get("notes") == "boom":
            raise RuntimeError("disk on fire")
        return original(session, ref, actor, data, obj)

    # An unexpected error while applying one entry rejects that entry alone: the batch
    # is applied again entry by entry and the counter moves past it (never a 500 that
    # would block the phone's queue for good).
    records._BUILDERS["visit"] = failing
    try:
        r = phone.push(batch)
    finally:
        records._BUILDERS["visit"] = original
    assert r.status_code == 200, r.json
    assert [(x["status"], x.get("code")) for x in r.json["results"]] == [
        ("applied", None),
        ("rejected", "unstorable"),
        ("applied", None),
    ]
    db.session.rollback()
    assert count(Visit) == 2
    assert db.session.get(Device, phone.device_id).last_mid == 3


def test_rejected_change_does_not_block_neighbours(client, cadre):
    from server.models import Visit

    phone = Phone(client, "cadre1")
    batch = [
        phone.mutation("create", "visit", new_id(), visit_fields()),
        phone.mutation("create", "visit", new_id(), visit_fields(method="party")),
        phone.mutation(
            "create",
            "visit",
            new_id(),
            visit_fields(workers_met=2, workers_by_group={"migrant": 5}),
        ),
        phone.mutation("create", "visit", new_id(), visit_fields()),
    ]
    results = phone.push(batch).json["results"]
    assert [r["status"] for r in results] == ["applied", "rejected", "rejected", "applied"]
    assert results[1]["field"] == "method" and results[1]["code"] == "invalid"
    assert results[2]["field"] == "workers_by_group.migrant"
    assert count(Visit) == 2
    # later changes of the same device still go through
    later = phone.push([phone.mutation("create", "visit", new_id(), visit_fields())])
    assert later.json["results"][0]["status"] == "applied"
    # the rejection is answered the same on a replay
    replay = phone.push(batch).json["results"]
    assert replay[1]["status"] == "duplicate"
    assert replay[1]["original"]["status"] == "rejected"
    assert replay[1]["original"]["field"] == "method"


def test_two_devices_edit_one_visit_offline(client, cadre):
    create_user("cadre2", "field_cadre", "510104", "WG01")
    a, b = Phone(client, "cadre1"), Phone(client, "cadre2")
    vid = new_id()
    created = a.push([a.mutation("create", "visit", vid, visit_fields(notes="原始"))])
    base = created.json["results"][0]["version"]
    # both edit offline from the same base: different fields, and one field in common
    ra = a.push(
        [
            a.mutation(
                "update", "visit", vid, {"workers_met": 20, "notes": "A的备注"}, base_version=base
            )
        ]
    )
    rb = b.push(
        [
            b.mutation(
                "update", "visit", vid, {"materials": 7, "notes": "B的备注"}, base_version=base
            )
        ]
    )
    assert ra.json["results"][0]["status"] == "applied"
    assert rb.json["results"][0]["status"] == "applied"
    changes_a, _ = a.pull_all()
    changes_b, _ = b.pull_all()
    final_a = [c for c in changes_a if c["id"] == vid][-1]["data"]
    final_b = [c for c in changes_b if c["id"] == vid][-1]["data"]
    assert final_a == final_b  # every device converges
    assert final_a["workers_met"] == 20 and final_a["materials"] == 7
    assert final_a["notes"] == "B的备注"
    # A's acknowledged note is not silently lost: it is in the conflict log
    history = a.get(f"/api/records/visit/{vid}/history").json
    lost = [c for c in history["conflicts"] if c["field"] == "notes"]
    assert lost and lost[0]["server_value"] == "A的备注" and lost[0]["client_value"] == "B的备注"


def test_problem_stage_conflict_is_kept_for_a_person(client, cadre):
    create_user("cadre2", "field_cadre", "510104", "WG01")
    a, b = Phone(client, "cadre1"), Phone(client, "cadre2")
    vid, pid = new_id(), new_id()
    r = a.push(
        [
            a.mutation("create", "visit", vid, visit_fields()),
            a.mutation(
                "create",
                "problem",
                pid,
                {"visit_id": vid, "category": "wages", "description": "欠薪"},
            ),
        ]
    )
    base = r.json["results"][1]["version"]
    ra = a.push(
        [
            a.mutation(
                "update",
                "problem",
                pid,
                {"stage": "government", "stage_note": "企业无力解决"},
                base_version=base,
            )
        ]
    )
    rb = b.push(
        [
            b.mutation(
                "update",
                "problem",
                pid,
                {"stage": "resolved", "resolution": "已补发"},
                base_version=base,
            )
        ]
    )
    assert ra.json["results"][0]["status"] == "applied"
    answer = rb.json["results"][0]
    assert answer["status"] == "conflict" and answer["code"] == "stage_conflict"
    assert answer["server_value"] == "government"
    detail = a.get(f"/api/problems/{pid}").json
    assert detail["stage"] == "government"
    assert detail["resolution"] == "已补发"  # the other field of B's edit is applied
    assert [h["to"] for h in detail["history"]] == ["enterprise", "government"]
    conflicts = a.get(f"/api/records/problem/{pid}/history").json["conflicts"]
    assert conflicts[0]["kind"] == "stage"
    assert conflicts[0]["client_value"]["stage"] == "resolved"


def test_delete_against_edit(client, cadre):
    create_user("cadre2", "field_cadre", "510104", "WG01")
    a, b = Phone(client, "cadre1"), Phone(client, "cadre2")
    vid = new_id()
    base = a.push([a.mutation("create", "visit", vid, visit_fields())]).json["results"][0][
        "version"
    ]
    assert a.push([a.mutation("delete", "visit", vid)]).json["results"][0]["status"] == "applied"
    late = b.push([b.mutation("update", "visit", vid, {"notes": "补充"}, base_version=base)])
    assert late.json["results"][0]["status"] == "rejected"
    assert late.json["results"][0]["code"] == "deleted"
    changes, _ = b.pull_all()
    tomb = [c for c in changes if c["id"] == vid]
    assert tomb[-1]["deleted"] is True and "data" not in tomb[-1]
    # the late edit is kept, visible in the record's history
    from server.extensions import db
    from server.models import Conflict

    kept = db.session.scalars(select(Conflict).where(Conflict.record_id == vid)).all()
    assert kept[0].kind == "deleted" and kept[0].client_value == {"notes": "补充"}


def test_catch_up_on_10000_changes_through_pages(client, cadre, app):
    from server.extensions import db
    from server.models import DistrictUnit, Enterprise

    district = db.session.scalar(select(DistrictUnit).where(DistrictUnit.code == "510104"))
    db.session.add_all(
        Enterprise(id=new_id(), name=f"测试企业{i}", district_id=district.id) for i in range(10_000)
    )
    db.session.commit()
    phone = Phone(client, "cadre1")
    changes, cursor = phone.pull_all(limit=2000)
    assert len(changes) == 10_000
    assert len({c["id"] for c in changes}) == 10_000
    versions = [c["version"] for c in changes]
    assert versions == sorted(versions)
    # nothing new: an empty page, same position
    again, _ = phone.pull_all(cursor)
    assert again == []


def test_pull_after_cursor_sees_only_new_changes_and_tombstones(client, cadre):
    phone = Phone(client, "cadre1")
    vid = new_id()
    phone.push([phone.mutation("create", "visit", vid, visit_fields())])
    _, cursor = phone.pull_all()
    phone.push(
        [
            phone.mutation("update", "visit", vid, {"notes": "新"}),
            phone.mutation("delete", "visit", vid),
        ]
    )
    changes, _ = phone.pull_all(cursor)
    assert [(c["id"], c["deleted"]) for c in changes] == [(vid, True)]


def test_unknown_or_foreign_cursor_resets(client, cadre):
    phone = Phone(client, "cadre1")
    phone.push([phone.mutation("create", "visit", new_id(), visit_fields())])
    for cursor in ("garbage", "WyJvdGhlci1lcG9jaCIsMSwwLCIiXQ"):
        r = phone.get(f"/api/sync/pull?cursor={cursor}")
        assert r.status_code == 200
        assert r.json["reset"] is True
        assert len(r.json["changes"]) == 1  # a full re-pull from the beginning


def test_outdated_protocol_gets_update_answer(client, cadre):
    phone = Phone(client, "cadre1")
    r = phone.push([phone.mutation("create", "visit", new_id(), visit_fields())], protocol=0)
    assert r.status_code == 426
    assert r.json["error"]["code"] == "protocol_outdated"
    assert phone.get("/api/sync/pull?protocol=0").status_code == 426


@pytest.mark.parametrize(
    "body,status,field",
    [
        ("not json", 400, None),
        ({"protocol": 1}, 400, "device_id"),
        ({"protocol": "1", "device_id": "x", "mutations": []}, 400, "protocol"),
        (
            {"protocol": 1, "device_id": "DEVICE", "mutations": [{"op": "create"}]},
            400,
            "mutations[0].mid",
        ),
        (
            {"protocol": 1, "device_id": "DEVICE", "mutations": [{"mid": 1}, {"mid": 1}]},
            400,
            "mutations[1].mid",
        ),
    ],
)
def test_malformed_push_names_the_field(client, cadre, body, status, field):
    phone = Phone(client, "cadre1")
    if isinstance(body, dict) and body.get("device_id") == "DEVICE":
        body["device_id"] = phone.device_id
    data = body if isinstance(body, str) else json.dumps(body)
    r = client.post(
        "/api/sync/push", data=data, headers={**phone.headers, "Content-Type": "application/json"}
    )
    assert r.status_code == status
    assert r.json["error"]["code"] == "malformed"
    if field:
        assert r.json["error"]["field"] == field


def test_oversized_batch_is_refused_whole(client, cadre, app):
    from server.models import Visit

    phone = Phone(client, "cadre1")
    batch = [phone.mutation("create", "visit", new_id(), visit_fields()) for _ in range(501)]
    r = phone.push(batch)
    assert r.status_code == 413 and r.json["error"]["code"] == "batch_too_large"
    assert count(Visit) == 0


def test_gzip_body_accepted_and_bomb_refused(client, cadre):
    phone = Phone(client, "cadre1")
    body = {
        "protocol": 1,
        "device_id": phone.device_id,
        "mutations": [phone.mutation("create", "visit", new_id(), visit_fields())],
    }
    r = client.post(
        "/api/sync/push",
        data=gzip.compress(json.dumps(body).encode()),
        headers={**phone.headers, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200 and r.json["results"][0]["status"] == "applied"
    bomb = gzip.compress(b" " * (3 * 1024 * 1024))
    r = client.post(
        "/api/sync/push",
        data=bomb,
        headers={**phone.headers, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_home_visit_id_number_never_stored_in_clear(client, cadre, app):
    from server.extensions import db
    from server.models import HomeVisit

    phone = Phone(client, "cadre1")
    hid = new_id()
    number = "11010519491231002X"
    r = phone.push(
        [
            phone.mutation(
                "create",
                "home_visit",
                hid,
                {
                    "district_code": "510104",
                    "visited_at": "2026-03-06T15:00:00+08:00",
                    "worker_name": "王某某",
                    "phone": "+86 139 0000 0000",
                    "id_number": number,
                    "amount_cents": 50000,
                },
            )
        ]
    )
    assert r.json["results"][0]["status"] == "applied", r.json
    row = db.session.get(HomeVisit, hid)
    assert row.id_last4 == "002X" and row.phone == "+8613900000000"
    assert len(row.id_hash) == 64 and number not in row.id_hash
    for table in ("home_visits", "audit_log", "mutation_results"):
        dump = json.dumps(
            [
                list(map(str, r))
                for r in db.session.execute(select(db.metadata.tables[table])).all()
            ],
            ensure_ascii=False,
        )
        assert number not in dump and number[:-4] not in dump
    changes, _ = phone.pull_all()
    data = [c for c in changes if c["id"] == hid][0]["data"]
    assert "id_number" not in data and data["id_last4"] == "002X"
    bad = phone.push(
        [
            phone.mutation(
                "create",
                "home_visit",
                new_id(),
                {
                    "district_code": "510104",
                    "visited_at": "2026-03-06T15:00:00+08:00",
                    "worker_name": "李某",
                    "id_number": "110105194912310021",
                },
            )
        ]
    )
    assert bad.json["results"][0]["status"] == "rejected"
    assert bad.json["results"][0]["field"] == "id_number"


def test_outbox_row_written_with_the_batch(client, cadre):
    from server.extensions import db
    from server.models import OutboxMessage

    phone = Phone(client, "cadre1")
    vid, eid = new_id(), new_id()
    phone.push(
        [
            phone.mutation(
                "create",
                "enterprise",
                eid,
                {"name": "成都华兴机械有限公司", "district_code": "510104"},
            ),
            phone.mutation("create", "visit", vid, visit_fields(enterprise_id=eid)),
        ]
    )
    rows = db.session.scalars(select(OutboxMessage)).all()
    assert len(rows) == 1 and rows[0].topic == "dedup"
    assert sorted(map(tuple, rows[0].payload["records"])) == sorted(
        [("enterprise", eid), ("visit", vid)]
    )
    assert rows[0].request_id


def test_uscc_check_character_is_a_warning_not_a_rejection(client, cadre, app):
    from server.extensions import db
    from server.models import Enterprise

    phone = Phone(client, "cadre1")
    good, bad = new_id(), new_id()
    r = phone.push(
        [
            phone.mutation(
                "create",
                "enterprise",
                good,
                {"name": "甲企业", "district_code": "510104", "uscc": "91350100M000100Y43"},
            ),
            phone.mutation(
                "create",
                "enterprise",
                bad,
                {"name": "乙企业", "district_code": "510104", "uscc": "91350100M000100Y44"},
            ),
            phone.mutation(
                "create",
                "enterprise",
                new_id(),
                {"name": "丙企业", "district_code": "510104", "uscc": "12345"},
            ),
        ]
    )
    assert [x["status"] for x in r.json["results"]] == ["applied", "applied", "rejected"]
    assert db.session.get(Enterprise, good).uscc_valid is True
    assert db.session.get(Enterprise, bad).uscc_valid is False


def test_malformed_entry_is_rejected_alone(client, cadre):
    phone = Phone(client, "cadre1")
    good = phone.mutation("create", "visit", new_id(), visit_fields())
    bad_op = phone.mutation("upsert", "visit", new_id(), visit_fields())
    bad_id = phone.mutation("create", "visit", "not-a-uuid", visit_fields())
    extra = {**phone.mutation("create", "visit", new_id(), visit_fields()), "colour": "red"}
    last = phone.mutation("create", "visit", new_id(), visit_fields())
    results = phone.push([good, bad_op, bad_id, extra, last]).json["results"]
    assert [r["status"] for r in results] == [
        "applied",
        "rejected",
        "rejected",
        "rejected",
        "applied",
    ]
    assert [r.get("field") for r in results[1:4]] == ["op", "id", "colour"]
    assert all(r["code"] == "malformed" for r in results[1:4])


def test_pull_is_gzipped_for_clients_that_accept_it(client, cadre):
    phone = Phone(client, "cadre1")
    phone.push(
        [
            phone.mutation("create", "visit", new_id(), visit_fields(notes="长" * 500))
            for _ in range(20)
        ]
    )
    plain = client.get("/api/sync/pull", headers=phone.headers)
    packed = client.get("/api/sync/pull", headers={**phone.headers, "Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert len(packed.data) < len(plain.data) / 3
    assert json.loads(gzip.decompress(packed.data)) == plain.json


def test_records_created_edited_and_deleted_within_one_batch(client, cadre):
    """New records of a batch are written together at its end (sync.versioning.NewRecord):
    later entries of the same batch still read and change them as stored records."""
    from server.extensions import db
    from server.models import AuditEntry, ProblemStageChange, Visit

    create_user("cadre2", "field_cadre", "510104", "WG01")
    phone = Phone(client, "cadre1")
    vid, pid, gone, eid = new_id(), new_id(), new_id(), new_id()
    batch = [
        phone.mutation(
            "create", "enterprise", eid, {"name": "锦江测试机械有限公司", "district_code": "510104"}
        ),
        phone.mutation(
            "create", "visit", vid, visit_fields(enterprise_id=eid, participants=["cadre2"])
        ),
        phone.mutation(
            "create", "problem", pid, {"visit_id": vid, "category": "wages", "description": "欠薪"}
        ),
        phone.mutation("update", "visit", vid, {"workers_met": 30, "notes": "补记"}),
        phone.mutation(
            "update",
            "problem",
            pid,
            {"stage": "government", "stage_note": "企业无力解决"},
            base_version=0,
        ),  # the phone created it: no one else moved it
        phone.mutation("create", "visit", gone, visit_fields()),
        phone.mutation("delete", "visit", gone),
    ]
    answer = phone.push(batch).json
    assert [r["status"] for r in answer["results"]] == ["applied"] * 7
    versions = {r["version"] for r in answer["results"]}
    assert versions == {answer["server_version"]}  # one transaction, one version

    visit = db.session.get(Visit, vid)
    assert (visit.workers_met, visit.notes, visit.enterprise_id) == (30, "补记", eid)
    assert sorted(u.username for u in visit.participants) == ["cadre1", "cadre2"]
    assert visit.field_versions == {} and visit.materials == 0  # the column default
    assert db.session.get(Visit, gone).deleted is True
    stages = db.session.scalars(
        select(ProblemStageChange.to_stage)
        .where(ProblemStageChange.problem_id == pid)
        .order_by(ProblemStageChange.id)
    ).all()
    assert stages == ["enterprise", "government"]
    actions = db.session.execute(
        select(AuditEntry.entity, AuditEntry.action).order_by(AuditEntry.id)
    ).all()
    assert [tuple(a) for a in actions] == [
        ("enterprise", "create"),
        ("visit", "create"),
        ("problem", "create"),
        ("visit", "update"),
        ("problem", "update"),
        ("visit", "create"),
        ("visit", "delete"),
    ]

    other = Phone(client, "cadre2")
    pulled = {c["id"]: c for c in other.pull_all()[0]}
    assert pulled[vid]["data"]["workers_met"] == 30
    assert pulled[vid]["data"]["participants"] == ["cadre1", "cadre2"]
    assert pulled[pid]["data"]["stage"] == "government"
    assert pulled[gone]["deleted"] is True


def test_database_error_in_a_batch_falls_back_to_entry_by_entry(client, cadre, monkeypatch):
    """A database error in the batch's single write (here: another device created the same
    record after this batch read the database) rolls that write back; the batch is then
    applied entry by entry and every entry gets its own answer."""
    import sync.push as push_module
    from server.extensions import db
    from server.models import Visit

    phone, other = Phone(client, "cadre1"), Phone(client, "cadre1")
    shared = new_id()
    assert (
        other.push([other.mutation("create", "visit", shared, visit_fields(notes="先到"))]).json[
            "results"
        ][0]["status"]
        == "applied"
    )
    real_prefetch = push_module._prefetch
    calls = {"n": 0}

    def stale_prefetch(session, mutations):  # noqa: ANN001, ANN202
        calls["n"] += 1
        found = real_prefetch(session, mutations)
        if calls["n"] == 1:  # the first read misses the other device's record
            found[("visit", shared)] = None
        return found

    monkeypatch.setattr(push_module, "_prefetch", stale_prefetch)
    fresh = new_id()
    answer = phone.push(
        [
            phone.mutation("create", "visit", fresh, visit_fields()),
            phone.mutation("create", "visit", shared, visit_fields(notes="后到", workers_met=15)),
        ]
    ).json
    assert calls["n"] == 2
    assert [r["status"] for r in answer["results"]] == ["applied", "applied"]
    assert answer["last_mid"] == 2
    db.session.expire_all()
    assert db.session.get(Visit, fresh) is not None
    merged = db.session.get(Visit, shared)
    assert (merged.notes, merged.workers_met) == ("后到", 15)
    assert db.session.scalar(select(func.count()).select_from(Visit)) == 2
