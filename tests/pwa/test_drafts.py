"""Drafts on a slow phone (CPU x4): saving wins over autosave, 放弃 sticks, and a form
nobody touched leaves no draft."""

from __future__ import annotations

import pytest

from tests.pwa.test_field_app import open_app, sign_in

pytestmark = pytest.mark.browser


def slow_phone(page) -> None:  # noqa: ANN001
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})


def drafts(page) -> list[dict]:  # noqa: ANN001
    return page.evaluate("window.fieldvisit.store.listDrafts()")


def tab(page, route: str) -> None:  # noqa: ANN001
    page.click(f"nav.tabs a[data-r={route}]")
    page.wait_for_function(f"document.querySelector('main').dataset.screen === '{route}'")


def test_save_within_the_autosave_window_leaves_no_draft(fv_server, launch, marker):  # noqa: ANN001
    ctx = launch("drafts-race")
    page = open_app(ctx, fv_server.url)
    sign_in(page)
    slow_phone(page)
    ctx.set_offline(True)  # no sync traffic: the race is between autosave and save alone
    delays = [0, 20, 50, 100, 150, 200, 250, 290, 310, 400]
    for i, delay in enumerate(delays):
        page.click("[data-testid=new-visit]")
        page.click("[data-m=interview]")
        page.wait_for_selector("#vf")
        # Typing schedules an autosave 300 ms later; save lands inside or around it.
        page.type("[data-f=notes]", f"{marker} {i}", delay=0)
        if delay:
            page.wait_for_timeout(delay)
        page.click("[data-testid=save]")
        page.wait_for_selector("[data-testid=new-visit]")
    page.wait_for_timeout(1000)  # any late autosave would have landed by now
    tab(page, "entries")
    tab(page, "home")
    assert drafts(page) == []
    page.reload()
    page.wait_for_selector("[data-testid=new-visit]")
    assert drafts(page) == [] and not page.is_visible("[data-discard]")
    assert page.evaluate("window.fieldvisit.store.outboxCount()") == len(delays)


def test_discarded_draft_stays_gone_and_untouched_forms_leave_none(fv_server, launch, shot):  # noqa: ANN001
    ctx = launch("drafts-discard")
    page = open_app(ctx, fv_server.url)
    sign_in(page)
    slow_phone(page)
    # Untouched: a method chosen, then back, or another tab: nothing left behind.
    for leave in ("back", "tab"):
        page.click("[data-testid=new-visit]")
        page.click("[data-m=symposium]")
        page.wait_for_selector("#vf")
        if leave == "back":
            page.click("#vf a[href='#/home']")
            page.wait_for_selector("[data-testid=new-visit]")
        else:
            tab(page, "problems")
            tab(page, "home")
        page.wait_for_timeout(500)
        assert drafts(page) == [], leave
        assert not page.is_visible("[data-discard]")
    # Touched and left: a draft; 放弃 removes it for good, across tab changes and reloads.
    page.click("[data-testid=new-visit]")
    page.click("[data-m=symposium]")
    page.wait_for_selector("#vf")
    page.fill("[data-f=notes]", "写了一半")
    tab(page, "home")
    page.wait_for_selector("[data-discard]")
    assert len(drafts(page)) == 1
    shot(page, "drafts-one-to-discard")
    page.click("[data-discard]")
    page.wait_for_function("!document.querySelector('[data-discard]')")
    for route in ("entries", "settings", "problems", "home"):
        tab(page, route)
    assert drafts(page) == []
    page.reload()
    page.wait_for_selector("[data-testid=new-visit]")
    assert drafts(page) == [] and not page.is_visible("[data-discard]")
    # A draft continued, changed and saved: gone as well.
    page.click("[data-testid=new-visit]")
    page.click("[data-m=interview]")
    page.wait_for_selector("#vf")
    page.fill("[data-f=notes]", "继续写")
    tab(page, "home")
    page.click("[data-discard] + a")
    page.wait_for_selector("#vf")
    assert page.input_value("[data-f=notes]") == "继续写"
    page.fill("[data-f=notes]", "继续写完")
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=new-visit]")
    tab(page, "entries")
    tab(page, "home")
    assert drafts(page) == []
