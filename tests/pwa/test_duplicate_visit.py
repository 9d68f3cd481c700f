"""The duplicate-visit warning, offline, in Chromium at 360x740 (issue 17, item 5).

Cadre A (demo, 张示例) records a visit to a new enterprise and syncs. Cadre B (demo2,
李示例, same district and work group) signs in on another phone, which pulls it, goes
offline and starts a visit to that enterprise: the form shows A's visit (who, when,
which method) and, at 保存, asks whether it is the same meeting. Joining queues an
addition to the participants of A's visit; online, the server has one visit with both.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import time

import pytest

from tests.pwa.conftest import ROOT, _cli
from tests.pwa.test_field_app import open_app, record_visit, sign_in, wait_outbox

pytestmark = pytest.mark.browser


def server_state(fv_server, enterprise_name: str) -> tuple[list[dict], list[dict]]:  # noqa: ANN001
    """Live visits to the enterprise called `enterprise_name`, and live problems, as the
    server has them (the latest version of each record)."""
    rows: dict[tuple[str, str], dict] = {}
    for ch in fv_server.pull_all():
        rows[(ch["entity"], ch["id"])] = ch
    live = [c for c in rows.values() if not c["deleted"]]
    ents = {
        c["id"]
        for c in live
        if c["entity"] == "enterprise" and c["data"]["name"] == enterprise_name
    }
    assert len(ents) == 1, ents
    visits = [c for c in live if c["entity"] == "visit" and c["data"]["enterprise_id"] in ents]
    problems = [c for c in live if c["entity"] == "problem"]
    return visits, problems


def a_records_and_syncs(fv_server, launch, marker: str, name: str) -> str:  # noqa: ANN001
    """Cadre A's phone: a symposium at a new enterprise, synced. Returns the visit's id."""
    ctx = launch(f"dup-a-{marker}")
    page = open_app(ctx, fv_server.url)
    sign_in(page)
    vid = record_visit(page, "symposium", f"{marker} A", new_ent=(name, ""), workers=3)
    wait_outbox(page, 0)
    ctx.close()
    return vid


def start_visit_offline(launch, fv_server, profile: str, user: str, marker: str):  # noqa: ANN001, ANN201
    """A cadre's phone signs in (and pulls), goes offline and starts an interview at the
    enterprise whose name holds `marker`. Returns (context, page, form's visit id)."""
    ctx = launch(profile)
    page = open_app(ctx, fv_server.url)
    sign_in(page, user)
    ctx.set_offline(True)
    page.click("[data-testid=new-visit]")
    page.click("[data-m=interview]")
    page.wait_for_selector("#vf")
    own = page.evaluate("location.hash.split('/')[2]")
    page.fill("[data-testid=ent-search]", marker)
    page.click("#entres button >> nth=0")
    page.wait_for_selector("[data-testid=chosen-ent]")
    return ctx, page, own


def test_warning_offline_then_join_makes_one_visit_with_both(fv_server, launch, shot, marker):  # noqa: ANN001
    name = f"成都{marker}精密机械有限公司"
    a_visit = a_records_and_syncs(fv_server, launch, marker, name)
    ctx, page, own = start_visit_offline(launch, fv_server, f"dup-b-{marker}", "demo2", marker)
    # The warning, with the network off: A's visit, who, when and how.
    warn = page.wait_for_selector("[data-testid=dup-warning]")
    text = warn.inner_text()
    assert "近7天已有1条对该企业的走访记录" in text, text
    row = page.query_selector(f"[data-testid=dup-visit][data-id='{a_visit}']")
    assert row is not None
    row_text = row.inner_text()
    assert "张示例" in row_text and "座谈会" in row_text, row_text
    assert re.search(r"\d\d-\d\d \d\d:\d\d", row_text), row_text
    assert warn.bounding_box()["width"] <= 360
    shot(page, "duplicate-visit-warning")
    page.click("#addprob")
    page.fill(".prob textarea", f"{marker} 食堂卫生差")
    page.click("[data-testid=save]")
    ask = page.wait_for_selector("[data-testid=dup-ask]")
    assert "这是同一次走访吗" in ask.inner_text()
    join = page.query_selector(f"[data-testid=dup-join][data-id='{a_visit}']")
    assert "张示例" in join.inner_text()
    box = join.bounding_box()
    assert box["height"] >= 44 and box["width"] <= 360
    shot(page, "duplicate-visit-question")
    join.click()
    page.wait_for_selector("[data-testid=new-visit]")
    # Queued offline: one entry (the join and its problem), nothing on the server yet.
    wait_outbox(page, 2)
    assert page.evaluate("window.fieldvisit.store.pendingEntries()") == 1
    queued = page.evaluate("window.fieldvisit.store.outboxAll()")
    assert queued[0]["op"] == "update" and queued[0]["id"] == a_visit
    assert queued[0]["fields"] == {"participants_add": ["demo2"]}
    visits, _ = server_state(fv_server, name)
    assert [v["data"]["participants"] for v in visits] == [["demo"]]
    page.goto(fv_server.url + "/#/entries")
    page.wait_for_selector(f"[data-testid=entry][data-id='{a_visit}'][data-state=local]")
    assert not page.query_selector(f"[data-testid=entry][data-id='{own}']")
    ctx.set_offline(False)
    wait_outbox(page, 0)
    visits, problems = server_state(fv_server, name)
    assert [v["id"] for v in visits] == [a_visit]
    assert visits[0]["data"]["participants"] == ["demo", "demo2"]
    assert visits[0]["data"]["method"] == "symposium" and visits[0]["data"]["workers_met"] == 3
    mine = [p for p in problems if marker in p["data"]["description"]]
    assert [p["data"]["visit_id"] for p in mine] == [a_visit]
    # B sees the visit among their entries (我的记录), synced.
    page.goto(fv_server.url + "/#/home")
    page.goto(fv_server.url + "/#/entries")
    page.wait_for_selector(f"[data-testid=entry][data-id='{a_visit}'][data-state=synced]")
    shot(page, "duplicate-visit-joined-entries")
    # Opened from there it is A's record: no delete button for the one who joined.
    page.click(f"[data-testid=entry][data-id='{a_visit}']")
    page.wait_for_selector("#vf")
    assert page.query_selector("#del") is None


def test_a_different_meeting_is_recorded_as_a_second_visit(fv_server, launch, marker):  # noqa: ANN001
    name = f"成都{marker}纺织有限公司"
    a_visit = a_records_and_syncs(fv_server, launch, marker, name)
    ctx, page, own = start_visit_offline(launch, fv_server, f"dup-d-{marker}", "demo2", marker)
    page.wait_for_selector(f"[data-testid=dup-visit][data-id='{a_visit}']")
    page.fill("[data-f=notes]", f"{marker} B")
    page.click("[data-testid=save]")
    page.click("[data-testid=dup-different]")
    page.wait_for_selector("[data-testid=new-visit]")
    wait_outbox(page, 1)
    pushed: list[dict] = []

    def keep(request) -> None:  # noqa: ANN001
        if "/api/sync/push" in request.url and request.post_data_buffer:
            raw = request.post_data_buffer
            if request.headers.get("content-encoding") == "gzip":
                raw = gzip.decompress(raw)
            pushed.extend(json.loads(raw)["mutations"])

    page.on("request", keep)
    ctx.set_offline(False)
    wait_outbox(page, 0)
    # The answer travels with the visit, so the dedup workers keep the two apart
    # (tests/worker/test_visit_kept_apart.py checks the server side).
    sent = [m for m in pushed if m["entity"] == "visit" and m["id"] == own]
    assert sent and sent[0]["fields"].get("separate_from") == [a_visit], sent
    visits, _ = server_state(fv_server, name)
    by_id = {v["id"]: v["data"] for v in visits}
    assert set(by_id) == {a_visit, own}
    assert by_id[a_visit]["participants"] == ["demo"]
    assert by_id[own]["participants"] == ["demo2"] and by_id[own]["method"] == "interview"
    # Back to the form is no answer: the form stays, nothing is saved.
    page.click("[data-testid=new-visit]")
    page.click("[data-m=interview]")
    page.wait_for_selector("#vf")
    page.fill("[data-testid=ent-search]", marker)
    page.click("#entres button >> nth=0")
    warn = page.wait_for_selector("[data-testid=dup-warning]")
    # Now two visits, one of them B's own (marked), and the question names only A's.
    assert len(warn.query_selector_all("[data-testid=dup-visit]")) == 2
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=dup-ask]")
    assert len(page.query_selector_all("[data-testid=dup-join]")) == 1
    page.click("[data-testid=dup-cancel]")
    assert page.query_selector("#vf") and not page.query_selector("[data-testid=dup-ask]")
    assert page.evaluate("window.fieldvisit.store.outboxCount()") == 0


