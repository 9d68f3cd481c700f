"""Needy workers' personal data minimised (issue 13, item 3; docs/privacy.md): masked in
the conflict log, the audit trail, the history API and the visit page (old clear rows
too); pulled unmasked only by the roles that work on it; never in the log; erased from
deleted home visits after the retention period. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from tests.conftest import Phone
from tests.coordination import fixture_data as fx
from tests.coordination.conftest import web_login

NAME, PHONE, HARDSHIP, NOTES = (
    "欧阳小明",
    "13812345678",
    "患尿毒症需长期透析",
    "妻子下岗两个孩子上学",
)
SECRETS = (NAME, PHONE, HARDSHIP, NOTES, "13900001111", "新的困难描述", "欧阳大明")


def _ok(r) -> None:
    assert r.status_code == 200, r.json
    assert all(x["status"] == "applied" for x in r.json["results"]), r.json


def _home_visit(campaign) -> tuple[str, str, Phone]:
    """cadre_a records a home visit on V4; returns (home visit id, visit id, phone)."""
    phone = campaign.phones["cadre_a"]
    hid, vid = str(uuid.uuid4()), campaign.visit_ids["V4"]
    _ok(
        phone.push(
            [
                phone.mutation(
                    "create",
                    "home_visit",
                    hid,
                    {
                        "visit_id": vid,
                        "district_code": fx.A,
                        "visited_at": "2026-03-11T11:00:00+08:00",
                        "worker_name": NAME,
                        "phone": PHONE,
                        "id_number": "510104198001011236",
                        "hardship": HARDSHIP,
                        "notes": NOTES,
                        "amount_cents": 50000,
                    },
                )
            ]
        )
    )
    return hid, vid, phone


def _conflicting_edits(client, campaign, hid: str) -> None:
    """Two phones edit the same home visit from the same version: the second overwrites
    the first, and the conflict log keeps what was overwritten."""
    one = campaign.phones["cadre_a"]
    two = campaign.phones["cadre_a2"]
    changes, _ = two.pull_all()
    base = next(c["version"] for c in changes if c["id"] == hid)
    fields = {"worker_name": "欧阳大明", "phone": "13900001111", "hardship": "新的困难描述"}
    _ok(one.push([one.mutation("update", "home_visit", hid, fields, base_version=base)]))
    back = {"worker_name": NAME, "phone": PHONE, "hardship": HARDSHIP, "notes": NOTES + "。"}
    r = two.push([two.mutation("update", "home_visit", hid, back, base_version=base)])
    assert r.status_code == 200, r.json


def _no_secrets(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} in clear in {where}"


def test_conflict_log_and_audit_are_masked(client, db_session, campaign):
    from server.models import Conflict

    hid, vid, _ = _home_visit(campaign)
    _conflicting_edits(client, campaign, hid)
    # The conflict log as stored: no personal value in clear.
    rows = db_session.query(Conflict).filter_by(record_id=hid).all()
    assert {c.field for c in rows} >= {"worker_name", "phone", "hardship"}
    stored = json.dumps([[c.server_value, c.client_value] for c in rows], ensure_ascii=False)
    _no_secrets(stored, "the conflicts table")
    # The history API (a coordinator and the district's head).
    for user in ("coord", "head_a"):
        phone = Phone(client, user)
        r = phone.get(f"/api/records/home_visit/{hid}/history")
        assert r.status_code == 200
        assert r.json["conflicts"] and r.json["audit"]
        _no_secrets(r.get_data(as_text=True), f"the history API for {user}")
        r = phone.get(f"/api/records/home_visit/{hid}/conflicts")
        _no_secrets(r.get_data(as_text=True), f"the conflicts API for {user}")
    # The visit page: its home visits, audit trail and 冲突 section.
    web_login(client, "coord")
    page = client.get(f"/dashboard/visit/{vid}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    _no_secrets(html, "the visit page")
    assert "欧***" in html  # the home visit is listed, masked as elsewhere
    assert "hardship" in html  # the conflict is shown: its field, not its values
    _no_secrets(client.get(f"/api/dashboard/visits/{vid}").get_data(as_text=True), "visit JSON")


def test_old_clear_rows_are_masked_when_read(client, db_session, campaign):
    """Rows written before the log masked them (clear values) are masked on the way out."""
    from server.models import AuditEntry, Conflict

    hid, vid, _ = _home_visit(campaign)
    db_session.add(
        Conflict(
            entity="home_visit",
            record_id=hid,
            field="worker_name",
            kind="overwritten",
            server_value=NAME,
            client_value="欧阳大明",
        )
    )
    db_session.add(
        Conflict(
            entity="home_visit",
            record_id=hid,
            field="*",
            kind="deleted",
            client_value={"hardship": HARDSHIP, "phone": PHONE, "amount_cents": 100},
        )
    )
    db_session.add(
        AuditEntry(
            entity="home_visit",
            record_id=hid,
            action="update",
            changes={"hardship": [HARDSHIP, "新的困难描述"], "amount_cents": [50000, 60000]},
            source="sync",
            at=datetime.now(UTC),
        )
    )
    db_session.commit()
    phone = Phone(client, "coord")
    r = phone.get(f"/api/records/home_visit/{hid}/history")
    _no_secrets(r.get_data(as_text=True), "the history API")
    conflicts = {c["field"]: c for c in r.json["conflicts"]}
    assert conflicts["worker_name"]["server_value"] == "欧***"
    assert conflicts["*"]["client_value"]["phone"] == "138****5678"
    assert conflicts["*"]["client_value"]["amount_cents"] == 100
    audit = next(a for a in r.json["audit"] if a["action"] == "update")
    assert audit["changes"]["amount_cents"] == [50000, 60000]  # not personal: kept
    assert audit["changes"]["hardship"] == ["***", "***"]
    web_login(client, "coord")
    _no_secrets(client.get(f"/dashboard/visit/{vid}").get_data(as_text=True), "the visit page")


@pytest.mark.parametrize(
    ("user", "full"),
    [
        ("cadre_a", True),
        ("cadre_a2", True),
        ("head_a", True),
        ("leader_a", True),
        ("coord", False),
        ("sup", False),
    ],
)
def test_pull_of_home_visit_details_per_role(client, campaign, user, full):
    hid, _, _ = _home_visit(campaign)
    changes, _ = Phone(client, user).pull_all()
    if not full:
        # City staff's phones hold only their own records (sync/pull.py PullView): the
        # district's home visits reach them as figures on the pages, never on the phone.
        assert hid not in {c["id"] for c in changes}
        _no_secrets(json.dumps(changes, ensure_ascii=False), f"{user}'s pull")
        return
    mine = next(c["data"] for c in changes if c["id"] == hid)
    assert mine["amount_cents"] == 50000 and mine["district_code"] == fx.A
    assert (mine["worker_name"], mine["phone"], mine["hardship"], mine["notes"]) == (
        NAME,
        "+86" + PHONE,  # the server keeps phones in one form
        HARDSHIP,
        NOTES,
    )
    assert mine["id_last4"] == "1236" and not mine.get("masked")


def test_outside_scope_nothing_is_pulled(client, campaign):
    hid, _, _ = _home_visit(campaign)
    changes, _ = Phone(client, "cadre_b").pull_all()
    assert hid not in {c["id"] for c in changes}


def test_database_errors_keep_personal_data_out_of_the_log(app, client, caplog):
    """The engine hides statement parameters, and an unexpected error is logged by its
    class and place, never by its message (PostgreSQL's DETAIL quotes the key's value)."""
    from server.extensions import db
    from server.models import User

    assert db.engine.hide_parameters is True

    def boom():  # noqa: ANN202
        for _ in range(2):
            db.session.add(
                User(username=NAME, display_name=NAME, role="field_cadre", password_hash="x")
            )
            db.session.flush()

    app.add_url_rule("/test-boom", "test_boom", boom)
    with caplog.at_level(logging.INFO):
        r = client.get("/test-boom")
    assert r.status_code == 500
    assert "IntegrityError" in caplog.text
    assert NAME not in caplog.text
    for record in caplog.records:
        assert NAME not in json.dumps(vars(record), default=str, ensure_ascii=False)


def test_deleted_home_visits_lose_personal_fields_after_retention(
    app, client, db_session, campaign
):
    from server.cli import erase_personal_cmd
    from server.models import HomeVisit

    old, _, phone = _home_visit(campaign)
    recent = str(uuid.uuid4())
    _ok(
        phone.push(
            [
                phone.mutation(
                    "create",
                    "home_visit",
                    recent,
                    {
                        "visit_id": campaign.visit_ids["V1"],
                        "district_code": fx.A,
                        "visited_at": "2026-03-02T11:00:00+08:00",
                        "worker_name": NAME,
                        "phone": PHONE,
                        "hardship": HARDSHIP,
                        "amount_cents": 20000,
                    },
                ),
                phone.mutation("delete", "home_visit", old),
                phone.mutation("delete", "home_visit", recent),
            ]
        )
    )
    days = app.config["FV"].HOME_VISIT_RETENTION_DAYS
    db_session.execute(
        update(HomeVisit)
        .where(HomeVisit.id == old)
        .values(updated_at=datetime.now(UTC) - timedelta(days=days + 1))
    )
    db_session.commit()
    result = app.test_cli_runner().invoke(erase_personal_cmd, [])
    assert result.exit_code == 0, result.output
    assert "of 1 home visits" in result.output
    db_session.expire_all()
    gone, kept = db_session.get(HomeVisit, old), db_session.get(HomeVisit, recent)
    assert (
        gone.worker_name,
        gone.phone,
        gone.id_hash,
        gone.id_last4,
        gone.hardship,
        gone.notes,
    ) == (
        "",
        None,
        None,
        None,
        None,
        None,
    )
    assert gone.amount_cents == 50000 and gone.deleted and gone.district_id is not None
    assert kept.worker_name == NAME and kept.hardship == HARDSHIP  # inside the period
    # Idempotent: nothing left to erase.
    assert "of 0 home visits" in app.test_cli_runner().invoke(erase_personal_cmd, []).output
