"""Benchmark of the database dedup pass: N generated enterprises, then M arriving ones.

    python bench/dedup_db_bench.py 20000 --new 500 [--database-url postgresql+psycopg://...]

Loads `n` records from bench/dedup_generate.py into a fresh database, runs the full pass
over them (what the nightly task does), then times the incremental pass (what the
outbox handler does) for `new` more records, and reports the precision of the automatic
merges against the generator's truth.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--new", type=int, default=500)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args(argv)

    from sqlalchemy import select

    from bench.dedup_generate import generate
    from server.app import create_app
    from server.cli import upgrade_database
    from server.extensions import db
    from server.models import DistrictUnit, Enterprise
    from server.models_dedup import MergeLink, ReviewCandidate
    from worker.dedup.normalize import normalize_district
    from worker.dedup_jobs import DedupContext, dedup_enterprise

    data_dir = tempfile.mkdtemp(prefix="fv-bench-")
    url = args.database_url or f"sqlite:///{data_dir}/bench.db"
    app = create_app(DATA_DIR=data_dir, DATABASE_URL=url, LOG_JSON=False, LOG_LEVEL="WARNING")
    records = generate(args.n + args.new)
    with app.app_context():
        upgrade_database()
        districts = {d.code: d.id for d in db.session.scalars(select(DistrictUnit))}
        fallback = next(iter(districts.values()))
        truth: dict[str, str] = {}
        ids: list[str] = []
        base = datetime(2026, 3, 1, tzinfo=UTC)
        for i, (_rid, true_id, fields) in enumerate(records):
            eid = str(uuid.UUID(int=i + 1))
            truth[eid] = true_id
            ids.append(eid)
            code = normalize_district(fields.get("district") or "")
            db.session.add(
                Enterprise(
                    id=eid,
                    name=fields["name"],
                    uscc=fields.get("uscc") or None,
                    uscc_valid=False,
                    address=fields.get("address") or None,
                    head_count=int(fields["headcount"]) if fields.get("headcount") else None,
                    district_id=districts.get(code, fallback),
                    created_at=base + timedelta(seconds=i),
                )
            )
            if i % 5000 == 4999:
                db.session.commit()
        db.session.commit()
        from server.identifiers import uscc_is_valid

        for e in db.session.scalars(select(Enterprise).where(Enterprise.uscc.is_not(None))):
            e.uscc_valid = uscc_is_valid(e.uscc)
        db.session.commit()

        ctx = DedupContext.from_app()
        started = time.perf_counter()
        for i in range(0, args.n, 200):
            for eid in ids[i : i + 200]:
                dedup_enterprise(db.session, ctx, eid)
            db.session.commit()
        full = time.perf_counter() - started

        times = []
        for eid in ids[args.n :]:
            t0 = time.perf_counter()
            dedup_enterprise(db.session, ctx, eid)
            db.session.commit()
            times.append(time.perf_counter() - t0)
        times.sort()

        links = db.session.scalars(select(MergeLink).where(MergeLink.status == "active")).all()
        right = sum(truth[x.record_id] == truth[x.canonical_id] for x in links)
        reviews = db.session.scalars(select(ReviewCandidate)).all()
        review_right = sum(truth[r.a_id] == truth[r.b_id] for r in reviews)
        print(f"database: {db.engine.dialect.name}, records: {args.n} + {args.new} new")
        print(f"full pass over {args.n}: {full:.1f} s ({args.n / full:.0f} records/s)")
        print(
            f"incremental, per new record: median {times[len(times) // 2] * 1000:.1f} ms, "
            f"p95 {times[int(len(times) * 0.95)] * 1000:.1f} ms (with commit)"
        )
        print(f"automatic merges: {len(links)}, precision {right / max(1, len(links)):.3f}")
        print(
            f"review candidates: {len(reviews)}, truly the same: "
            f"{review_right / max(1, len(reviews)):.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
