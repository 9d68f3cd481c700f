"""XLSX and CSV export of N visits (default 1,000,000): wall time, rows/s, peak memory.

The visits come from bench/dashboard_bench.py's generator; the export is the one
/export/visits.xlsx streams (server/coordination/exports.py, server/xlsx_stream.py),
whole campaign, every district. Prints JSON.

    .venv/bin/python bench/export_bench.py --visits 1000000 [--pg]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from itertools import islice
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard_bench import PG_ADMIN, generate  # noqa: E402


def measure(url: str, data_dir: Path, n_visits: int) -> dict:
    from server.app import create_app
    from server.cli import upgrade_database
    from server.coordination.exports import csv_stream, visit_rows, write_xlsx
    from server.coordination.filters import Filters
    from server.extensions import db

    app = create_app(DATABASE_URL=url, DATA_DIR=str(data_dir), LOG_JSON=False, LOG_LEVEL="WARNING")
    out: dict = {"backend": url.split(":", 1)[0].split("+")[0]}
    with app.app_context():
        upgrade_database()
        t0 = time.perf_counter()
        generate(db.session, n_visits)
        out["insert_s"] = round(time.perf_counter() - t0, 1)
        everything = Filters(date(2026, 1, 1), date(2026, 12, 31))

        t0 = time.perf_counter()
        handle = write_xlsx(visit_rows(db.session, everything), "走访记录")
        seconds = time.perf_counter() - t0
        size = handle.seek(0, os.SEEK_END)
        handle.close()
        db.session.rollback()
        # memory in a second pass (tracemalloc slows Python down several times): the
        # first 100,000 rows, enough to show it does not grow
        tracemalloc.start()
        write_xlsx(islice(visit_rows(db.session, everything), 100_001), "走访记录").close()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        db.session.rollback()
        out["xlsx"] = {
            "seconds": round(seconds, 1),
            "rows_per_s": round(n_visits / seconds),
            "mb": round(size / 1e6, 1),
            "peak_python_mb_first_100k": round(peak / 1e6, 1),
        }

        t0 = time.perf_counter()
        size = sum(len(chunk) for chunk in csv_stream(visit_rows(db.session, everything)))
        seconds = time.perf_counter() - t0
        db.session.rollback()
        out["csv"] = {"seconds": round(seconds, 1), "mb": round(size / 1e6, 1)}
        db.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=1_000_000)
    parser.add_argument("--pg", action="store_true", help="also on PostgreSQL")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="fv-export-bench-") as tmp:
        results.append(measure(f"sqlite:///{tmp}/bench.db", Path(tmp), args.visits))
        if args.pg:
            name = f"fv_export_bench_{os.getpid()}"
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            try:
                url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
                results.append(measure(url, Path(tmp) / "pg", args.visits))
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    print(json.dumps({"visits": args.visits, "results": results}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
