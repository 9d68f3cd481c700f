"""A phone with a lot on it (issue 15, item 4): the field app in real headless Chromium
against a real server, on a throttled phone.

Prints one JSON object:
  first_sync_ms        - sign-in tapped to the last pull page stored, for a fresh phone
                         whose scope holds --server-records records, at 400 kbit/s both
                         ways / 400 ms latency (CDP Network.emulateNetworkConditions) and
                         CPU xN (Emulation.setCPUThrottlingRate); target <= 30 s
  first_sync_pull_pages, first_sync_pull_bytes (on the wire), first_sync_wire_bytes (every
                         request of the round), pull_content_encoding
  idb_fill_records_per_s - records written per second by Store.applyPull, pages of 1,000
                         synthetic enterprises / visits / problems, CPU throttled, until
                         the phone holds --phone-records records
  home_ms, entries_ms  - the home screen and 我的记录 rendered (until the next frame)
                         with --phone-records records stored, median of --runs
  search_ms            - a query typed in the visit form's enterprise search to the results
                         shown (the enterprise list loaded), median over queries and runs;
                         search_cold_ms: typed as soon as the form shows (list loading)
Targets (home, 我的记录, search) <= 100 ms at CPU x4.

Usage: .venv/bin/python bench/pwa_big_bench.py [--server-records 10000]
       [--phone-records 50000] [--runs 5] [--cpu 4]
Starts its own server (fieldvisit init-db / load-demo / serve) in a temporary DATA_DIR;
the records are pushed over HTTP by five other cadres of the demo cadre's district
(510104), three visits a day each over the campaign (2026-01 to 2026-11).
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pwa_bench import ARGS, CHROMIUM, WEAK, cli  # noqa: E402
from server.demo import _FORMS, _INDUSTRY, _TRADE  # noqa: E402
from sync.pinyin import initials, initials_any  # noqa: E402

DISTRICT = "510104"
PASSWORD = "bench-pass-1"
AUTHORS = 5
PLACES = ["锦江", "春熙", "盐市口", "牛市口", "东大", "合江亭", "水井坊", "督院", "莲新", "沙河"]
QUERIES = ["机械", "华兴电子", "cdjx", "hxdz", "锦江物流", "tfsp"]


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
        "FIELDVISIT_NEW_PASSWORD": PASSWORD,
    }
    env.pop("REDIS_URL", None)
    for cmd in (["init-db"], ["load-demo"]):
        subprocess.run(cli() + cmd, env=env, cwd=ROOT, check=True, capture_output=True)
    for i in range(AUTHORS):
        subprocess.run(
            cli()
            + ["create-user", f"big{i}", "--role", "field_cadre", "--district", DISTRICT]
            + ["--work-group", "WG01"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
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


def call(url: str, path: str, body: object = None, token: str | None = None) -> dict:
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body, ensure_ascii=False).encode() if body is not None else None,
        method="POST" if body is not None else "GET",
    )
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=120) as res:
        return json.loads(res.read())


def ent_name(rng: random.Random, n: int) -> str:
    return (
        f"{rng.choice(PLACES)}{rng.choice(_TRADE)}{rng.choice(_INDUSTRY)}"
        f"{'' if n % 3 else '第' + str(n % 97) + '分厂'}{rng.choice(_FORMS)}"
    )


def seed_server(url: str, records: int) -> dict:
    """Push `records` records (a tenth enterprises, the rest visits with one problem each)
    as AUTHORS cadres of the district, each from a device of their own."""
    rng = random.Random(15)
    n_ent = records // 10
    n_visits = (records - n_ent) // 2
    authors = []
    for i in range(AUTHORS):
        ans = call(url, "/api/auth/login", {"username": f"big{i}", "password": PASSWORD})
        authors.append({"token": ans["token"], "device": ans["device_id"], "muts": []})
    ent_ids = [str(uuid.uuid4()) for _ in range(n_ent)]
    for n, eid in enumerate(ent_ids):
        authors[0]["muts"].append(
            {
                "entity": "enterprise",
                "id": eid,
                "fields": {
                    "name": ent_name(rng, n),
                    "district_code": DISTRICT,
                    "address": f"锦江区示例路{n + 1}号",
                    "type_tags": ["sme"],
                    "head_count": 20 + n % 500,
                },
            }
        )
    for n in range(n_visits):
        a = authors[n % AUTHORS]
        k = n // AUTHORS  # this author's k-th visit: three a day from 2026-01-01
        day = date(2026, 1, 1) + timedelta(days=(k // 3) % 330)
        vid = str(uuid.uuid4())
        a["muts"].append(
            {
                "entity": "visit",
                "id": vid,
                "fields": {
                    "method": ["symposium", "interview", "report", "outreach"][n % 4],
                    "visited_at": f"{day}T{9 + 2 * (k % 3):02d}:00:00+08:00",
                    "district_code": DISTRICT,
                    "work_group_code": "WG01",
                    "enterprise_id": ent_ids[n % n_ent],
                    "place": "workshop",
                    "workers_met": 5 + n % 40,
                    "workers_by_group": {"migrant": n % 5, "needy": n % 2},
                    "materials": n % 10,
                    "notes": f"第{n}次走访：职工反映加班费和社保问题。",
                },
            }
        )
        a["muts"].append(
            {
                "entity": "problem",
                "id": str(uuid.uuid4()),
                "fields": {
                    "visit_id": vid,
                    "category": ["wages", "housing", "safety"][n % 3],
                    "tag": "urgent",
                    "description": "职工反映的问题（基准测试）",
                },
            }
        )
    done = 0
    for a in authors:
        muts = a["muts"]
        for mid, m in enumerate(muts, 1):
            m.update(mid=mid, op="create")
        for i in range(0, len(muts), 200):
            ans = call(
                url,
                "/api/sync/push",
                {"protocol": 1, "device_id": a["device"], "mutations": muts[i : i + 200]},
                a["token"],
            )
            bad = [r for r in ans["results"] if r["status"] not in ("applied", "duplicate")]
            if bad:
                raise SystemExit(f"push refused: {bad[:3]}")
            done += len(ans["results"])
    return {"server_records_pushed": done, "server_enterprises": n_ent, "server_visits": n_visits}


def new_context(p):  # noqa: ANN001, ANN201
    # Service workers blocked: every request is the page's own and goes through the
    # emulated network (as bench/pwa_bench.py's weak-network sync).
    return p.chromium.launch_persistent_context(
        tempfile.mkdtemp(prefix="fv-bench-"),
        executable_path=CHROMIUM,
        args=ARGS,
        viewport={"width": 360, "height": 740},
        bypass_csp=True,  # the CSP refuses eval; Playwright string predicates need it
        service_workers="block",
    )


def first_sync(page, cdp, url: str, cpu: float) -> dict:  # noqa: ANN001
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready]")
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "demo-2012")
    wire: dict[str, dict] = {}
    cdp.on(
        "Network.responseReceived",
        lambda e: wire.setdefault(e["requestId"], {}).update(
            url=e["response"]["url"],
            enc={k.lower(): v for k, v in e["response"]["headers"].items()}.get(
                "content-encoding", ""
            ),
        ),
    )
    cdp.on(
        "Network.loadingFinished",
        lambda e: wire.setdefault(e["requestId"], {}).update(bytes=e["encodedDataLength"]),
    )
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", WEAK)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": cpu})
    t0 = time.perf_counter()
    page.click("#loginf button[type=submit]")
    page.wait_for_function(
        "window.fieldvisit.engine.status.lastSync && !window.fieldvisit.engine.status.running",
        timeout=600_000,
        polling=100,
    )
    ms = (time.perf_counter() - t0) * 1000
    cdp.send(
        "Network.emulateNetworkConditions",
        {**WEAK, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    time.sleep(0.5)  # the last loadingFinished events
    pulls = [w for w in wire.values() if "/api/sync/pull" in w.get("url", "")]
    held = page.evaluate("window.fieldvisit.store.list().then((l) => l.length)")
    return {
        "first_sync_ms": round(ms),
        "first_sync_records_on_phone": held,
        "first_sync_pull_pages": len(pulls),
        "first_sync_pull_bytes": sum(w.get("bytes", 0) for w in pulls),
        "first_sync_wire_bytes": sum(w.get("bytes", 0) for w in wire.values()),
        "pull_content_encoding": sorted({w.get("enc", "") for w in pulls}),
    }


def synthetic_pages(templates: dict, have: int, want: int, me: dict) -> list[list[dict]]:
    """Enterprises, visits (a few a day of them the demo cadre's own) and problems shaped
    like the pulled ones, until the phone holds `want` records."""
    rng = random.Random(4)
    add = max(0, want - have)
    n_ent = add // 5
    n_visits = (add - n_ent) // 2
    n_prob = add - n_ent - n_visits
    version = 10_000_000
    changes = []

    def change(entity: str, data: dict) -> dict:
        nonlocal version
        version += 1
        return {
            "entity": entity,
            "id": data["id"],
            "version": version,
            "deleted": False,
            "data": data,
        }

    ents = []
    for n in range(n_ent):
        name = ent_name(rng, n + 100_000)
        d = {
            **templates["enterprise"],
            "id": str(uuid.uuid4()),
            "name": name,
            "initials": initials(name),
            "initials_any": initials_any(name),
            "uscc": None,
        }
        ents.append(d["id"])
        changes.append(change("enterprise", d))
    visits = []
    for n in range(n_visits):
        mine = n % 40 == 0  # 1 in 40: about 2 a day of the demo cadre's own over a year
        day = date(2026, 1, 1) + timedelta(days=n % 330)
        author = me if mine else {"id": 100_000 + n % 300, "username": f"other{n % 300}"}
        d = {
            **templates["visit"],
            "id": str(uuid.uuid4()),
            "visited_at": f"{day}T{8 + n % 9:02d}:30:00+08:00",
            "enterprise_id": ents[n % n_ent],
            "created_by": author["id"],
            "participants": [author["username"]],
            "workers_met": 3 + n % 30,
            "canonical_id": None,
        }
        visits.append(d["id"])
        changes.append(change("visit", d))
    for n in range(n_prob):
        d = {
            **templates["problem"],
            "id": str(uuid.uuid4()),
            "visit_id": visits[n % n_visits],
            "stage": "closed" if n % 3 else "enterprise",
        }
        changes.append(change("problem", d))
    rng.shuffle(changes)
    for i, ch in enumerate(changes):
        ch["version"] = 10_000_000 + i
    return [changes[i : i + 1000] for i in range(0, len(changes), 1000)]


def fill_phone(page, want: int) -> dict:  # noqa: ANN001
    info = page.evaluate(
        """async () => {
        const { store } = window.fieldvisit;
        const all = await store.list();
        const pick = (e) => all.find((r) => r.entity === e && r.known)?.data;
        return { have: all.length, user: await store.getMeta('user'),
          cursor: await store.getMeta('cursor'), last_mid: await store.getMeta('server_last_mid'),
          templates: { enterprise: pick('enterprise'), visit: pick('visit'),
            problem: pick('problem') } };
    }"""
    )
    me = {"id": info["user"]["id"], "username": info["user"]["username"]}
    pages = synthetic_pages(info["templates"], info["have"], want, me)
    spent = 0.0
    wall0 = time.perf_counter()
    for changes in pages:
        spent += page.evaluate(
            """async ([changes, cursor, lastMid]) => {
            const t0 = performance.now();
            await window.fieldvisit.store.applyPull(
              { changes, cursor, last_mid: lastMid, has_more: true });
            return performance.now() - t0;
        }""",
            [changes, info["cursor"], info["last_mid"]],
        )
    wall = time.perf_counter() - wall0
    written = sum(len(c) for c in pages)
    held = page.evaluate("window.fieldvisit.store.list().then((l) => l.length)")
    return {
        "phone_records": held,
        "idb_fill_written": written,
        "idb_fill_pages": len(pages),
        # None when the first sync already brought --phone-records (nothing to fill)
        "idb_fill_records_per_s": round(written / (spent / 1000)) if spent else None,
        "idb_fill_wall_s": round(wall, 1),
    }


RENDER = """async (route) => {
  const { render } = await import('/js/router.js');
  history.replaceState(null, '', '#/' + route);
  const t0 = performance.now();
  await render();
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  return [performance.now() - t0, document.querySelectorAll('#main [data-testid=entry]').length];
}"""

SEARCH = """async ([q, cold]) => {
  const box = document.querySelector('#entq');
  const res = document.querySelector('#entres');
  if (!cold) await window.fieldvisit.S.entLoading;
  res.innerHTML = '';
  const t0 = performance.now();
  const shown = new Promise((resolve) => {
    const mo = new MutationObserver(() => {
      if (res.children.length) { mo.disconnect(); resolve(); }
    });
    mo.observe(res, { childList: true });
  });
  box.value = q;
  box.dispatchEvent(new Event('input', { bubbles: true }));
  await shown;
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  return [performance.now() - t0, res.children.length];
}"""


def screens(page, cdp, runs: int, cpu: float) -> dict:  # noqa: ANN001
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": cpu})
    out: dict = {}
    for route, key in (("home", "home"), ("entries", "entries")):
        times, shown = [], 0
        for _ in range(runs + 1):  # the first run warms the code, not counted
            page.evaluate(RENDER, "settings")
            ms, shown = page.evaluate(RENDER, route)
            times.append(ms)
        out[f"{key}_ms"] = round(statistics.median(times[1:]))
        out[f"{key}_ms_max"] = round(max(times[1:]))
        out[f"{key}_rows"] = shown
    warm, cold, hits = [], [], {}
    for r in range(runs):
        page.evaluate("location.hash = '#/new'")
        page.wait_for_selector("[data-m=symposium]")
        page.click("[data-m=symposium]")
        page.wait_for_selector("#entq")
        ms, _ = page.evaluate(SEARCH, [QUERIES[r % len(QUERIES)], True])
        cold.append(ms)
        for q in QUERIES:
            ms, n = page.evaluate(SEARCH, [q, False])
            warm.append(ms)
            hits[q] = n
        page.evaluate("location.hash = '#/home'")
        page.wait_for_selector("[data-testid=new-visit]")
    out["search_ms"] = round(statistics.median(warm))
    out["search_ms_max"] = round(max(warm))
    out["search_cold_ms"] = round(statistics.median(cold))
    out["search_hits"] = hits
    out["search_enterprises"] = page.evaluate("window.fieldvisit.S.entList.length")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server-records", type=int, default=10_000)
    ap.add_argument("--phone-records", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cpu", type=float, default=4, help="CPU throttling rate (default 4)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    data_dir = Path(tempfile.mkdtemp(prefix="fv-bench-data-"))
    proc, url = start_server(data_dir)
    out: dict = {"cpu_throttling": args.cpu, "weak_network": "400 kbit/s down and up, 400 ms RTT"}
    try:
        t0 = time.perf_counter()
        out.update(seed_server(url, args.server_records))
        out["server_seed_s"] = round(time.perf_counter() - t0, 1)
        print(f"seeded {out['server_records_pushed']} records", file=sys.stderr)
        with sync_playwright() as p:
            ctx = new_context(p)
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                cdp = ctx.new_cdp_session(page)
                out.update(first_sync(page, cdp, url, args.cpu))
                print(f"first sync {out['first_sync_ms']} ms", file=sys.stderr)
                ctx.set_offline(True)  # the phone's own data only from here on
                cdp.send("Emulation.setCPUThrottlingRate", {"rate": args.cpu})
                out.update(fill_phone(page, args.phone_records))
                print(f"filled to {out['phone_records']}", file=sys.stderr)
                out.update(screens(page, cdp, args.runs, args.cpu))
                cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
            finally:
                ctx.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)
    out["runs"] = args.runs
    out["targets_met"] = {
        "first_sync_le_30s": out["first_sync_ms"] <= 30_000,
        "home_le_100ms": out["home_ms"] <= 100,
        "entries_le_100ms": out["entries_ms"] <= 100,
        "search_le_100ms": out["search_ms"] <= 100,
    }
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
