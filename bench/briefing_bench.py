"""Benchmark: build all district briefings plus the city-wide one over 200,000 visits.

    .venv/bin/python bench/briefing_bench.py [--visits 200000] [--pg] [--repeat 3]

Generates fictional data once with SQLAlchemy Core executemany into a SQLite file cached
under the system temp folder (keyed by the generator version, visit count and seed; pass
--regenerate to rebuild it). Each run works on a copy of that file, migrated to the
current head. With --pg the same rows are loaded into a fresh PostgreSQL database
(created and dropped here) with COPY. Then `build_all` is timed for a week, a month and
the whole campaign, best of --repeat runs: wall time and the CPU time of this process
(the database server's CPU on PostgreSQL is not visible here). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
GENERATOR_VERSION = 1  # bump when generate() changes, so cached files are not reused
# Tables the generator fills, in foreign-key order (copied to PostgreSQL in this order).
BENCH_TABLES = ("users", "enterprises", "visits", "visit_participants", "problems", "home_visits")


def generate(session, visits: int, seed: int = 7) -> dict[str, int]:  # noqa: ANN001
    """Bulk-insert users, enterprises, visits, participants, problems and home visits."""
    from server.models import (
        ENTERPRISE_TYPE_TAGS,
        FOCUS_GROUPS,
        PROBLEM_CATEGORIES,
        PROBLEM_STAGES,
        VISIT_METHODS,
        DistrictUnit,
        Enterprise,
        HomeVisit,
        Problem,
        User,
        Visit,
        visit_participants,
    )

    rng = random.Random(seed)
    conn = session.connection()
    districts = [d.id for d in session.query(DistrictUnit).all()]
    now = datetime.now(UTC)
    users = [
        {
            "username": f"bench{d}_{i}",
            "display_name": f"干部{i}",
            "password_hash": "x",
            "role": "field_cadre" if i % 5 else "group_leader",
            "district_id": d,
            "active": True,
            "created_at": now,
        }
        for d in districts
        for i in range(40)
    ]
    conn.execute(sa.insert(User), users)
    user_ids: dict[int, list[int]] = {}
    for uid, did in conn.execute(sa.select(User.id, User.district_id)):
        user_ids.setdefault(did, []).append(uid)

    def base(district: int) -> dict:
        return {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "version": 0,
            "deleted": False,
            "district_id": district,
            "canonical_id": None,
            "field_versions": {},
            "created_at": now,
            "updated_at": now,
        }

    enterprises: dict[int, list[str]] = {d: [] for d in districts}
    rows = []
    for i in range(visits // 10):
        d = rng.choice(districts)
        row = {
            **base(d),
            "name": f"企业{i}",
            "uscc_valid": False,
            "type_tags": rng.sample(ENTERPRISE_TYPE_TAGS, rng.randint(1, 2)),
            "focus_tags": [],
        }
        if enterprises[d] and rng.random() < 0.03:
            row["canonical_id"] = rng.choice(enterprises[d])
        enterprises[d].append(row["id"])
        rows.append(row)
    conn.execute(sa.insert(Enterprise), rows)

    start = datetime(2026, 1, 1, tzinfo=UTC)
    span = (datetime(2026, 6, 30, tzinfo=UTC) - start).total_seconds()
    visit_rows, part_rows, problem_rows, home_rows = [], [], [], []
    for _ in range(visits):
        d = rng.choice(districts)
        at = start + timedelta(seconds=rng.random() * span)
        method = rng.choice(VISIT_METHODS)
        v = {
            **base(d),
            "method": method,
            "visited_at": at,
            "enterprise_id": rng.choice(enterprises[d]) if enterprises[d] else None,
            "workers_met": rng.randint(0, 40),
            "materials": 0,
            "consultations": 0,
            "workers_by_group": {g: rng.randint(0, 5) for g in FOCUS_GROUPS if rng.random() < 0.4},
        }
        if rng.random() < 0.02:
            v["canonical_id"] = v["id"]
        visit_rows.append(v)
        for uid in rng.sample(user_ids[d], 2):
            part_rows.append({"visit_id": v["id"], "user_id": uid})
        if rng.random() < 0.2:
            stage = rng.choice(PROBLEM_STAGES)
            problem_rows.append(
                {
                    **base(d),
                    "visit_id": v["id"],
                    "category": rng.choice(PROBLEM_CATEGORIES),
                    "description": "虚构问题",
                    "stage": stage,
                    "resolved_at": at + timedelta(days=3) if stage == "resolved" else None,
                }
            )
        if method == "home_visit":
            home_rows.append(
                {
                    **base(d),
                    "visit_id": v["id"],
                    "visited_at": at,
                    "worker_name": "虚构",
                    "amount_cents": rng.choice([20000, 50000]),
                }
            )
    for table, data in (
        (Visit, visit_rows),
        (visit_participants, part_rows),
        (Problem, problem_rows),
        (HomeVisit, home_rows),
    ):
        for i in range(0, len(data), 20000):
            conn.execute(sa.insert(table), data[i : i + 20000])
    session.commit()
    return {
        "visits": len(visit_rows),
        "participants": len(part_rows),
        "problems": len(problem_rows),
        "home_visits": len(home_rows),
        "enterprises": len(rows),
        "districts": len(districts),
    }


def _app(url: str, data_dir: Path):  # noqa: ANN202
    from server.app import create_app

    return create_app(DATA_DIR=str(data_dir), DATABASE_URL=url, LOG_JSON=False, LOG_LEVEL="WARNING")


def cached_sqlite(visits: int, seed: int, regenerate: bool) -> tuple[Path, float | None]:
    """The generated SQLite file for these parameters, made once; returns (path, seconds
    spent generating or None when it was cached)."""
    folder = Path(tempfile.gettempdir()) / "fv_briefing_bench"
    folder.mkdir(exist_ok=True)
    path = folder / f"v{GENERATOR_VERSION}-{visits}-{seed}.db"
    if path.exists() and not regenerate:
        return path, None
    from server.cli import upgrade_database
    from server.extensions import db

    work = path.with_suffix(f".{os.getpid()}.tmp")
    work.unlink(missing_ok=True)
    app = _app(f"sqlite:///{work}", folder)
    with app.app_context():
        upgrade_database()
        t = time.perf_counter()
        generate(db.session, visits, seed)
        elapsed = time.perf_counter() - t
        db.session.remove()
        db.engine.dispose()
    os.replace(work, path)  # atomic: a concurrent run never sees half a file
    return path, round(elapsed, 2)


def _copy_text(value: object) -> str:
    """One field in COPY's text format."""
    if value is None:
        return "\\N"
    return (
        str(value)
        .replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def copy_to_postgresql(sqlite_path: Path, session) -> float:  # noqa: ANN001
    """Load the generated rows from the SQLite file into PostgreSQL with COPY.

    SQLite holds timestamps as UTC text, booleans as 0/1 and JSON as text, all of which
    PostgreSQL's COPY text input reads as they are (with the session in UTC).
    """
    t = time.perf_counter()
    src = sqlite3.connect(sqlite_path)
    conn = session.connection()
    # The same reference data is loaded in the same order on both, so district ids agree.
    pg_units = dict(conn.execute(sa.text("SELECT code, id FROM district_units")).all())
    lite_units = dict(src.execute("SELECT code, id FROM district_units").fetchall())
    if pg_units != lite_units:
        raise RuntimeError("district unit ids differ between SQLite and PostgreSQL")
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        for table in BENCH_TABLES:
            pg_cols = {
                r[0]
                for r in conn.execute(
                    sa.text(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = :t"
                    ),
                    {"t": table},
                )
            }
            cols = [r[1] for r in src.execute(f"PRAGMA table_info({table})") if r[1] in pg_cols]
            names = ", ".join(f'"{c}"' for c in cols)
            rows = src.execute(f"SELECT {names} FROM {table}")
            with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                while batch := rows.fetchmany(20000):
                    copy.write("".join("\t".join(map(_copy_text, row)) + "\n" for row in batch))
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))"
        )
    session.commit()
    src.close()
    return round(time.perf_counter() - t, 2)


