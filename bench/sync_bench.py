"""Sync benchmark: push, replay and pull over HTTP against the production WSGI server.

Starts `fieldvisit serve` (gunicorn) on a fresh database (SQLite file, then PostgreSQL),
pushes VISITS visits with 2 problems each from DEVICES simulated devices in batches of
BATCH mutations, replays every batch, then pulls everything as a fresh device. Prints
JSON: records/s for push, replay and pull, p50/p95 latency per batch.

    .venv/bin/python bench/sync_bench.py [--visits 20000] [--backends sqlite,postgresql]
        [--workers 4 --threads 4]   (the server as the Dockerfile and compose run it)
        [--pouchdb /tmp/pouch/node_modules]   (PouchDB side by side: bench/pouchdb_anchor.mjs)
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DISTRICTS = [
    "510104",
    "510105",
    "510106",
    "510107",
    "510108",
    "510112",
    "510113",
    "510114",
    "510115",
    "510121",
    "510122",
    "510124",
    "510129",
    "510131",
    "510132",
    "510181",
    "510182",
    "510183",
    "510184",
    "510109",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Conn:
    """A keep-alive HTTP connection speaking JSON."""

    def __init__(self, port: int, token: str | None = None):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, dict, int]:
        """A request; `body` is JSON-encoded, or, given as bytes, sent as gzipped JSON."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if isinstance(body, bytes):
            data = body  # encoded (and gzipped) ahead, as a phone does before it sends
            headers["Content-Encoding"] = "gzip"
        elif body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # the server closed an idle keep-alive connection: reconnect once
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        return response.status, json.loads(raw), len(raw)


def login(port: int, username: str) -> tuple[Conn, str]:
    c = Conn(port)
    status, body, _ = c.call(
        "POST", "/api/auth/login", {"username": username, "password": "bench-pass-1"}
    )
    assert status == 200, body
    c.token = body["token"]
    return c, body["device_id"]


