"""References stay in scope (issue 13, item 4).

A visit's enterprise, a problem's visit and a home visit's visit must be records the
author may write: otherwise the push answers `rejected`, `reference_out_of_scope`, with
the field, and nothing of the entry is stored. Pages show a linked record of another
district only to readers of that district (the visit page of a district head never
shows another district's home visit, its amount or its audit entries). Per link type
and role, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import Phone, create_user, visit_fields
from tests.coordination.conftest import web_login

WHEN = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds")
# WG01 serves 510104 and 510109; WG02 serves 510105.
AUTHORS = {
    "field_cadre": ("510104", "WG01"),
    "group_leader": ("510104", "WG01"),
    "district_head": ("510104", None),
}


def new_id() -> str:
    return str(uuid.uuid4())


def applied(phone: Phone, mutations: list[dict]) -> None:
    r = phone.push(mutations)
    assert [x["status"] for x in r.json["results"]] == ["applied"] * len(mutations), r.json


@pytest.fixture
def other(client):
    """An enterprise and a visit of 510105, recorded there by its own cadre."""
    create_user("cadre_b", "field_cadre", "510105", "WG02")
    phone = Phone(client, "cadre_b")
    ent, visit = new_id(), new_id()
    applied(
        phone,
        [
            phone.mutation(
                "create", "enterprise", ent, {"name": "青羊机械厂", "district_code": "510105"}
            ),
            phone.mutation(
                "create",
                "visit",
                visit,
                visit_fields("510105", enterprise_id=ent, work_group_code="WG02", visited_at=WHEN),
            ),
        ],
    )
    return {"enterprise": ent, "visit": visit}


def _author(client, role: str) -> Phone:
    district, group = AUTHORS[role]
    create_user("author", role, district, group)
    return Phone(client, "author")


def _count(model) -> int:  # noqa: ANN001
    from server.extensions import db

    return db.session.scalar(select(func.count()).select_from(model))


def _rejected(result: dict, field: str) -> None:
    assert result["status"] == "rejected", result
    assert (result["code"], result["field"]) == ("reference_out_of_scope", field), result
    assert field in result["message"]


@pytest.mark.parametrize("role", list(AUTHORS))
def test_a_visit_may_not_point_at_another_districts_enterprise(client, other, role):
    from server.models import Problem, Visit

    phone = _author(client, role)
    visits_before = _count(Visit)
    vid, pid = new_id(), new_id()
    entry = vid
    r = phone.push(
        [
            {
                **phone.mutation(
                    "create",
                    "visit",
                    vid,
                    visit_fields("510104", enterprise_id=other["enterprise"], visited_at=WHEN),
                ),
                "entry": entry,
            },
            {
                **phone.mutation(
                    "create",
                    "problem",
                    pid,
                    {"visit_id": vid, "category": "wages", "description": "欠薪"},
                ),
                "entry": entry,
            },
        ]
    )
    visit_result, problem_result = r.json["results"]
    _rejected(visit_result, "enterprise_id")
    assert problem_result["code"] == "entry_rejected"
    assert problem_result["cause"]["code"] == "reference_out_of_scope"
    # nothing half-written
    assert _count(Visit) == visits_before and _count(Problem) == 0


@pytest.mark.parametrize("role", list(AUTHORS))
def test_an_update_may_not_move_a_link_out_of_scope(client, other, role):
    from server.extensions import db
    from server.models import Visit

    phone = _author(client, role)
    mine, vid = new_id(), new_id()
    applied(
        phone,
        [
            phone.mutation(
                "create", "enterprise", mine, {"name": "锦江食品厂", "district_code": "510104"}
            ),
            phone.mutation(
                "create", "visit", vid, visit_fields("510104", enterprise_id=mine, visited_at=WHEN)
            ),
        ],
    )
    r = phone.push(
        [phone.mutation("update", "visit", vid, {"enterprise_id": other["enterprise"]}, 1)]
    )
    _rejected(r.json["results"][0], "enterprise_id")
    db.session.expire_all()
    assert db.session.get(Visit, vid).enterprise_id == mine
    # an edit that leaves the link as it is still applies
    applied(
        phone, [phone.mutation("update", "visit", vid, {"enterprise_id": mine, "workers_met": 30})]
    )


@pytest.mark.parametrize("role", list(AUTHORS))
def test_a_problem_may_not_hang_on_another_districts_visit(client, other, role):
    from server.models import Problem

    phone = _author(client, role)
    r = phone.push(
        [
            phone.mutation(
                "create",
                "problem",
                new_id(),
                {"visit_id": other["visit"], "category": "wages", "description": "欠薪"},
            )
        ]
    )
    _rejected(r.json["results"][0], "visit_id")
    assert _count(Problem) == 0


@pytest.mark.parametrize("role", list(AUTHORS))
def test_a_home_visit_may_not_hang_on_another_districts_visit(client, other, role):
    from server.models import HomeVisit

    phone = _author(client, role)
    r = phone.push(
        [
            phone.mutation(
                "create",
                "home_visit",
                new_id(),
                {
                    "visit_id": other["visit"],
                    "district_code": "510104",
                    "visited_at": WHEN,
                    "worker_name": "赵春花",
                    "amount_cents": 80000,
                },
            )
        ]
    )
    _rejected(r.json["results"][0], "visit_id")
    assert _count(HomeVisit) == 0


def test_a_work_group_serves_its_districts_and_a_district_head_only_their_own(client):
    """510109 is served by WG01: its cadre may link there; the head of 510104 may not."""
    create_user("cadre_c", "field_cadre", "510109", "WG01")
    there = Phone(client, "cadre_c")
    ent = new_id()
    applied(
        there,
        [
            there.mutation(
                "create", "enterprise", ent, {"name": "金牛纺织", "district_code": "510109"}
            )
        ],
    )
    cadre = _author(client, "field_cadre")
    applied(
        cadre,
        [
            cadre.mutation(
                "create",
                "visit",
                new_id(),
                visit_fields("510104", enterprise_id=ent, visited_at=WHEN),
            )
        ],
    )
    create_user("head", "district_head", "510104")
    head = Phone(client, "head")
    r = head.push(
        [
            head.mutation(
                "create",
                "visit",
                new_id(),
                visit_fields("510104", enterprise_id=ent, visited_at=WHEN),
            )
        ]
    )
    _rejected(r.json["results"][0], "enterprise_id")


def test_the_visit_page_hides_another_districts_linked_data(client, other):
    """A link across districts can still exist (city staff write everywhere; records
    from before the check): the visit page and its JSON show the other district's home
    visit, problem and enterprise only to those who read that district."""
    create_user("coord", "city_coordinator")
    create_user("head_a", "district_head", "510104")
    create_user("cadre_a", "field_cadre", "510104", "WG01")
    cadre = Phone(client, "cadre_a")
    vid = new_id()
    applied(
        cadre,
        [
            cadre.mutation(
                "create",
                "visit",
                vid,
                visit_fields("510104", visited_at=WHEN),
            )
        ],
    )
    coord = Phone(client, "coord")
    hid = new_id()
    applied(
        coord,
        [
            coord.mutation("update", "visit", vid, {"enterprise_id": other["enterprise"]}),
            coord.mutation(
                "create",
                "home_visit",
                hid,
                {
                    "visit_id": vid,
                    "district_code": "510105",
                    "visited_at": WHEN,
                    "worker_name": "欧阳春花",
                    "hardship": "独自抚养两个孩子",
                    "notes": "房租拖欠三个月",
                    "amount_cents": 123456,
                },
            ),
        ],
    )
    web_login(client, "head_a")
    page = client.get(f"/dashboard/visit/{vid}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for secret in ("欧", "1234.56", "独自抚养", "房租", "青羊机械厂", hid):
        assert secret not in html, secret
    data = client.get(f"/api/dashboard/visits/{vid}").get_data(as_text=True)
    assert hid not in data and "123456" not in data
    # the record itself stays out of reach of that head, as before
    assert Phone(client, "head_a").get(f"/api/records/home_visit/{hid}/history").status_code == 404
    # readers of both districts see it all
    web_login(client, "coord")
    html = client.get(f"/dashboard/visit/{vid}").get_data(as_text=True)
    assert "欧***" in html and "1234.56" in html and "青羊机械厂" in html
