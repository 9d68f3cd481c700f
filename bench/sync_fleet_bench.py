"""Fleet benchmark: many phones pushing small batches at once into two web servers.

Issue 15: "500 simulated devices pushing small batches at once against two server
processes on one PostgreSQL". Starts two `fieldvisit serve` processes (gunicorn, as two
hosts behind a proxy would run them) on a fresh PostgreSQL database, signs in DEVICES
phones (one per cadre), and lets them all push at once: each phone sends BATCHES
batches of VISITS visits with 2 problems each, alternating between the two servers, as
fast as the servers answer. Afterwards it checks that every record is stored exactly
once and every device's counter is at its last mutation. Prints JSON: batch latency
p50/p95/max, records/s and visits/s over the whole run.

    .venv/bin/python bench/sync_fleet_bench.py [--devices 500] [--batches 3] [--visits 5]
        [--workers 2 --threads 4]   (per server)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_bench import DISTRICTS, PG_ADMIN, Conn, free_port, percentile  # noqa: E402

BIN = Path(sys.executable).parent
PASSWORD = "bench-pass-1"


def make_users(url: str, data_dir: str, count: int) -> None:
    """`count` field cadres, created in one process (the CLI would start one per user)."""
    env = dict(os.environ, DATABASE_URL=url, DATA_DIR=data_dir, LOG_LEVEL="WARNING")
    script = (
        "import sys\n"
        "from server.app import create_app\n"
        "from server.auth import hash_password\n"
        "from server.extensions import db\n"
        "from server.models import DistrictUnit, User\n"
        "from sqlalchemy import select\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        f"    digest = hash_password({PASSWORD!r})\n"
        "    units = {u.code: u for u in db.session.scalars(select(DistrictUnit))}\n"
        f"    codes = {DISTRICTS!r}\n"
        f"    for i in range({count}):\n"
        "        db.session.add(User(username=f'fleet{i}', display_name=f'fleet{i}',\n"
        "                            role='field_cadre', password_hash=digest,\n"
        "                            district=units[codes[i % len(codes)]]))\n"
        "    db.session.commit()\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True)


def batches_for(device: int, batches: int, visits: int) -> list[list[dict]]:
    district = DISTRICTS[device % len(DISTRICTS)]
    mutations: list[dict] = []
    for n in range(batches * visits):
        vid = str(uuid.uuid4())
        mutations.append(
            {
                "mid": len(mutations) + 1,
                "op": "create",
                "entity": "visit",
                "id": vid,
                "fields": {
                    "method": ["symposium", "interview", "outreach"][n % 3],
                    # a few visits a day over the campaign, as a cadre records them
                    # (many a day are held for review: PLAUSIBLE_SOFT visits_per_day)
                    "visited_at": f"{date(2026, 1, 1) + timedelta(days=n % 300)}T10:00:00+08:00",
                    "district_code": district,
                    "workers_met": 5 + n % 40,
                    "notes": "基准测试记录",
                },
            }
        )
        for k in range(2):
            mutations.append(
                {
                    "mid": len(mutations) + 1,
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
    size = visits * 3
    return [mutations[i : i + size] for i in range(0, len(mutations), size)]


def serve(port: int, env: dict, args: argparse.Namespace) -> subprocess.Popen:
    return subprocess.Popen(
        [BIN / "fieldvisit", "serve", "--host", "127.0.0.1", "--port", str(port)]
        + ["--workers", str(args.workers), "--threads", str(args.threads)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def run(url: str, data_dir: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ, DATA_DIR=data_dir, DATABASE_URL=url, LOG_LEVEL="WARNING")
    env.pop("REDIS_URL", None)
    subprocess.run([BIN / "fieldvisit", "init-db"], env=env, check=True, capture_output=True)
    make_users(url, data_dir, args.devices)
    ports = [free_port(), free_port()]
    servers = [serve(port, env, args) for port in ports]
    try:
        for port in ports:
            deadline = time.time() + 60
            while True:
                try:
                    if Conn(port).call("GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.3)
        phones = []
        for i in range(args.devices):
            conns = [Conn(port) for port in ports]
            status, body, _ = conns[i % 2].call(
                "POST", "/api/auth/login", {"username": f"fleet{i}", "password": PASSWORD}
            )
            assert status == 200, body
            for c in conns:
                c.token = body["token"]
            encoded = [
                gzip.compress(
                    json.dumps(
                        {"protocol": 1, "device_id": body["device_id"], "mutations": m},
                        ensure_ascii=False,
                    ).encode()
                )
                for m in batches_for(i, args.batches, args.visits)
            ]
            phones.append((conns, body["device_id"], encoded))
        records = args.devices * args.batches * args.visits * 3
        start = threading.Barrier(args.devices)
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()

        def phone(p: tuple) -> None:
            conns, _, encoded = p
            start.wait()
            for k, data in enumerate(encoded):
                t0 = time.perf_counter()
                status, body, _ = conns[k % 2].call("POST", "/api/sync/push", data)
                took = time.perf_counter() - t0
                with lock:
                    latencies.append(took)
                    if status != 200 or any(r["status"] != "applied" for r in body["results"]):
                        failures.append(f"{status} {str(body)[:200]}")

        started = time.perf_counter()
        with ThreadPoolExecutor(args.devices) as pool:
            list(pool.map(phone, phones))
        elapsed = time.perf_counter() - started
    finally:
        for s in servers:
            os.killpg(s.pid, 15)
        for s in servers:
            s.wait(timeout=30)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            stored = {
                t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("visits", "problems")
            }
            counters = conn.execute(
                sa.text("SELECT count(*) FROM devices WHERE last_mid = :n"),
                {"n": args.batches * args.visits * 3},
            ).scalar()
    finally:
        engine.dispose()
    visits = args.devices * args.batches * args.visits
    return {
        "batches": len(latencies),
        "records": records,
        "seconds": round(elapsed, 2),
        "records_per_s": round(records / elapsed),
        "visits_per_s": round(visits / elapsed),
        "batch_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "batch_p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "batch_max_ms": round(max(latencies) * 1000, 1),
        "failures": len(failures),
        "first_failures": failures[:3],
        "exactly_once": stored == {"visits": visits, "problems": 2 * visits}
        and counters == args.devices,
        "stored": stored,
        "devices_at_last_mid": counters,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--visits", type=int, default=5, help="visits per batch (+2 problems)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    name = f"fv_fleet_{os.getpid()}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
            result = run(url, tmp, args)
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(
        json.dumps(
            {
                "benchmark": "sync_fleet",
                "backend": "postgresql",
                "servers": 2,
                "devices": args.devices,
                "batches_per_device": args.batches,
                "visits_per_batch": args.visits,
                "server": {"workers": args.workers, "threads": args.threads},
                **result,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