def test_concurrent_joins_by_two_cadres_both_survive(fv_server, launch, marker):  # noqa: ANN001
    env = {**os.environ, "DATA_DIR": str(fv_server.data_dir), "LOG_LEVEL": "WARNING"}
    env["FIELDVISIT_NEW_PASSWORD"] = "demo-2012"
    subprocess.run(
        _cli()
        + ["create-user", "demo3", "--role", "field_cadre", "--name", "王示例"]
        + ["--district", "510104", "--work-group", "WG01"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    name = f"成都{marker}食品有限公司"
    a_visit = a_records_and_syncs(fv_server, launch, marker, name)
    phones = [
        start_visit_offline(launch, fv_server, f"dup-{user}-{marker}", user, marker)
        for user in ("demo2", "demo3")
    ]
    # Both joined offline, each from the version it pulled.
    for _, page, _ in phones:
        page.wait_for_selector(f"[data-testid=dup-visit][data-id='{a_visit}']")
        page.click("[data-testid=save]")
        page.click(f"[data-testid=dup-join][data-id='{a_visit}']")
        page.wait_for_selector("[data-testid=new-visit]")
        wait_outbox(page, 1)
    bases = {
        page.evaluate("window.fieldvisit.store.outboxAll()")[0]["base_version"]
        for _, page, _ in phones
    }
    assert len(bases) == 1  # the same stale version: a full list would drop one of them
    for ctx, _, _ in phones:
        ctx.set_offline(False)
    for _, page, _ in phones:
        wait_outbox(page, 0)
    visits, _ = server_state(fv_server, name)
    assert [v["id"] for v in visits] == [a_visit]
    assert visits[0]["data"]["participants"] == ["demo", "demo2", "demo3"]
    # Each phone converges on both joins with its next pull.
    for _, page, _ in phones:
        page.evaluate("window.fieldvisit.engine.sync('test')")
        wait_participants(page, a_visit, ["demo", "demo2", "demo3"])


def wait_participants(page, visit_id: str, expected: list[str], timeout: float = 20) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = page.evaluate(
            "(id) => window.fieldvisit.store.get('visit', id).then((r) => r.data.participants)",
            visit_id,
        )
        if got == expected:
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"participants on the phone: {got}, expected {expected}")
