"""The language switch takes effect at once, everywhere: the app's tab bar, its error
texts, and the web sign-in."""

from __future__ import annotations

import re

import pytest

from tests.pwa.test_field_app import open_app

pytestmark = pytest.mark.browser
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_english_on_the_sign_in_screen_switches_the_tab_bar_and_messages(fv_server, launch, shot):  # noqa: ANN001
    ctx = launch("lang-switch")
    page = open_app(ctx, fv_server.url)
    page.click("#langsw")
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "wrong")
    page.click("#loginf button[type=submit]")
    page.wait_for_function("document.querySelector('#loginerr')?.textContent.trim().length > 0")
    text = page.inner_text("#loginerr")
    assert "Wrong user name or password" in text and not CJK.search(text), text
    page.fill("input[name=password]", "demo-2012")
    page.click("#loginf button[type=submit]")
    page.wait_for_selector("[data-testid=new-visit]")
    tabs = page.inner_text("nav.tabs")
    assert "Home" in tabs and "My entries" in tabs and not CJK.search(tabs), tabs
    shot(page, "home-english-after-sign-in-switch")
    page.goto(fv_server.url + "/#/settings")
    page.click("[data-lang=zh]")
    assert "首页" in page.inner_text("nav.tabs")  # at once, no reload


def test_web_sign_in_has_the_switch(fv_server, launch):  # noqa: ANN001
    ctx = launch("lang-web")
    page = ctx.new_page()
    page.goto(fv_server.url + "/login")
    assert "用户名" in page.inner_text("form")
    page.click("text=English")
    assert "User name" in page.inner_text("form")
    page.fill("input[name=username]", "coordinator")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert "Wrong user name or password" in page.inner_text("[role=alert]")