def run(url: str, data_dir: Path, source: Path, repeat: int) -> dict:
    from server.cli import upgrade_database
    from server.extensions import db
    from worker.briefing.compute import build_all, period_containing

    app = _app(url, data_dir)
    out: dict = {"backend": url.split(":")[0].split("+")[0]}
    with app.app_context():
        t = time.perf_counter()
        upgrade_database()
        out["migrate_s"] = round(time.perf_counter() - t, 2)
        if db.engine.dialect.name == "postgresql":
            out["copy_s"] = copy_to_postgresql(source, db.session)
        out["generated"] = {
            t: db.session.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in BENCH_TABLES
        }
        # Fresh statistics on both backends: without them the planners guess badly.
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        campaign = date(2026, 1, 1)
        total_wall = total_cpu = 0.0
        for kind, day in (
            ("week", date(2026, 3, 4)),
            ("month", date(2026, 3, 4)),
            ("campaign", date(2026, 6, 30)),
        ):
            period = period_containing(kind, day, campaign)
            walls, cpus = [], []
            for _ in range(repeat):
                db.session.remove()
                t, c = time.perf_counter(), time.process_time()
                city, by_code = build_all(db.session, period)
                cpus.append(time.process_time() - c)
                walls.append(time.perf_counter() - t)
            out[f"{kind}_s"] = round(min(walls), 3)
            out[f"{kind}_cpu_s"] = round(min(cpus), 3)
            out[f"{kind}_briefings"] = len(by_code) + 1
            out[f"{kind}_city_visits"] = city.total("visits")
            total_wall += min(walls)
            total_cpu += min(cpus)
        out["all_three_s"] = round(total_wall, 3)
        out["all_three_cpu_s"] = round(total_cpu, 3)
        db.session.remove()
        db.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many builds")
    parser.add_argument("--pg", action="store_true", help="also run on PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    parser.add_argument("--regenerate", action="store_true", help="rebuild the cached data")
    args = parser.parse_args()
    source, generate_s = cached_sqlite(args.visits, args.seed, args.regenerate)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "bench.db"
        shutil.copyfile(source, work)
        if not args.no_sqlite:
            results.append(run(f"sqlite:///{work}", Path(tmp), work, args.repeat))
        if args.pg:
            name = f"fv_briefing_bench_{uuid.uuid4().hex[:6]}"
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
            try:
                if args.no_sqlite:  # bring the copy to the current schema first
                    with _app(f"sqlite:///{work}", Path(tmp)).app_context():
                        from server.cli import upgrade_database
                        from server.extensions import db

                        upgrade_database()
                        db.engine.dispose()
                results.append(
                    run(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", Path(tmp), work, args.repeat)
                )
            finally:
                with admin.connect() as c:
                    c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    print(
        json.dumps(
            {"target_s": 5.0, "generate_s": generate_s, "cache": str(source), "results": results},
            ensure_ascii=False,
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
