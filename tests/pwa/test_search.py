"""Polyphonic search on the phone: 长虹桥 is found by `cchq` and `zhq`, offline, and an
enterprise made on the phone is found by its initials before it has synced."""

from __future__ import annotations

import uuid

import pytest

from tests.pwa.test_field_app import open_app, record_visit, sign_in

pytestmark = pytest.mark.browser


def results(page, query: str) -> list[str]:  # noqa: ANN001
    page.fill("[data-testid=ent-search]", query)
    page.wait_for_timeout(300)
    return page.locator("#entres button").all_inner_texts()


def test_every_reading_finds_the_enterprise_offline(fv_server, launch, shot, marker):  # noqa: ANN001
    # Another cadre of the district registered it: it reaches this phone with the reference.
    token = fv_server.login("demo2")
    creds = {"username": "demo2", "password": "demo-2012"}
    device = fv_server.call("POST", "/api/auth/login", creds)
    name = f"成都长虹桥{marker[-4:]}机械有限公司"
    fv_server.call(
        "POST",
        "/api/sync/push",
        {
            "protocol": 1,
            "device_id": device["device_id"],
            "mutations": [
                {
                    "mid": 1,
                    "op": "create",
                    "entity": "enterprise",
                    "id": str(uuid.uuid4()),
                    "fields": {"name": name, "district_code": "510104"},
                }
            ],
        },
        token=device["token"],
    )
    assert token
    ctx = launch("polyphonic")
    page = open_app(ctx, fv_server.url)
    sign_in(page)
    ctx.set_offline(True)
    page.click("[data-testid=new-visit]")
    page.click("[data-m=interview]")
    page.wait_for_selector("#vf")
    for query in ("cdchq", "cdzhq", "cchq", "zhq"):
        assert name in results(page, query), query
    shot(page, "search-polyphonic-zhq")
    # Made on this phone, offline: found by initials before it syncs, every reading too.
    page.click("#vf a[href='#/home']")
    mine = f"重庆银行{marker[-4:]}支行"
    record_visit(page, "symposium", f"{marker} bank", new_ent=(mine, ""))
    page.click("[data-testid=new-visit]")
    page.click("[data-m=interview]")
    page.wait_for_selector("#vf")
    for query in ("cqyh", "zqyh", "cqyx"):
        assert mine in results(page, query), query
    ctx.set_offline(False)
