"""A masked value sent back never overwrites the real one (issue 13, item 3).

City staff phones pull needy workers masked (王**, 138****1234, no ID digits, hardship
or notes). An edit of such a copy that carries the masked values back unchanged keeps
the stored ones; a masked value that is not the stored one's mask is refused as
`masked_value` and nothing is written. SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from server.identifiers import ric_check_char
from tests.conftest import Phone, create_user

ID_BODY = "51010419800101123"
ID_NUMBER = ID_BODY + ric_check_char(ID_BODY)
FULL = {
    "district_code": "510104",
    "visited_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds"),
    "worker_name": "王小梅",
    "phone": "13812341234",
    "id_number": ID_NUMBER,
    "hardship": "丈夫重病，孩子上学",
    "notes": "每月复诊",
    "amount_cents": 50000,
}


@pytest.fixture
def home_visit(client):
    """A home visit a district cadre recorded; its id."""
    create_user("cadre1", "field_cadre", "510104", "WG01")
    cadre = Phone(client, "cadre1")
    hid = str(uuid.uuid4())
    r = cadre.push([cadre.mutation("create", "home_visit", hid, FULL)])
    assert r.json["results"][0]["status"] == "applied", r.json
    return hid


def _stored(hid: str):
    from server.extensions import db
    from server.models import HomeVisit

    db.session.expire_all()
    return db.session.get(HomeVisit, hid)


def _pulled(phone: Phone, hid: str) -> dict:
    """The record as `phone`'s user gets it: masked for city staff, as sync/pull.py
    serialises it for them (server/privacy.masked_home_visit)."""
    from server.extensions import db
    from server.privacy import sees_home_visit_details
    from sync.records import Reference, serialize

    obj = _stored(hid)
    user = _user(phone)
    data = serialize(
        "home_visit",
        obj,
        Reference.load(db.session),
        mask_personal=not sees_home_visit_details(user),
    )
    return {"id": hid, "version": obj.version, "data": data}


def _user(phone: Phone):
    from server.extensions import db
    from server.models import Device

    return db.session.get(Device, phone.device_id).user


@pytest.mark.parametrize("role", ["city_coordinator", "admin"])
def test_masked_copy_sent_back_unchanged_keeps_the_real_values(client, home_visit, role):
    create_user("city", role)
    city = Phone(client, "city")
    pulled = _pulled(city, home_visit)
    data = pulled["data"]
    assert data["masked"] and data["phone"] == "138****1234" and data["worker_name"] == "王**"
    assert data["hardship"] is None and data["notes"] is None and data["id_last4"] is None
    # What the app sends when the coordinator corrects only the amount: every field of
    # the form, as pulled (and the ID in its last-4 form, as the form shows it).
    fields = {
        k: data[k]
        for k in (
            "district_code",
            "visited_at",
            "worker_name",
            "phone",
            "hardship",
            "notes",
            "amount_cents",
        )
    }
    fields.update(amount_cents=60000, id_number="*" * 14 + ID_NUMBER[-4:])
    r = city.push([city.mutation("update", "home_visit", home_visit, fields, pulled["version"])])
    assert r.json["results"][0]["status"] == "applied", r.json
    h = _stored(home_visit)
    assert h.amount_cents == 60000
    assert (h.worker_name, h.phone, h.hardship, h.notes) == (
        "王小梅",
        "+8613812341234",
        FULL["hardship"],
        FULL["notes"],
    )
    assert h.id_last4 == ID_NUMBER[-4:] and h.id_hash
    from server.extensions import db
    from server.models import AuditEntry

    last = db.session.scalars(
        select(AuditEntry).where(AuditEntry.record_id == home_visit).order_by(AuditEntry.id.desc())
    ).first()
    assert set(last.changes) == {"amount_cents"}  # nothing else was touched


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "139****0000"),  # not this worker's mask
        ("worker_name", "李**"),
        ("id_number", "**************9999"),
    ],
)
def test_a_masked_value_that_is_not_the_stored_ones_is_refused(client, home_visit, field, value):
    create_user("coord", "city_coordinator")
    city = Phone(client, "coord")
    pulled = _pulled(city, home_visit)
    r = city.push(
        [
            city.mutation(
                "update",
                "home_visit",
                home_visit,
                {field: value, "amount_cents": 1},
                pulled["version"],
            )
        ]
    )
    result = r.json["results"][0]
    assert (result["status"], result["code"], result["field"]) == (
        "rejected",
        "masked_value",
        field,
    ), result
    h = _stored(home_visit)
    assert (h.amount_cents, h.phone, h.worker_name, h.id_last4) == (
        50000,
        "+8613812341234",
        "王小梅",
        ID_NUMBER[-4:],
    )


def test_a_new_record_with_a_masked_phone_is_refused(client, home_visit):
    create_user("coord", "city_coordinator")
    city = Phone(client, "coord")
    r = city.push(
        [city.mutation("create", "home_visit", str(uuid.uuid4()), {**FULL, "phone": "138****1234"})]
    )
    assert r.json["results"][0]["code"] == "masked_value", r.json


def test_a_cadre_who_sees_the_details_may_still_clear_them(client, home_visit):
    """The unmasked view's empty hardship is a real edit, not an echo."""
    cadre = Phone(client, "cadre1")
    pulled = _pulled(cadre, home_visit)
    r = cadre.push(
        [cadre.mutation("update", "home_visit", home_visit, {"hardship": None}, pulled["version"])]
    )
    assert r.json["results"][0]["status"] == "applied", r.json
    assert _stored(home_visit).hardship is None
