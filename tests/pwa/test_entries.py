"""Every rejection reaches the cadre: a record created inside an entry is judged with it."""

from __future__ import annotations

import re

import pytest

from tests.pwa.test_field_app import open_app, record_visit, sign_in, wait_entry, wait_outbox

pytestmark = pytest.mark.browser

PARTIAL_USCC = "91510100MA61"  # 12 of 18 characters: the server refuses it
FIXED_USCC = "91510100MA61R8XXXX"


def test_rejected_new_enterprise_rejects_its_entry_and_is_fixed_from_the_phone(
    fv_server, launch, shot, marker
):  # noqa: ANN001
    ctx = launch("bad-enterprise")
    page = open_app(ctx, fv_server.url)
    sign_in(page)
    ctx.set_offline(True)
    name = f"成都{marker}机械有限公司"
    bad = record_visit(
        page,
        "symposium",
        f"{marker} bad enterprise",
        new_ent=(name, PARTIAL_USCC),
        workers=2,
        problem="欠薪三个月",
    )
    good = record_visit(page, "interview", f"{marker} good", ent_query="cdxy", workers=1)
    ctx.set_offline(False)
    wait_outbox(page, 0)
    page.goto(fv_server.url + "/#/home")
    page.wait_for_selector("[data-testid=attention]")
    page.goto(fv_server.url + "/#/entries")
    wait_entry(page, good, "synced")
    entry = wait_entry(page, bad, "error")
    assert "需处理" in entry.inner_text()
    reason = entry.query_selector("[data-testid=reason]")
    assert reason.get_attribute("data-field") == "uscc"
    text = reason.inner_text()
    assert "新建的企业未通过" in text and "统一社会信用代码应为18位" in text, text
    assert not re.search(r"[A-Za-z]{3,}", text), f"English in the Chinese UI: {text}"
    shot(page, "entries-rejected-enterprise")
    # The server kept nothing of the entry: no visit pointing at a refused enterprise.
    changes = [c for c in fv_server.pull_all() if not c["deleted"]]  # tombstones carry no data
    assert not [c for c in changes if c["entity"] == "enterprise" and c["data"].get("name") == name]
    assert not [c for c in changes if c["entity"] == "visit" and c["id"] == bad]
    # The form shows the reason and the enterprise as a new one, its code marked to fix.
    page.click(f"[data-testid=entry][data-id='{bad}']")  # the list may redraw
    page.wait_for_selector("[data-testid=form-reason]")
    assert "统一社会信用代码" in page.inner_text("[data-testid=form-reason]")
    assert page.input_value("[data-f='newEnt.name']") == name
    assert page.input_value("#uscc") == PARTIAL_USCC
    assert "invalid" in (page.get_attribute("#uscc", "class") or "")
    page.wait_for_timeout(2500)  # let the "saved" toast fade for the screenshot
    shot(page, "form-fix-rejected-enterprise")
    page.fill("#uscc", FIXED_USCC)
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=new-visit]")
    wait_outbox(page, 0)
    page.goto(fv_server.url + "/#/entries")
    wait_entry(page, bad, "synced")
    changes = [c for c in fv_server.pull_all() if not c["deleted"]]
    ents = [c for c in changes if c["entity"] == "enterprise" and c["data"].get("name") == name]
    assert len({c["id"] for c in ents}) == 1 and ents[-1]["data"]["uscc"] == FIXED_USCC
    visits = [c for c in changes if c["entity"] == "visit" and c["id"] == bad]
    assert visits and visits[-1]["data"]["enterprise_id"] == ents[-1]["id"]
    problems = [c for c in changes if c["entity"] == "problem" and c["data"].get("visit_id") == bad]
    assert problems and problems[-1]["data"]["description"] == "欠薪三个月"


def test_offline_is_a_neutral_state_counting_entries(fv_server, launch, shot, marker):  # noqa: ANN001
    ctx = launch("offline-state")
    page = open_app(ctx, fv_server.url)
    sign_in(page)
    ctx.set_offline(True)
    for i in range(2):  # each entry is 2-3 mutations: a visit, a problem, a new enterprise
        record_visit(
            page,
            "symposium",
            f"{marker} offline {i}",
            new_ent=(f"成都{marker}{i}号有限公司", "") if i else None,
            workers=1,
            problem="工资拖欠",
        )
    assert page.evaluate("window.fieldvisit.store.outboxCount()") == 5
    page.click("#sendnow")  # a try with no network: still a state, not an error
    page.wait_for_timeout(1500)
    bar = page.locator("[data-testid=syncbar]")
    assert page.inner_text("[data-testid=net]") == "离线"
    assert page.inner_text("[data-testid=waiting]") == "2 条待发送"
    assert "serr" not in (bar.get_attribute("class") or "")
    colour = bar.evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour == "rgb(85, 85, 85)", colour  # the neutral grey, not the error red
    assert "同步出错" not in bar.inner_text()
    shot(page, "syncbar-offline-neutral")
    ctx.set_offline(False)
    wait_outbox(page, 0)
    page.wait_for_function(
        "document.querySelector('[data-testid=waiting]').textContent === '全部已发送'"
    )
