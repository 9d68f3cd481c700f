"""Benchmark: build all district briefings plus the city-wide one over 200,000 visits.

    .venv/bin/python bench/briefing_bench.py [--visits 200000] [--pg]

Generates fictional data with SQLAlchemy Core executemany into a fresh SQLite file
(and, with --pg, a PostgreSQL database created and dropped here), then times
`build_all` for a week, a month and the whole campaign. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


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
    users = [{"username": f"bench{d}_{i}", "display_name": f"干部{i}", "password_hash": "x",
              "role": "field_cadre" if i % 5 else "group_leader", "district_id": d,
              "active": True, "created_at": now} for d in districts for i in range(40)]
    conn.execute(sa.insert(User), users)
    user_ids: dict[int, list[int]] = {}
    for uid, did in conn.execute(sa.select(User.id, User.district_id)):
        user_ids.setdefault(did, []).append(uid)

    def base(district: int) -> dict:
        return {"id": str(uuid.UUID(int=rng.getrandbits(128))), "version": 0, "deleted": False,
                "district_id": district, "canonical_id": None, "field_versions": {},
                "created_at": now, "updated_at": now}

    enterprises: dict[int, list[str]] = {d: [] for d in districts}
    rows = []
    for i in range(visits // 10):
        d = rng.choice(districts)
        row = {**base(d), "name": f"企业{i}", "uscc_valid": False,
               "type_tags": rng.sample(ENTERPRISE_TYPE_TAGS, rng.randint(1, 2)),
               "focus_tags": []}
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
        v = {**base(d), "method": method, "visited_at": at,
             "enterprise_id": rng.choice(enterprises[d]) if enterprises[d] else None,
             "workers_met": rng.randint(0, 40), "materials": 0, "consultations": 0,
             "workers_by_group": {g: rng.randint(0, 5) for g in FOCUS_GROUPS
                                  if rng.random() < 0.4}}
        if rng.random() < 0.02:
            v["canonical_id"] = v["id"]
        visit_rows.append(v)
        for uid in rng.sample(user_ids[d], 2):
            part_rows.append({"visit_id": v["id"], "user_id": uid})
        if rng.random() < 0.2:
            stage = rng.choice(PROBLEM_STAGES)
            problem_rows.append({**base(d), "visit_id": v["id"],
                                 "category": rng.choice(PROBLEM_CATEGORIES),
                                 "description": "虚构问题", "stage": stage,
                                 "resolved_at": at + timedelta(days=3)
                                 if stage == "resolved" else None})
        if method == "home_visit":
            home_rows.append({**base(d), "visit_id": v["id"], "visited_at": at,
                              "worker_name": "虚构", "amount_cents": rng.choice([20000, 50000])})
    for table, data in ((Visit, visit_rows), (visit_participants, part_rows),
                        (Problem, problem_rows), (HomeVisit, home_rows)):
        for i in range(0, len(data), 20000):
            conn.execute(sa.insert(table), data[i:i + 20000])
    session.commit()
    return {"visits": len(visit_rows), "participants": len(part_rows),
            "problems": len(problem_rows), "home_visits": len(home_rows),
            "enterprises": len(rows), "districts": len(districts)}


def run(url: str, data_dir: Path, visits: int) -> dict:
    from server.app import create_app
    from server.cli import upgrade_database
    from server.extensions import db
    from worker.briefing.compute import build_all, period_containing

    app = create_app(DATA_DIR=str(data_dir), DATABASE_URL=url, LOG_JSON=False,
                     LOG_LEVEL="WARNING")
    out: dict = {"backend": url.split(":")[0]}
    with app.app_context():
        upgrade_database()
        t = time.perf_counter()
        out["generated"] = generate(db.session, visits)
        out["generate_s"] = round(time.perf_counter() - t, 2)
        # Fresh statistics on both backends: without them the planners guess badly.
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        campaign = date(2026, 1, 1)
        for kind, day in (("week", date(2026, 3, 4)), ("month", date(2026, 3, 4)),
                          ("campaign", date(2026, 6, 30))):
            period = period_containing(kind, day, campaign)
            t = time.perf_counter()
            city, by_code = build_all(db.session, period)
            elapsed = time.perf_counter() - t
            out[f"{kind}_s"] = round(elapsed, 3)
            out[f"{kind}_briefings"] = len(by_code) + 1
            out[f"{kind}_city_visits"] = city.total("visits")
        db.session.remove()
        db.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=200_000)
    parser.add_argument("--pg", action="store_true", help="also run on PostgreSQL")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run(f"sqlite:///{Path(tmp) / 'bench.db'}", Path(tmp), args.visits))
        if args.pg:
            name = f"fv_briefing_bench_{uuid.uuid4().hex[:6]}"
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
            try:
                results.append(run(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", Path(tmp),
                                   args.visits))
            finally:
                with admin.connect() as c:
                    c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    print(json.dumps({"target_s": 5.0, "results": results}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
