"""Bad input on read endpoints and pages is a 4xx naming the parameter, never a 5xx.

Each case was a 500 once (issue 11, item 7); every case runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, Phone, create_user

HUGE = "100000000000000000000"
PAGED_API = [
    "/api/visits",
    "/api/problems",
    "/api/enterprises",
    "/api/review/candidates",
    "/api/merges",
    "/api/problem-tracker",
    "/api/dashboard/510104",
]
PAGED_PAGES = ["/review", "/problems", "/dashboard/510104"]
DATED_API = [
    "/api/dashboard?from={d}",
    "/api/dashboard?to={d}",
    "/api/evaluation?from={d}",
    "/api/dashboard/510104?from={d}",
    "/api/briefings/city?start={d}",
    "/api/briefings/510104?start={d}",
    "/api/visits?from={d}",
    "/api/visits?to={d}",
]
DATED_PAGES = [
    "/dashboard?from={d}",
    "/dashboard?to={d}",
    "/evaluation?from={d}",
    "/dashboard/510104?from={d}",
    "/briefings/city?start={d}",
    "/briefings/510104?start={d}",
]
BAD_DATES = ["0001-01-01", "9999-12-31", "1000-01-01", "2026-02-30", "x"]


@pytest.fixture
def coordinator(client):
    create_user("coord", "city_coordinator")
    return Phone(client, "coord")


@pytest.fixture
def web(client):
    create_user("webcoord", "city_coordinator")
    r = client.post("/login", data={"username": "webcoord", "password": PASSWORD})
    assert r.status_code == 302
    from flask import g

    g.pop("web_user", None)
    return client


def _named(r, field: str) -> None:
    assert r.status_code == 400, (r.status_code, r.data[:300])
    assert r.json["error"]["code"] == "invalid"
    assert r.json["error"]["field"] == field
    assert r.json["error"]["message"].startswith(f"{field}: ")


@pytest.mark.parametrize("url", PAGED_API)
def test_huge_page_api(coordinator, url):
    _named(coordinator.get(f"{url}?page={HUGE}"), "page")


@pytest.mark.parametrize("url", PAGED_PAGES)
def test_huge_page_pages(web, url):
    r = web.get(f"{url}?page={HUGE}")
    assert r.status_code == 400 and b"page" in r.data


@pytest.mark.parametrize("day", BAD_DATES)
@pytest.mark.parametrize("url", DATED_API)
def test_implausible_dates_api(coordinator, url, day):
    field = url.split("?")[1].split("=")[0]
    _named(coordinator.get(url.format(d=day)), field)


@pytest.mark.parametrize("day", BAD_DATES)
@pytest.mark.parametrize("url", DATED_PAGES)
def test_implausible_dates_pages(web, url, day):
    r = web.get(url.format(d=day))
    assert r.status_code == 400, r.data[:300]


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-01-01",
        "from=2026-01-01T08:00:00",
        "from=2026-01-01T08:00:00%2B08:00",
        "to=2026-12-31",
    ],
)
def test_visit_dates_without_offset(coordinator, query):
    r = coordinator.get(f"/api/visits?{query}")
    assert r.status_code == 200, r.json


@pytest.mark.parametrize(
    "url,field",
    [
        ("/api/enterprises?q=a%00b", "q"),
        ("/api/visits?district=a%00b", "district"),
        ("/api/visits?work_group=a%00b", "work_group"),
        ("/api/merges?record_id=a%00b", "record_id"),
        ("/api/merges?status=a%00b", "status"),
        ("/api/dashboard?group=a%00b", "group"),
        ("/api/problem-tracker?district=a%00b", "district"),
        ("/api/visits?method=x", "method"),
        ("/api/visits?canonical=maybe", "canonical"),
        ("/api/problem-tracker?min_days=-1", "min_days"),
        ("/api/dashboard?tag=nope", "tag"),
        ("/api/dashboard?sort=nope", "sort"),
        ("/api/visits?per_page=0", "per_page"),
        ("/api/visits?page=%C2%B2", "page"),
    ],
)
def test_bad_text_and_choices(coordinator, url, field):
    _named(coordinator.get(url), field)


@pytest.mark.parametrize(
    "url",
    [
        "/api/visits/a%00b",
        "/api/problems/a%00b",
        "/api/records/visit/a%00b/history",
        "/api/records/visit/a%00b/conflicts",
        "/api/dashboard/a%00b",
        "/api/briefings/a%00b",
    ],
)
def test_nul_in_path_is_404(coordinator, url):
    assert coordinator.get(url).status_code == 404


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "42", "null", "true"])
@pytest.mark.parametrize(
    "url", ["/api/spot-checks", "/api/spot-checks/items/1", "/api/review/candidates/1/decision"]
)
def test_non_object_bodies(client, url, body):
    create_user("sup", "admin")
    phone = Phone(client, "sup")
    r = client.post(url, data=body, content_type="application/json", headers=phone.headers)
    assert r.status_code in (400, 404), (r.status_code, r.json)
    assert r.status_code == 404 or r.json["error"]["code"] == "malformed"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"seed": "s", "size": "x"}, "size"),
        ({"seed": "s", "size": 5, "from": "0001-01-01"}, "from"),
        ({"seed": ["s"], "size": 5}, "seed"),
        ({"seed": "a\u0000b", "size": 5}, "seed"),
        ({"seed": "s", "size": 5, "note": {"a": 1}}, "note"),
    ],
)
def test_spot_check_fields(client, body, field):
    create_user("sup", "admin")
    phone = Phone(client, "sup")
    _named(client.post("/api/spot-checks", json=body, headers=phone.headers), field)


def test_conflicts_alias(client):
    import uuid

    from tests.conftest import visit_fields

    create_user("adm", "admin")
    phone = Phone(client, "adm")
    rid = str(uuid.uuid4())
    assert phone.push([phone.mutation("create", "visit", rid, visit_fields())]).status_code == 200
    r = phone.get(f"/api/records/visit/{rid}/conflicts")
    assert r.status_code == 200 and r.json == {"conflicts": []}
    assert phone.get(f"/api/records/visit/{uuid.uuid4()}/conflicts").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        f"/api/spot-checks/items/{HUGE}",
        f"/api/review/candidates/{HUGE}/decision",
        f"/api/merges/{HUGE}/undo",
    ],
)
def test_huge_path_id_is_404(client, url):
    create_user("sup", "admin")
    phone = Phone(client, "sup")
    assert client.post(url, json={}, headers=phone.headers).status_code == 404
