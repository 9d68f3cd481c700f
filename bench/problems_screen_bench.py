"""Benchmark of the field app's 问题跟进 (pwa/js/screen-problems.js) with 500 problems.

Prints one JSON object:
  problems           - open problems in the phone's IndexedDB
  first_screen_ms    - median time from opening the tab (hash change) to the first screen
                       of cards painted, CPU throttled (target <= 300 ms at x4)
  first_screen_ms_max, first_screen_runs_ms - the spread over the runs
  first_screen_cold_ms - the same as the first screen after the app starts (reloaded on
                       home: the records are read from IndexedDB and the list built)
  filter_ms, search_ms - a tag filter and a pinyin-initials search repainting the list
  cards_in_dom       - cards painted on the first screen (the rest come on scrolling)

Usage: .venv/bin/python bench/problems_screen_bench.py [--problems 500] [--runs 7] [--cpu 4]
Starts its own server (fieldvisit init-db / load-demo / serve) in a temporary DATA_DIR,
records the problems for a cadre of 510107 through the sync API (as another phone would),
ages their deadline clocks in the server's database with server/deadlines.py's own
start_clock (so some are red, yellow and blue), runs one reminder beat, then signs the
cadre in at 360x740 in Chromium, lets the app pull everything and measures with
Emulation.setCPUThrottlingRate.

tests/pwa/test_problems_screen.py seeds its data with `seed` below.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pwa_bench import ARGS, CHROMIUM, cli, start_server  # noqa: E402

USER, PASSWORD, DISTRICT, GROUP = "probcadre", "probe-pass-2012", "510107", "WG04"
CATEGORIES = ["employment", "wages", "social_insurance", "safety", "housing", "schooling", "other"]
TAGS = [None, "hope", "urgent", "worry", "resent"]
TOPICS = [
    "拖欠加班费",
    "社保断缴",
    "宿舍漏水",
    "夜班无防护",
    "子女入学难",
    "合同未续签",
    "食堂卫生差",
]
# Enterprises of the district; the first is found by the initials `cdchq` (长 read chang).
ENTERPRISES = ["成都长虹桥鑫源印刷有限公司"] + [
    f"成都{w}机械制造有限公司"
    for w in (
        "金牛 青羊 锦城 天府 蜀都 武侯 西城 北星 东升 华阳 龙泉 新都 "
        "温江 双流 郫县 彭州 邛崃 崇州 大邑 蒲江 金堂 新津 都江 简阳"
    ).split()
]
# Intended colour by problem index: 1 in 10 red, yellow, blue; the rest on schedule.
PLAN = {0: "red", 1: "yellow", 2: "blue"}


def colour_plan(i: int) -> str | None:
    return PLAN.get(i % 10)


def stage_plan(i: int) -> str:
    return "government" if i % 7 == 3 else "enterprise"


def call(url: str, method: str, path: str, body: dict | None = None, token: str | None = None):  # noqa: ANN201
    req = urllib.request.Request(
        url + path, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=120) as res:  # noqa: S310 - local server
        return json.loads(res.read())


def seed(url: str, data_dir: Path, n: int = 500, marker: str | None = None) -> dict:
    """Create the cadre and `n` open problems (one per visit) in 510107; age their clocks;
    run one reminder beat. Returns what was made (ids by index, enterprise per index)."""
    marker = marker or uuid.uuid4().hex[:6]
    env = {**os.environ, "DATA_DIR": str(data_dir), "FIELDVISIT_NEW_PASSWORD": PASSWORD}
    subprocess.run(
        cli() + ["create-user", USER, "--role", "field_cadre", "--district", DISTRICT]
        + ["--work-group", GROUP, "--name", "问题测试干部"],
        env=env, cwd=ROOT, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    login = call(url, "POST", "/api/auth/login", {"username": USER, "password": PASSWORD})
    token, device = login["token"], login["device_id"]
    ent_ids = [str(uuid.uuid4()) for _ in ENTERPRISES]
    muts: list[dict] = []

    def add(op: str, entity: str, rid: str, fields: dict) -> None:
        muts.append({"mid": len(muts) + 1, "op": op, "entity": entity, "id": rid, "fields": fields})

    for eid, name in zip(ent_ids, ENTERPRISES, strict=True):
        add("create", "enterprise", eid, {"name": name, "district_code": DISTRICT})
    now = datetime.now(UTC)
    problems, ents = [], []
    for i in range(n):
        vid, pid = str(uuid.uuid4()), str(uuid.uuid4())
        e = i % len(ENTERPRISES)
        visited = now - timedelta(days=1 + i % 40, hours=i % 9)
        add(
            "create",
            "visit",
            vid,
            {
                "method": "symposium",
                "visited_at": visited.isoformat(),
                "district_code": DISTRICT,
                "work_group_code": GROUP,
                "enterprise_id": ent_ids[e],
                "workers_met": 3,
            },
        )
        fields = {
            "visit_id": vid,
            "category": CATEGORIES[i % len(CATEGORIES)],
            "description": f"{marker} 问题{i:03d}：{TOPICS[i % len(TOPICS)]}",
        }
        if TAGS[i % len(TAGS)]:
            fields["tag"] = TAGS[i % len(TAGS)]
        if stage_plan(i) != "enterprise":
            fields["stage"] = stage_plan(i)
        add("create", "problem", pid, fields)
        problems.append(pid)
        ents.append(ENTERPRISES[e])
    for start in range(0, len(muts), 200):
        answer = call(
            url,
            "POST",
            "/api/sync/push",
            {"protocol": 1, "device_id": device, "mutations": muts[start : start + 200]},
            token,
        )
        bad = [r for r in answer["results"] if r.get("status") not in ("applied", "duplicate")]
        if bad:
            raise RuntimeError(f"push refused: {bad[:3]}")
    plan = {pid: [colour_plan(i), i] for i, pid in enumerate(problems)}
    plan_file = data_dir / "problem-plan.json"
    plan_file.write_text(json.dumps(plan))
    out = subprocess.run(
        [sys.executable, __file__, "--age", str(plan_file)],
        env={**os.environ, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"},
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return {
        "marker": marker,
        "problems": problems,
        "enterprises": ents,
        "token": token,
        "beat": json.loads(out.stdout.strip().splitlines()[-1]),
    }


def age(plan_file: Path) -> dict:
    """In the server's own process setting: start each problem's clock days ago with
    server/deadlines.py (the period its category and tag have), so that its colour today
    is the planned one; then one reminder beat (server/reminders.py)."""
    from server import deadlines, reminders
    from server.app import create_app
    from server.extensions import db
    from server.models import Problem

    plan = json.loads(plan_file.read_text())
    app = create_app()
    with app.app_context():
        rules = deadlines.current_rules(app.config["FV"])
        now = datetime.now(UTC)
        for p in db.session.query(Problem).filter(Problem.id.in_(list(plan))):
            colour, i = plan[p.id]
            d = rules.handling_days(p.stage, p.category, p.tag)
            ago = {
                "red": d + 1 + i % 7,
                "yellow": (d + 1) // 2,
                "blue": max(0, d - 2),
                None: i % 2,
            }[colour]
            started = now - timedelta(days=ago)
            deadlines.start_clock(p, p.stage, started, rules, p.owner_work_group_id)
            # blue: a follow-up was recorded, so it is near but not behind
            p.progress_at = started + timedelta(hours=1) if colour == "blue" else None
        db.session.commit()
        beat = reminders.run_beat(db.session, app.config["FV"])
    return {"created": beat["created"], "open_problems": beat["open_problems"]}


def sign_in(page, url: str) -> None:  # noqa: ANN001
    """Sign the cadre in and wait until every record is pulled."""
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready]")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("#loginf button[type=submit]")
    page.wait_for_selector("[data-testid=new-visit]")
    page.wait_for_function(
        "!window.fieldvisit.engine.status.running && window.fieldvisit.engine.status.lastSync",
        timeout=120000,
    )


OPEN_TAB = """() => new Promise((resolve) => {
  const t0 = performance.now();
  location.hash = '#/problems';
  const done = () => document.querySelector('#main[data-screen=problems] [data-testid=prob-card]');
  // the first frame painted after the cards are in the page
  const painted = () => setTimeout(() => resolve(performance.now() - t0));
  const wait = () => (done() ? requestAnimationFrame(painted) : requestAnimationFrame(wait));
  wait();
})"""

REPAINT = """([sel, value]) => new Promise((resolve) => {
  const el = document.querySelector(sel);
  const list = document.querySelector('#plist');
  const t0 = performance.now();
  const painted = () => setTimeout(() => resolve(performance.now() - t0));
  const seen = new MutationObserver(() => { seen.disconnect(); requestAnimationFrame(painted); });
  seen.observe(list, { childList: true });
  el.value = value;
  el.dispatchEvent(new Event(el.tagName === 'SELECT' ? 'change' : 'input'));
})"""


def measure(page, cdp, runs: int, cpu: float, cold: bool = False) -> dict:  # noqa: ANN001
    """Open the tab `runs` times at CPU x`cpu` (home in between); then a filter and a search.
    `cold`: also open it `runs` times as the first screen after the app starts (a reload
    on home first: nothing of the screen in memory)."""
    times, colds = [], []
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": cpu})
    try:
        for _ in range(runs if cold else 0):
            page.evaluate("location.hash = '#/home'")
            page.reload()
            page.wait_for_selector("body[data-ready]")
            page.wait_for_selector("#main[data-screen=home]")
            page.wait_for_timeout(1500)  # start-up (sync, reference) settles
            colds.append(page.evaluate(OPEN_TAB))
        for _ in range(runs):
            page.evaluate("location.hash = '#/home'")
            page.wait_for_selector("#main[data-screen=home]")
            page.wait_for_timeout(300)
            times.append(page.evaluate(OPEN_TAB))
        cards = page.locator("[data-testid=prob-card]").count()
        page.wait_for_timeout(300)
        filt = page.evaluate(REPAINT, ["[data-pf=tag]", "urgent"])
        page.evaluate(REPAINT, ["[data-pf=tag]", ""])
        search = page.evaluate(REPAINT, ["#pq", "cdchq"])
        page.evaluate(REPAINT, ["#pq", ""])
    finally:
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    cold_figures = (
        {
            "first_screen_cold_ms": round(statistics.median(colds)),
            "first_screen_cold_ms_max": round(max(colds)),
            "first_screen_cold_runs_ms": [round(t) for t in colds],
        }
        if colds
        else {}
    )
    return {
        **cold_figures,
        "first_screen_ms": round(statistics.median(times)),
        "first_screen_ms_max": round(max(times)),
        "first_screen_runs_ms": [round(t) for t in times],
        "filter_ms": round(filt),
        "search_ms": round(search),
        "cards_in_dom": cards,
        "cpu_throttling": cpu,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=500)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--cpu", type=float, default=4, help="CPU throttling rate (default 4)")
    ap.add_argument("--age", type=Path, help=argparse.SUPPRESS)  # internal: see seed()
    args = ap.parse_args()
    if args.age:
        print(json.dumps(age(args.age)))
        return
    from playwright.sync_api import sync_playwright

    data_dir = Path(tempfile.mkdtemp(prefix="fv-bench-data-"))
    proc, url = start_server(data_dir)
    try:
        t0 = time.perf_counter()
        made = seed(url, data_dir, args.problems)
        out: dict = {"seed_s": round(time.perf_counter() - t0, 1), "reminders": made["beat"]}
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                tempfile.mkdtemp(prefix="fv-bench-"),
                executable_path=CHROMIUM,
                args=ARGS,
                viewport={"width": 360, "height": 740},
                locale="zh-CN",
                timezone_id="Asia/Shanghai",
                bypass_csp=True,  # the CSP refuses eval; Playwright string predicates need it
            )
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                sign_in(page, url)
                page.goto(url + "/#/problems")
                page.wait_for_selector("[data-testid=prob-card] .dl")  # the colours arrived
                out["problems"] = page.evaluate(
                    "window.fieldvisit.store.list('problem').then((l) => l.length)"
                )
                cdp = ctx.new_cdp_session(page)
                out.update(measure(page, cdp, args.runs, args.cpu, cold=True))
            finally:
                ctx.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)
    out["targets_met"] = {
        "first_screen_le_300ms": out["first_screen_ms"] <= 300,
        "first_screen_cold_le_300ms": out["first_screen_cold_ms"] <= 300,
    }
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
