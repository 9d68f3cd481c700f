"""API_PAGE_MAX caps every API list page: the default one too, and per_page up to it."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Phone, create_user


@pytest.fixture
def phone(app, client) -> Phone:
    create_user("cadre1", "field_cadre", "510104", "WG01")
    phone = Phone(client, "cadre1")
    answer = phone.push(
        [
            phone.mutation(
                "create",
                "enterprise",
                str(uuid.uuid4()),
                {"name": f"成都第{n}机械有限公司", "district_code": "510104"},
            )
            for n in range(7)
        ]
    )
    assert [r["status"] for r in answer.json["results"]] == ["applied"] * 7
    return phone


def page_max(app, most: int) -> None:
    settings = app.config["FV"]
    app.config["FV"] = type(settings)(dict(settings.values, API_PAGE_MAX=most))


def test_the_setting_caps_the_default_page(app, phone) -> None:
    page_max(app, 3)
    page = phone.get("/api/enterprises")
    assert page.status_code == 200, page.json
    assert (page.json["per_page"], len(page.json["items"]), page.json["total"]) == (3, 3, 7)
    last = phone.get("/api/enterprises?page=3").json
    assert len(last["items"]) == 1


@pytest.mark.parametrize("asked", [1, 2, 3])
def test_per_page_up_to_the_setting_is_accepted(app, phone, asked: int) -> None:
    page_max(app, 3)
    page = phone.get(f"/api/enterprises?per_page={asked}")
    assert page.status_code == 200, page.json
    assert page.json["per_page"] == asked and len(page.json["items"]) == asked


def test_per_page_above_the_setting_names_the_parameter(app, phone) -> None:
    page_max(app, 3)
    page = phone.get("/api/enterprises?per_page=4")
    assert page.status_code == 400
    assert "per_page" in str(page.json)


def test_the_default_page_below_the_setting_is_unchanged(app, phone) -> None:
    page_max(app, 200)
    page = phone.get("/api/enterprises")
    assert page.json["per_page"] == 50 and len(page.json["items"]) == 7
    assert phone.get("/api/enterprises?per_page=200").status_code == 200


def test_the_problem_tracker_and_district_apis_follow_the_setting(app, client) -> None:
    from tests.conftest import visit_fields

    create_user("cadre2", "field_cadre", "510104", "WG01")
    cadre = Phone(client, "cadre2")
    visits = [str(uuid.uuid4()) for _ in range(5)]
    mutations = [cadre.mutation("create", "visit", v, visit_fields()) for v in visits]
    mutations += [
        cadre.mutation(
            "create",
            "problem",
            str(uuid.uuid4()),
            {"visit_id": v, "category": "wages", "description": "工资问题", "tag": "urgent"},
        )
        for v in visits
    ]
    answer = cadre.push(mutations)
    assert {r["status"] for r in answer.json["results"]} == {"applied"}, answer.json
    create_user("coord1", "city_coordinator")
    coord = Phone(client, "coord1")
    page_max(app, 3)
    tracker = coord.get("/api/problem-tracker")
    assert tracker.status_code == 200, tracker.json
    assert len(tracker.json["items"]) == 3 and tracker.json["per_page"] == 3
    assert len(coord.get("/api/problem-tracker?per_page=2").json["items"]) == 2
    assert coord.get("/api/problem-tracker?per_page=4").status_code == 400
    period = "from=2026-01-01&to=2026-12-31"
    district = coord.get(f"/api/dashboard/510104?{period}")
    assert district.status_code == 200, district.json
    assert len(district.json["visits"]) == 3 and district.json["total"] == 5
