"""Benchmark of the field app (pwa/) in real headless Chromium against a real server.

Prints one JSON object:
  shell_bytes, shell_gzip_bytes - HTML + JS + CSS of the app shell, before / after gzip
  offline_form_ms  - navigation to a usable new-visit form, offline, CPU throttled
  save_ms          - tap "save" to the entry being in IndexedDB (and the UI back home)
  recording_waits_ms - the app's own waits while recording one visit (form ready + save
                     back home), target <= 1.5 s at CPU x4
  weak_sync_500_ms - 500 queued visits to reach the server over 400 kbit/s, 400 ms RTT,
                     CPU throttled (target <= 6 s at x4); weak_sync_round_with_pull_ms too

Usage: .venv/bin/python bench/pwa_bench.py [--visits 500] [--runs 5] [--cpu 4]
CPU throttling (Chrome DevTools Emulation.setCPUThrottlingRate) is x4 by default: the
cheap Android phones of the field; --cpu 1 measures the machine unthrottled.
Starts its own server (fieldvisit init-db / load-demo / serve) in a temporary DATA_DIR.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PWA = ROOT / "pwa"
CHROMIUM = os.environ.get("FV_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WEAK = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 400_000 / 8,
    "uploadThroughput": 400_000 / 8,
}


def shell_size() -> dict:
    files = [
        PWA / "index.html",
        PWA / "app.css",
        PWA / "sw.js",
        PWA / "sw-shell.js",
        PWA / "sw-classic.js",
        *sorted((PWA / "js").glob("*.js")),
    ]
    raw = sum(f.stat().st_size for f in files)
    packed = sum(len(gzip.compress(f.read_bytes(), 6)) for f in files)
    return {"shell_bytes": raw, "shell_gzip_bytes": packed, "shell_files": len(files)}


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("fieldvisit")
    return (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "from server.cli import main; main()"]
    )


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"}
    for cmd in (["init-db"], ["load-demo"]):
        subprocess.run(cli() + cmd, env=env, cwd=ROOT, check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        cli() + ["serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as res:
                if res.status == 200:
                    return proc, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


def server_count(url: str, marker: str) -> int:
    def call(path: str, body: dict | None = None, token: str | None = None) -> dict:
        req = urllib.request.Request(
            url + path,
            data=json.dumps(body).encode() if body else None,
            method="POST" if body else "GET",
        )
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=60) as res:
            return json.loads(res.read())

    token = call("/api/auth/login", {"username": "demo", "password": "demo-2012"})["token"]
    seen, cursor = {}, None
    while True:
        page = call(
            "/api/sync/pull?limit=2000" + (f"&cursor={cursor}" if cursor else ""), token=token
        )
        for ch in page["changes"]:
            if ch["entity"] == "visit":
                seen[ch["id"]] = ch
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    return sum(
        1 for ch in seen.values() if not ch["deleted"] and marker in (ch["data"].get("notes") or "")
    )


def sign_in(page, url: str) -> None:  # noqa: ANN001
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready]")
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "demo-2012")
    page.click("#loginf button[type=submit]")
    page.wait_for_selector("[data-testid=new-visit]")
    page.wait_for_function(
        "navigator.serviceWorker === undefined || navigator.serviceWorker.controller !== null"
        " || !window.fieldvisit.S.swReg",
        timeout=30000,
    )
    page.wait_for_function(
        "!window.fieldvisit.engine.status.running && window.fieldvisit.engine.status.lastSync"
    )


def bench_offline(p, url: str, runs: int, cpu: float) -> dict:  # noqa: ANN001
    ctx = p.chromium.launch_persistent_context(
        tempfile.mkdtemp(prefix="fv-bench-"),
        executable_path=CHROMIUM,
        args=ARGS,
        viewport={"width": 360, "height": 740},
        bypass_csp=True,  # the CSP refuses eval; Playwright string predicates need it
    )
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        sign_in(page, url)
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        ctx.set_offline(True)
        cdp = ctx.new_cdp_session(page)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": cpu})
        form, saves, save_ui = [], [], []
        for i in range(runs):
            page.goto("about:blank")
            t0 = time.perf_counter()
            page.goto(url + "/#/new")
            page.click("[data-m=symposium]")
            page.wait_for_selector("#vf [data-testid=save]")
            page.wait_for_function("document.activeElement !== null")  # interactive: events handled
            form.append((time.perf_counter() - t0) * 1000)
            page.fill("[data-f=notes]", f"bench offline {i}")
            page.click("[data-step=workers_met][data-d='1']")
            t1 = time.perf_counter()
            page.click("[data-testid=save]")
            page.wait_for_selector("[data-testid=new-visit]")
            save_ui.append((time.perf_counter() - t1) * 1000)
            saves.append(page.evaluate("window.fieldvisit.lastSaveMs"))
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
        return {
            "offline_form_ms": round(statistics.median(form)),
            "offline_form_ms_max": round(max(form)),
            "save_ms": round(statistics.median(saves), 1),
            "save_to_home_ms": round(statistics.median(save_ui)),
            "recording_waits_ms": round(statistics.median(form) + statistics.median(save_ui)),
            "cpu_throttling": cpu,
            "runs": runs,
        }
    finally:
        ctx.close()


def bench_weak_sync(p, url: str, n: int, cpu: float) -> dict:  # noqa: ANN001
    # Service workers are blocked here so every request is the page's own and goes through
    # the emulated network (a worker's Background Sync would bypass the page's throttling).
    ctx = p.chromium.launch_persistent_context(
        tempfile.mkdtemp(prefix="fv-bench-"),
        executable_path=CHROMIUM,
        args=ARGS,
        viewport={"width": 360, "height": 740},
        bypass_csp=True,  # the CSP refuses eval; Playwright string predicates need it
        service_workers="block",
    )
    marker = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        sign_in(page, url)
        ctx.set_offline(True)
        page.evaluate(
            """async ([n, marker]) => {
            const { store } = window.fieldvisit;
            const user = await store.getMeta('user');
            for (let i = 0; i < n; i++) {
              await store.save([{ entity: 'visit', id: crypto.randomUUID(), data: {
                method: ['report', 'symposium', 'interview', 'outreach'][i % 4],
                district_code: user.district_code, work_group_code: user.work_group_code,
                visited_at: new Date(Date.now() - i * 60000).toISOString(), place: 'workshop',
                workers_met: 5 + (i % 20), workers_by_group: { migrant: i % 5, needy: 1 },
                notes: `${marker} 第${i}次走访：职工反映加班费和社保问题。` } }]);
            }
        }""",
            [n, marker],
        )
        queued = page.evaluate("window.fieldvisit.store.outboxCount()")
        pushes = []
        page.on(
            "request",
            lambda r: "/api/sync/push" in r.url and pushes.append(len(r.post_data_buffer or b"")),
        )
        ctx.set_offline(False)
        cdp = ctx.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", WEAK)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": cpu})
        t0 = time.perf_counter()
        # Start the round without awaiting it (evaluate would wait for the pull as well).
        page.evaluate("void window.fieldvisit.engine.sync('bench')")  # what "send now" does
        while page.evaluate("window.fieldvisit.store.outboxCount()") > 0:
            if time.perf_counter() - t0 > 300:
                raise SystemExit("weak-network sync did not finish in 300 s")
            time.sleep(0.05)
        pushed_ms = (time.perf_counter() - t0) * 1000
        page.wait_for_function("!window.fieldvisit.engine.status.running", timeout=300000)
        round_ms = (time.perf_counter() - t0) * 1000
        on_server = server_count(url, marker)
        return {
            "weak_sync_visits": n,
            "weak_sync_queued_mutations": queued,
            "weak_sync_500_ms": round(pushed_ms),
            "weak_sync_round_with_pull_ms": round(round_ms),
            "weak_sync_on_server": on_server,
            "weak_sync_push_requests": len(pushes),
            "weak_sync_push_bytes_gzip": sum(pushes),
            "weak_network": "400 kbit/s down and up, 400 ms RTT",
            "weak_sync_cpu_throttling": cpu,
        }
    finally:
        ctx.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--visits", type=int, default=500)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cpu", type=float, default=4, help="CPU throttling rate (default 4)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    out = shell_size()
    data_dir = Path(tempfile.mkdtemp(prefix="fv-bench-data-"))
    proc, url = start_server(data_dir)
    try:
        with sync_playwright() as p:
            out.update(bench_offline(p, url, args.runs, args.cpu))
            out.update(bench_weak_sync(p, url, args.visits, args.cpu))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)
    out["targets_met"] = {
        "shell_le_150kb": out["shell_bytes"] <= 150 * 1024,
        "weak_sync_500_le_6s": out["weak_sync_500_ms"] <= 6_000,
        "recording_waits_le_1500ms": out["recording_waits_ms"] <= 1_500,
        "all_on_server_once": out["weak_sync_on_server"] == args.visits,
    }
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
