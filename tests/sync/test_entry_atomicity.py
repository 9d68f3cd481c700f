"""Entries are all or nothing: a record created inside an entry (a new enterprise, a home
visit, problems) is judged with the entry, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.conftest import Phone, create_user, visit_fields

VALID_RIC = "11010519491231002X"
BAD_RIC = "110105194912310021"
GOOD_USCC = "91510100MA61R8XXXX"  # shape only: the check character is a warning


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def cadre(app):
    return create_user("cadre1", "field_cadre", "510104", "WG01")


def count(model, **where) -> int:  # noqa: ANN001
    from server.extensions import db

    q = select(func.count()).select_from(model)
    for k, v in where.items():
        q = q.where(getattr(model, k) == v)
    return db.session.scalar(q)


def entry(phone: Phone, *, uscc: str | None = None, ric: str | None = None, phone_no=None):  # noqa: ANN001
    """The mutations the app saves for one entry: [enterprise], visit, problem, [home visit]."""
    vid, eid = new_id(), new_id()
    key = vid
    out = []
    if uscc is not None:
        out.append(
            phone.mutation(
                "create",
                "enterprise",
                eid,
                {"name": "成都示例机械有限公司", "uscc": uscc, "district_code": "510104"},
            )
        )
    vf = visit_fields(enterprise_id=eid) if uscc is not None else visit_fields()
    out.append(phone.mutation("create", "visit", vid, vf))
    out.append(
        phone.mutation(
            "create",
            "problem",
            new_id(),
            {"visit_id": vid, "category": "wages", "description": "欠薪"},
        )
    )
    if ric is not None or phone_no is not None:
        hv = {
            "visit_id": vid,
            "district_code": "510104",
            "visited_at": "2026-03-05T10:20:00+08:00",
            "worker_name": "王某",
            "amount_cents": 50000,
        }
        if ric:
            hv["id_number"] = ric
        if phone_no:
            hv["phone"] = phone_no
        out.append(phone.mutation("create", "home_visit", new_id(), hv))
    for m in out:
        m["entry"] = key
    return out


def test_enterprise_with_bad_credit_code_rejects_its_whole_entry_and_the_fix_goes_through(
    client, cadre
):
    from server.models import Enterprise, MutationResult, Problem, Visit

    phone = Phone(client, "cadre1")
    before = phone.mutation("create", "visit", new_id(), visit_fields(notes="before"))
    bad = entry(phone, uscc="91510100MA61")  # a partial code: refused by the server
    after = phone.mutation("create", "visit", new_id(), visit_fields(notes="after"))
    r = phone.push([before, *bad, after])
    assert r.status_code == 200, r.json
    res = r.json["results"]
    assert [x["status"] for x in res] == ["applied", "rejected", "rejected", "rejected", "applied"]
    ent, visit, problem = res[1:4]
    assert ent["code"] == "invalid" and ent["field"] == "uscc"
    for sibling in (visit, problem):
        assert sibling["code"] == "entry_rejected"
        assert sibling["cause"]["entity"] == "enterprise" and sibling["cause"]["field"] == "uscc"
        assert sibling["cause"]["mid"] == bad[0]["mid"] and sibling["cause"]["id"] == bad[0]["id"]
    # The server keeps nothing of the entry: no visit pointing at a refused enterprise.
    assert count(Enterprise, id=bad[0]["id"]) == 0
    assert count(Visit, id=bad[1]["id"]) == 0 and count(Problem, id=bad[2]["id"]) == 0
    assert count(Visit) == 2 and r.json["last_mid"] == after["mid"]
    assert count(MutationResult) == 5
    # A replay answers the same decisions.
    again = phone.push([before, *bad, after]).json["results"]
    assert [x["original"]["code"] for x in again[1:4]] == ["invalid"] + ["entry_rejected"] * 2
    # The cadre fixes the code: the same records, sent again as creates with new mids.
    fixed = []
    for m in bad:
        phone.mid += 1
        fields = dict(m["fields"], uscc=GOOD_USCC) if m["entity"] == "enterprise" else m["fields"]
        fixed.append({**m, "mid": phone.mid, "fields": fields})
    r = phone.push(fixed)
    assert [x["status"] for x in r.json["results"]] == ["applied"] * 3
    assert count(Visit, id=bad[1]["id"], enterprise_id=bad[0]["id"]) == 1


def test_home_visit_rejected_after_its_visit_rolls_the_entry_back(client, cadre):
    """The visit is applied before the home visit is judged: the entry is undone."""
    from server.models import AuditEntry, HomeVisit, MutationResult, Problem, Visit

    phone = Phone(client, "cadre1")
    good = entry(phone, ric=VALID_RIC)
    bad_ric = entry(phone, ric=BAD_RIC)
    bad_phone = entry(phone, uscc=GOOD_USCC, phone_no="12345")  # refused by the builder
    tail = phone.mutation("create", "visit", new_id(), visit_fields(notes="tail"))
    r = phone.push([*good, *bad_ric, *bad_phone, tail])
    res = r.json["results"]
    statuses = [x["status"] for x in res]
    assert statuses == ["applied"] * 3 + ["rejected"] * 3 + ["rejected"] * 4 + ["applied"]
    assert res[5]["field"] == "id_number" and res[5]["code"] == "invalid"
    assert {x["code"] for x in res[3:5]} == {"entry_rejected"}
    assert res[3]["cause"]["entity"] == "home_visit" and res[3]["cause"]["field"] == "id_number"
    assert res[9]["field"] == "phone"
    assert [x["cause"]["field"] for x in res[6:9]] == ["phone"] * 3
    for m in bad_ric + bad_phone:
        model = {"visit": Visit, "problem": Problem, "home_visit": HomeVisit}.get(m["entity"])
        if model is not None:
            assert count(model, id=m["id"]) == 0, m["entity"]
        assert count(AuditEntry, record_id=m["id"]) == 0, m["entity"]
    assert count(Visit) == 2 and count(HomeVisit) == 1 and count(Problem) == 1
    assert count(MutationResult) == len(res) and r.json["last_mid"] == tail["mid"]
    # The pull carries none of the refused entries' records.
    changes, _ = phone.pull_all()
    ids = {c["id"] for c in changes}
    assert not ids & {m["id"] for m in bad_ric + bad_phone}


def test_a_visit_never_points_at_an_enterprise_the_server_does_not_have(client, cadre):
    """Without entry keys (an older app): the visit itself is refused."""
    from server.models import Visit

    phone = Phone(client, "cadre1")
    eid = new_id()
    ent = phone.mutation(
        "create", "enterprise", eid, {"name": "示例", "uscc": "915101", "district_code": "510104"}
    )
    visit = phone.mutation("create", "visit", new_id(), visit_fields(enterprise_id=eid))
    res = phone.push([ent, visit]).json["results"]
    assert [x["status"] for x in res] == ["rejected", "rejected"]
    assert res[1]["code"] == "enterprise_not_found" and res[1]["field"] == "enterprise_id"
    assert count(Visit) == 0


def test_entry_key_must_be_a_uuid(client, cadre):
    phone = Phone(client, "cadre1")
    m = phone.mutation("create", "visit", new_id(), visit_fields())
    m["entry"] = "not-a-uuid"
    res = phone.push([m]).json["results"]
    assert res[0]["status"] == "rejected" and res[0]["code"] == "malformed"
    assert res[0]["field"] == "entry"
