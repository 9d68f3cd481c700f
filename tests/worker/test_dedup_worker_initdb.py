"""`fieldvisit init-db` on a fresh database applies the dedup migration (0002_dedup)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa


def test_init_db_creates_the_dedup_tables(tmp_path: Path) -> None:
    exe = str(Path(sys.executable).with_name("fieldvisit"))
    env = dict(os.environ, DATA_DIR=str(tmp_path), DATABASE_URL="", LOG_JSON="false")
    for _ in range(2):  # idempotent: the second run changes nothing and succeeds
        done = subprocess.run([exe, "init-db"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'fieldvisit.db'}")
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        heads = set(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
        indexes = {i["name"]: i for i in sa.inspect(conn).get_indexes("merge_links")}
    engine.dispose()
    assert {"dedup_keys", "merge_links", "review_candidates"} <= tables
    # Later revisions may build on it: 0002_dedup must be among the applied ones.
    from alembic.script import ScriptDirectory

    root = Path(__file__).resolve().parents[2] / "migrations"
    script = ScriptDirectory(str(root))
    applied = {rev.revision for head in heads for rev in script.iterate_revisions(head, "base")}
    assert "0002_dedup" in applied
    assert indexes["uq_merge_links_active"]["unique"]
