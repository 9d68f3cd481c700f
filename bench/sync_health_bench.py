"""Sync-health benchmark: the health page and API with thousands of devices.

Issue 17: "the time the health page takes with 5,000 devices". Builds a fresh database
(SQLite file, then PostgreSQL) with USERS cadres across the 20 districts, DEVICES
devices with a reported state each (a share silent, failing, waiting), then times, as a
city coordinator, GET /sync-health (the page), /api/sync-health and /sync-health.xlsx,
and the dashboard's per-district freshness, in-process (the server's work, no network).
Prints JSON.

    .venv/bin/python bench/sync_health_bench.py [--devices 5000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def build(app, devices: int) -> None:  # noqa: ANN001
    from server.auth import hash_password
    from server.extensions import db
    from server.models import Device, DistrictUnit, User, WorkGroup
    from server.models_health import DeviceHealth

    rng = random.Random(7)
    now = datetime.now(UTC)
    with app.app_context():
        districts = list(db.session.scalars(sa.select(DistrictUnit)))
        groups = list(db.session.scalars(sa.select(WorkGroup)))
        digest = hash_password("bench-pass-1")
        users = []
        for i in range(devices // 2):
            users.append(
                {
                    "username": f"cadre{i}",
                    "display_name": f"干部{i}",
                    "role": "field_cadre",
                    "password_hash": digest,
                    "district_id": districts[i % len(districts)].id,
                    "work_group_id": groups[i % len(groups)].id,
                    "active": True,
                }
            )
        db.session.execute(sa.insert(User), users)
        ids = list(db.session.scalars(sa.select(User.id).where(User.role == "field_cadre")))
        rows, health = [], []
        for n in range(devices):
            did = str(uuid.uuid4())
            rows.append(
                {"id": did, "user_id": ids[n % len(ids)], "name": "Android", "last_mid": 10,
                 "token_hash": uuid.uuid4().hex, "created_at": now, "last_seen_at": now}
            )  # fmt: skip
            ago = timedelta(hours=rng.expovariate(1 / 30))
            health.append(
                {
                    "device_id": did,
                    "reported_at": now - ago,
                    "pending": rng.choice([0, 0, 0, 1, 3, 12]),
                    "oldest_pending_at": now - ago - timedelta(hours=2),
                    "last_error": rng.choice([None] * 8 + ["network", "token_expired"]),
                    "app_version": rng.choice(["2026.03.15", "2026.03.01"]),
                    "storage_used": rng.randrange(1, 50_000_000),
                    "storage_quota": 500_000_000,
                    "persisted": rng.random() < 0.8,
                    "last_push_at": now - ago,
                    "last_pull_at": now - ago,
                    "last_sync_at": now - ago,
                }
            )
        db.session.execute(sa.insert(Device), rows)
        db.session.execute(sa.insert(DeviceHealth), health)
        db.session.commit()
        coord = User(username="coord", display_name="coord", role="city_coordinator",
                     password_hash=digest)  # fmt: skip
        db.session.add(coord)
        db.session.commit()


def timed(client, path: str, runs: int, headers: dict | None = None) -> dict:  # noqa: ANN001
    times, size = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        r = client.get(path, headers=headers or {})
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, (path, r.status_code)
        size = len(r.data)
    return {
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "bytes": size,
    }


def run(url: str, data_dir: str, devices: int, runs: int) -> dict:
    from server.app import create_app

    os.environ.pop("REDIS_URL", None)
    app = create_app(DATABASE_URL=url, DATA_DIR=data_dir, LOG_LEVEL="WARNING", LOG_JSON=False)
    with app.app_context():
        from server.cli import upgrade_database

        upgrade_database()
    build(app, devices)
    client = app.test_client()
    r = client.post("/login", data={"username": "coord", "password": "bench-pass-1"})
    assert r.status_code in (302, 303)
    r = client.post("/api/auth/login", json={"username": "coord", "password": "bench-pass-1"})
    bearer = {"Authorization": f"Bearer {r.json['token']}"}
    out = {
        "page": timed(client, "/sync-health", runs),
        "page_silent_only": timed(client, "/sync-health?status=silent", runs),
        "api": timed(client, "/api/sync-health", runs, bearer),
        "xlsx": timed(client, "/sync-health.xlsx", max(1, runs // 2)),
    }
    with app.app_context():
        from server.extensions import db
        from sync.health import district_freshness

        t0 = time.perf_counter()
        district_freshness(db.session, silent_days=3)
        out["district_freshness_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        db.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {}
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                results["sqlite"] = run(f"sqlite:///{tmp}/bench.db", tmp, args.devices, args.runs)
                continue
            name = f"fv_health_{os.getpid()}"
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
            try:
                url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
                results["postgresql"] = run(url, tmp, args.devices, args.runs)
            finally:
                with admin.connect() as c:
                    c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    print(json.dumps({"benchmark": "sync_health", "devices": args.devices, **results}, indent=2))


if __name__ == "__main__":
    main()
