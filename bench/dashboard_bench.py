"""Benchmark: the city dashboard and an XLSX export over 200,000 visits.

    .venv/bin/python bench/dashboard_bench.py [--visits 200000] [--no-pg] [--repeat 3]

Bulk-inserts fictional data with SQLAlchemy Core executemany into a fresh SQLite file
(and, when reachable, a PostgreSQL database created and dropped here), then times:
- the dashboard (every district's row, as /api/dashboard computes it) without and with
  a work-group filter, and the weekly series; best of --repeat runs after one warm-up;
- an XLSX export of the visits (write-only openpyxl to a temporary file) for about a
  quarter of the visits and for all of them: wall time, and peak Python memory traced
  by tracemalloc in a separate run (tracing slows the export, so it is not timed).
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
START = date(2026, 3, 1)
DAYS = 280


def generate(session, n_visits: int, seed: int = 11) -> dict[str, int]:  # noqa: ANN001
    """Users, enterprises, visits, participants, problems, home visits: Core executemany."""
    from server.models import (
        ENTERPRISE_TYPE_TAGS,
        FOCUS_GROUPS,
        PROBLEM_CATEGORIES,
        PROBLEM_STAGES,
        PROBLEM_TAGS,
        VISIT_METHODS,
        DistrictUnit,
        Enterprise,
        HomeVisit,
        Problem,
        User,
        Visit,
        WorkGroup,
        visit_participants,
    )

    rng = random.Random(seed)
    now = datetime.now(UTC)
    districts = [d.id for d in session.scalars(sa.select(DistrictUnit))]
    groups = {}
    for g in session.scalars(sa.select(WorkGroup)):
        for d in g.districts:
            groups[d.id] = g.id
    users = [
        {
            "username": f"bench{i}",
            "display_name": f"干部{i}",
            "password_hash": "x",
            "role": "field_cadre",
            "district_id": districts[i % len(districts)],
            "active": True,
            "created_at": now,
        }
        for i in range(400)
    ]
    session.execute(sa.insert(User.__table__), users)
    user_ids = {d: [] for d in districts}
    for uid, did in session.execute(
        sa.select(User.id, User.district_id).where(User.username.like("bench%"))
    ):
        user_ids[did].append(uid)
    n_ent = max(100, n_visits // 10)
    ents, ent_district = [], []
    for i in range(n_ent):
        did = districts[i % len(districts)]
        ents.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "version": 1,
                "deleted": False,
                "district_id": did,
                "canonical_id": None,
                "field_versions": {},
                "created_at": now,
                "updated_at": now,
                "name": f"基准企业{i}有限公司",
                "uscc": None,
                "uscc_valid": False,
                "type_tags": rng.sample(ENTERPRISE_TYPE_TAGS, rng.randint(1, 2)),
                "focus_tags": [],
            }
        )
        ent_district.append(did)
    session.execute(sa.insert(Enterprise.__table__), ents)
    by_district: dict[int, list[str]] = {d: [] for d in districts}
    for e, did in zip(ents, ent_district, strict=True):
        by_district[did].append(e["id"])
    counts = {"visits": 0, "problems": 0, "home_visits": 0, "participants": 0}
    batch = 10_000
    for start in range(0, n_visits, batch):
        visits, parts, problems, homes = [], [], [], []
        for _ in range(min(batch, n_visits - start)):
            did = rng.choice(districts)
            vid = str(uuid.UUID(int=rng.getrandbits(128)))
            at = datetime.combine(
                START + timedelta(days=rng.randrange(DAYS)), datetime.min.time(), UTC
            ) + timedelta(hours=rng.randint(1, 10))
            method = rng.choice(VISIT_METHODS)
            met = rng.randint(1, 40)
            # About half the visits note workers of one or two focus groups (the JSON
            # the dashboard sums per group); the others met none of them or left it out.
            by_group = (
                {g: rng.randint(1, met) for g in rng.sample(FOCUS_GROUPS, rng.randint(1, 2))}
                if rng.random() < 0.5
                else {}
            )
            visits.append(
                {
                    "id": vid,
                    "version": 1,
                    "deleted": False,
                    "district_id": did,
                    "canonical_id": None,
                    "field_versions": {},
                    "created_at": at,
                    "updated_at": at,
                    "method": method,
                    "visited_at": at,
                    "work_group_id": groups.get(did),
                    "place": "enterprise",
                    "enterprise_id": rng.choice(by_district[did]),
                    "workers_met": met,
                    "workers_by_group": by_group,
                    "materials": 0,
                    "consultations": 0,
                }
            )
            parts.append({"visit_id": vid, "user_id": rng.choice(user_ids[did])})
            if rng.random() < 0.2:
                stage = rng.choice(PROBLEM_STAGES)
                problems.append(
                    {
                        "id": str(uuid.UUID(int=rng.getrandbits(128))),
                        "version": 1,
                        "deleted": False,
                        "district_id": did,
                        "canonical_id": None,
                        "field_versions": {},
                        "created_at": at,
                        "updated_at": at,
                        "visit_id": vid,
                        "category": rng.choice(PROBLEM_CATEGORIES),
                        "tag": rng.choice(PROBLEM_TAGS),
                        "description": "问题",
                        "stage": stage,
                        "resolved_at": at + timedelta(days=3)
                        if stage in ("resolved", "closed")
                        else None,
                    }
                )
            if method == "home_visit":
                homes.append(
                    {
                        "id": str(uuid.UUID(int=rng.getrandbits(128))),
                        "version": 1,
                        "deleted": False,
                        "district_id": did,
                        "canonical_id": None,
                        "field_versions": {},
                        "created_at": at,
                        "updated_at": at,
                        "visit_id": vid,
                        "visited_at": at,
                        "worker_name": "某某",
                        "amount_cents": rng.choice((20000, 50000, 100000)),
                    }
                )
        session.execute(sa.insert(Visit.__table__), visits)
        session.execute(sa.insert(visit_participants), parts)
        if problems:
            session.execute(sa.insert(Problem.__table__), problems)
        if homes:
            session.execute(sa.insert(HomeVisit.__table__), homes)
        counts["visits"] += len(visits)
        counts["participants"] += len(parts)
        counts["problems"] += len(problems)
        counts["home_visits"] += len(homes)
    session.commit()
    counts["enterprises"] = n_ent
    return counts


def _best(fn, repeat: int) -> tuple[float, object]:  # noqa: ANN001
    fn()  # warm-up: caches, statistics, page cache
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return round(min(times) * 1000, 1), out


def _export(session, f) -> tuple[int, int]:  # noqa: ANN001
    """Write the visits XLSX; returns (rows, bytes)."""
    from server.coordination.exports import visit_rows, write_xlsx

    rows = 0

    def counted():  # noqa: ANN202
        nonlocal rows
        for row in visit_rows(session, f):
            rows += 1
            yield row

    handle = write_xlsx(counted(), "走访记录")
    size = handle.seek(0, os.SEEK_END)
    handle.close()
    return rows - 1, size


def _through_http(app, session) -> dict[str, float]:  # noqa: ANN001
    """GET /api/dashboard as a coordinator: the first request computes, the next within a
    minute (no sync change in between) is answered from the cache."""
    from server.auth import hash_password
    from server.models import User

    session.add(
        User(
            username="bench-coord",
            display_name="协调组",
            role="city_coordinator",
            password_hash=hash_password("bench-pass-1"),
        )
    )
    session.commit()
    client = app.test_client()
    token = client.post(
        "/api/auth/login", json={"username": "bench-coord", "password": "bench-pass-1"}
    ).json["token"]
    url = "/api/dashboard?from=2026-01-01&to=2026-12-31"
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = client.get(url, headers={"Authorization": f"Bearer {token}"})
        times.append(round((time.perf_counter() - t0) * 1000, 1))
        assert r.status_code == 200, r.status_code
    return {"first": times[0], "cached": min(times[1:])}


def run(url: str, data_dir: Path, n_visits: int, repeat: int) -> dict:
    from server.app import create_app
    from server.cli import upgrade_database
    from server.coordination import dashboard as dash
    from server.coordination.filters import Filters
    from server.extensions import db
    from server.models import WorkGroup

    app = create_app(DATABASE_URL=url, DATA_DIR=str(data_dir), LOG_JSON=False, LOG_LEVEL="WARNING")
    out: dict = {"backend": url.split(":", 1)[0].split("+")[0]}
    with app.app_context():
        upgrade_database()
        t0 = time.perf_counter()
        out["rows"] = generate(db.session, n_visits)
        out["insert_s"] = round(time.perf_counter() - t0, 1)
        with db.engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
            conn.commit()
        everything = Filters(date(2026, 1, 1), date(2026, 12, 31))
        group = db.session.scalar(sa.select(WorkGroup.id).where(WorkGroup.code == "WG01"))
        narrowed = Filters(date(2026, 1, 1), date(2026, 12, 31), work_group_id=group)
        out["dashboard_ms"], data = _best(lambda: dash.dashboard(db.session, everything), repeat)
        assert data["total"]["visits"] == n_visits, data["total"]["visits"]
        out["dashboard_work_group_ms"], _ = _best(
            lambda: dash.dashboard(db.session, narrowed), repeat
        )
        out["weekly_series_ms"], _ = _best(
            lambda: dash.weekly_series(db.session, everything), repeat
        )
        out["api_dashboard_ms"] = _through_http(app, db.session)
        quarter = Filters(START, START + timedelta(days=DAYS // 4 - 1))
        exports = {}
        for label, f in (("quarter", quarter), ("all", everything)):
            t0 = time.perf_counter()
            rows, size = _export(db.session, f)
            seconds = time.perf_counter() - t0
            db.session.rollback()
            tracemalloc.start()
            _export(db.session, f)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            db.session.rollback()
            exports[label] = {
                "rows": rows,
                "seconds": round(seconds, 1),
                "rows_per_s": round(rows / seconds),
                "file_mb": round(size / 2**20, 1),
                "peak_traced_mb": round(peak / 2**20, 1),
            }
        out["xlsx_export"] = exports
        db.session.remove()
        db.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="fv-dash-bench-") as tmp:
        results.append(run(f"sqlite:///{tmp}/bench.db", Path(tmp), args.visits, args.repeat))
        if not args.no_pg:
            name = f"fv_dash_bench_{os.getpid()}"
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            except sa.exc.OperationalError as exc:
                results.append({"backend": "postgresql", "skipped": type(exc).__name__})
            else:
                try:
                    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
                    results.append(run(url, Path(tmp) / "pg", args.visits, args.repeat))
                finally:
                    with admin.connect() as conn:
                        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print(json.dumps({"visits": args.visits, "results": results}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