def make_batches(device_index: int, visits: int, batch: int) -> list[list[dict]]:
    # One district: the fresh device that pulls afterwards (its district head) holds
    # every record pushed (city-wide roles hold only their own records on a phone).
    district = DISTRICTS[0]
    mutations = []
    mid = 0
    for n in range(visits):
        vid = str(uuid.uuid4())
        mid += 1
        mutations.append(
            {
                "mid": mid,
                "op": "create",
                "entity": "visit",
                "id": vid,
                "fields": {
                    "method": ["symposium", "interview", "report", "outreach"][n % 4],
                    # a few visits a day over the campaign, as a cadre records them
                    # (many a day are held for review: PLAUSIBLE_SOFT visits_per_day)
                    "visited_at": f"{date(2026, 1, 1) + timedelta(days=n % 300)}T10:00:00+08:00",
                    "district_code": district,
                    "workers_met": 5 + n % 40,
                    "workers_by_group": {"migrant": n % 5},
                    "materials": n % 10,
                    "notes": "基准测试记录",
                },
            }
        )
        for k in range(2):
            mid += 1
            mutations.append(
                {
                    "mid": mid,
                    "op": "create",
                    "entity": "problem",
                    "id": str(uuid.uuid4()),
                    "fields": {
                        "visit_id": vid,
                        "category": ["wages", "housing"][k],
                        "tag": "urgent",
                        "description": "职工反映的问题",
                    },
                }
            )
    return [mutations[i : i + batch] for i in range(0, len(mutations), batch)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_backend(name: str, url: str, data_dir: str, args: argparse.Namespace) -> dict:
    env = dict(
        os.environ,
        DATA_DIR=data_dir,
        DATABASE_URL=url,
        LOG_LEVEL="WARNING",
        FIELDVISIT_NEW_PASSWORD="bench-pass-1",
    )
    env.pop("REDIS_URL", None)
    subprocess.run([BIN / "fieldvisit", "init-db"], env=env, check=True, capture_output=True)
    for i in range(args.devices):
        district = DISTRICTS[0]
        subprocess.run(
            [
                BIN / "fieldvisit",
                "create-user",
                f"bench{i}",
                "--role",
                "field_cadre",
                "--district",
                district,
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    subprocess.run(
        [
            BIN / "fieldvisit",
            "create-user",
            "benchall",
            "--role",
            "district_head",
            "--district",
            DISTRICTS[0],
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [
            BIN / "fieldvisit",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                if Conn(port).call("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        per_device = args.visits // args.devices
        devices = []
        for i in range(args.devices):
            conn, device_id = login(port, f"bench{i}")
            devices.append((conn, device_id, make_batches(i, per_device, args.batch)))
        records = sum(len(m) for _, _, batches in devices for m in batches)

        # The phones encode their batches on their own processors: the bodies are
        # built and gzipped before the clock starts, so this machine's two cores time
        # the server, not the simulated phones' JSON encoding.
        bodies = {
            device_id: [
                gzip.compress(
                    json.dumps(
                        {"protocol": 1, "device_id": device_id, "mutations": m}, ensure_ascii=False
                    ).encode(),
                    5,
                )
                for m in batches
            ]
            for _, device_id, batches in devices
        }

        def drive(device: tuple, replay: bool) -> list[float]:
            conn, device_id, batches = device
            times = []
            for data in bodies[device_id]:
                started = time.perf_counter()
                status, body, _ = conn.call("POST", "/api/sync/push", data)
                times.append(time.perf_counter() - started)
                assert status == 200, body
                expected = "duplicate" if replay else "applied"
                bad = [r for r in body["results"] if r["status"] != expected]
                assert not bad, bad[:3]
            return times

        phases = {}
        for phase, replay in (("push", False), ("replay", True)):
            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                latencies = [
                    t for ts in pool.map(drive, devices, [replay] * len(devices)) for t in ts
                ]
            elapsed = time.perf_counter() - started
            phases[phase] = {
                "records": records,
                "seconds": round(elapsed, 2),
                "records_per_s": round(records / elapsed),
                # a visit with its problems is one PouchDB document: the peers' unit
                "visits_per_s": round(per_device * args.devices / elapsed),
                "batch_p50_ms": round(statistics.median(latencies) * 1000, 1),
                "batch_p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
            }

        conn, _ = login(port, "benchall")
        started = time.perf_counter()
        cursor, pulled, pages, page_times, wire = None, 0, 0, [], 0
        pulled_visits = 0
        while True:
            t0 = time.perf_counter()
            path = f"/api/sync/pull?limit={args.pull_limit}"
            if cursor:
                path += f"&cursor={cursor}"
            status, body, size = conn.call("GET", path)
            page_times.append(time.perf_counter() - t0)
            assert status == 200, body
            pulled += len(body["changes"])
            pulled_visits += sum(1 for c in body["changes"] if c["entity"] == "visit")
            wire += size
            pages += 1
            cursor = body["cursor"]
            if not body["has_more"]:
                break
        elapsed = time.perf_counter() - started
        phases["pull"] = {
            "records": pulled,
            "pages": pages,
            "seconds": round(elapsed, 2),
            "records_per_s": round(pulled / elapsed),
            "visits_per_s": round(pulled_visits / elapsed),
            "page_p50_ms": round(statistics.median(page_times) * 1000, 1),
            "page_p95_ms": round(percentile(page_times, 0.95) * 1000, 1),
            "bytes": wire,
        }
        assert pulled >= records, (pulled, records)
        return {"backend": name, **phases}
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def run_pouchdb(args: argparse.Namespace) -> dict:
    """The PouchDB anchor on the same visits, devices and concurrency (one document per
    visit with its problems), against express-pouchdb in its own node process."""
    script = ROOT / "bench" / "pouchdb_anchor.mjs"
    env = dict(os.environ, NODE_PATH=args.pouchdb)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            ["node", str(script), "server", f"{tmp}/server", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            assert server.stdout is not None and b"listening" in server.stdout.readline()
            out = subprocess.run(
                [
                    "node",
                    str(script),
                    "client",
                    f"http://127.0.0.1:{port}",
                    str(args.visits),
                    str(args.devices),
                    str(args.concurrency),
                    f"{tmp}/client",
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            return json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--visits", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    # The production server as shipped (Dockerfile, docker-compose.yml: 4 gthread
    # workers of 4 threads, the threads keep slow phone uploads from holding a worker).
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--pull-limit", type=int, default=2000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--pouchdb",
        default=os.environ.get("FV_POUCHDB_MODULES", ""),
        help="node_modules holding express, express-pouchdb and pouchdb-node: runs the "
        "PouchDB anchor (bench/pouchdb_anchor.mjs) on the same visits in this invocation",
    )
    args = parser.parse_args()
    results = []
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                results.append(run_backend("sqlite", f"sqlite:///{tmp}/bench.db", tmp, args))
            else:
                name = f"fv_bench_{os.getpid()}"
                admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
                with admin.connect() as c:
                    c.execute(sa.text(f'CREATE DATABASE "{name}"'))
                try:
                    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
                    results.append(run_backend("postgresql", url, tmp, args))
                finally:
                    with admin.connect() as c:
                        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    admin.dispose()
    anchor = run_pouchdb(args) if args.pouchdb else None
    if anchor:
        for r in results:
            r["vs_pouchdb"] = {
                "push_visits_ratio": round(
                    r["push"]["visits_per_s"] / anchor["push"]["visits_per_s"], 2
                ),
                "pull_visits_ratio": round(
                    r["pull"]["visits_per_s"] / anchor["pull"]["visits_per_s"], 2
                ),
            }
    print(
        json.dumps(
            {
                "benchmark": "sync",
                "pouchdb": anchor,
                "visits": args.visits,
                "devices": args.devices,
                "batch": args.batch,
                "concurrency": args.concurrency,
                "server": {"workers": args.workers, "threads": args.threads},
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
