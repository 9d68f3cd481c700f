"""Benchmark of the database dedup pass: N generated enterprises, then M arriving ones.

    python bench/dedup_db_bench.py 20000 --new 500 [--database-url postgresql+psycopg://...]
                                   [--extended] [--seed 1]

Loads `n` + `new` records from bench/dedup_generate.py into a fresh database, runs the
job over the first `n` in batches of 200 (as the nightly pass does), then times the
incremental pass (what the outbox handler does) for each of the `new` records, once each.
Prints one JSON document: time per new record (median, p95, mean, with the commit),
the precision of the automatic merges against the generator's truth, the review queue,
and how far the database's clusters agree with the CSV command's (cluster_records) on
the same records: pairwise agreement over all records and, for the new records, the
share whose cluster is the one the CSV command gives them.
"""

from __future__ import annotations

import argparse
import json
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
    ap.add_argument("--extended", action="store_true", help="dedup_generate --extended")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    from sqlalchemy import select

    from bench.dedup_bench import pairwise
    from bench.dedup_generate import generate
    from server.app import create_app
    from server.cli import upgrade_database
    from server.extensions import db
    from server.models import DistrictUnit, Enterprise
    from server.models_dedup import MergeLink, ReviewCandidate
    from worker.dedup import cluster_records
    from worker.dedup.normalize import normalize_district
    from worker.dedup_jobs import DedupContext, dedup_enterprise, enterprise_record

    data_dir = tempfile.mkdtemp(prefix="fv-bench-")
    url = args.database_url or f"sqlite:///{data_dir}/bench.db"
    app = create_app(DATA_DIR=data_dir, DATABASE_URL=url, LOG_JSON=False, LOG_LEVEL="WARNING")
    records = generate(args.n + args.new, seed=args.seed, extended=args.extended)
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
            # Only the first n: the last batch used to run on into the new records, which
            # were then timed a second time as "new" (up to 199 of them when n % 200 != 0).
            for eid in ids[i : min(i + 200, args.n)]:
                dedup_enterprise(db.session, ctx, eid)
            db.session.commit()
        full = time.perf_counter() - started
        processed_by_full_pass = min(len(ids), args.n)

        times = []
        cpu0 = time.process_time()
        for eid in ids[args.n :]:
            t0 = time.perf_counter()
            dedup_enterprise(db.session, ctx, eid)
            db.session.commit()
            times.append(time.perf_counter() - t0)
        cpu = time.process_time() - cpu0  # this process only (not the database server's)
        times.sort()

        links = db.session.scalars(select(MergeLink).where(MergeLink.status == "active")).all()
        right = sum(truth[x.record_id] == truth[x.canonical_id] for x in links)
        reviews = db.session.scalars(select(ReviewCandidate)).all()
        review_right = sum(truth[r.a_id] == truth[r.b_id] for r in reviews)
        stored = {
            e.id: e.canonical_id or e.id
            for e in db.session.scalars(select(Enterprise).where(Enterprise.deleted.is_(False)))
        }
        batch = cluster_records(
            [enterprise_record(db.session, ctx, db.session.get(Enterprise, eid)) for eid in ids]
        ).cluster_of
        dialect = db.engine.dialect.name

    new_ids = ids[args.n :]
    members: dict[str, set[str]] = {}
    for eid, cid in stored.items():
        members.setdefault(cid, set()).add(eid)
    bmembers: dict[str, set[str]] = {}
    for eid, cid in batch.items():
        bmembers.setdefault(cid, set()).add(eid)
    same_cluster = sum(members[stored[x]] == bmembers[batch[x]] for x in new_ids)
    report = {
        "database": dialect,
        "records": args.n,
        "new": args.new,
        "generator": {"seed": args.seed, "extended": args.extended},
        "full_pass_records": processed_by_full_pass,
        "full_pass_s": round(full, 2),
        "full_pass_records_per_s": round(args.n / full, 1),
        "incremental_jobs": len(times),
        "incremental_ms_per_record": {
            "median": round(times[len(times) // 2] * 1000, 2) if times else None,
            "p95": round(times[int(len(times) * 0.95)] * 1000, 2) if times else None,
            "mean": round(1000 * sum(times) / len(times), 2) if times else None,
            "cpu_mean": round(1000 * cpu / len(times), 2) if times else None,
        },
        "automatic_merges": len(links),
        "merge_precision": round(right / max(1, len(links)), 4),
        "review_candidates": len(reviews),
        "review_truly_same": round(review_right / max(1, len(reviews)), 3),
        "vs_truth": pairwise(stored, truth),
        "csv_command_vs_truth": pairwise(batch, truth),
        "agreement_with_csv_command": pairwise(stored, batch),
        "new_records_with_the_csv_commands_cluster": round(same_cluster / max(1, len(new_ids)), 4),
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
