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
