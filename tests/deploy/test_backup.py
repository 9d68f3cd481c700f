"""scripts/pg-backup and scripts/pg-restore: a dump and restore round trip on PostgreSQL.

The scripts run for real, with the local PostgreSQL tools (the compose stack runs the
same commands inside its postgres container through PGCMD). After the restore the data
is what it was at the dump, the schema is at the head, and the sync epoch is new, so a
phone's old cursor resets.
"""

from __future__ import annotations

import subprocess
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests.conftest import Phone, create_user, visit_fields
from tests.deploy.conftest import REPO

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(180)]


def run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts" / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_backup_and_restore_round_trip(tmp_path, fresh_pg_url) -> None:
    import os

    from server.app import create_app
    from server.cli import upgrade_database
    from server.extensions import db

    parts = urlsplit(fresh_pg_url)
    env = {
        "PATH": os.environ["PATH"],
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": parts.username or "postgres",
        "PGDATABASE": parts.path.lstrip("/"),
    }
    app = create_app(
        DATABASE_URL=fresh_pg_url, DATA_DIR=str(tmp_path), LOG_JSON=False, LOG_LEVEL="WARNING"
    )
    client = app.test_client()
    with app.app_context():
        upgrade_database()
        create_user("cadre1", "field_cadre", "510104", "WG01")
        phone = Phone(client, "cadre1")
        kept = "00000000-0000-4000-8000-0000000000c1"
        assert (
            phone.push([phone.mutation("create", "visit", kept, visit_fields())]).status_code == 200
        )
        _, cursor = phone.pull_all()
        epoch = db.session.execute(sa.text("SELECT epoch FROM sync_state")).scalar_one()
        db.session.remove()
        db.engine.dispose()

    backups = tmp_path / "backups"
    done = run("pg-backup", str(backups), env=env)
    assert done.returncode == 0, done.stderr
    (dump,) = backups.glob(f"{env['PGDATABASE']}-*.dump")
    assert "pg-backup: " in done.stdout and not list(backups.glob("*.partial"))

    with app.app_context():  # after the backup: a visit that the restore will not have
        later = "00000000-0000-4000-8000-0000000000c2"
        assert (
            phone.push([phone.mutation("create", "visit", later, visit_fields())]).status_code
            == 200
        )
        db.session.remove()
        db.engine.dispose()

    refused = run("pg-restore", str(dump), env=env)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    done = run("pg-restore", "--yes", str(dump), env=env)
    assert done.returncode == 0, done.stderr
    assert "sync epoch rotated" in done.stdout

    with app.app_context():
        ids = set(db.session.scalars(sa.text("SELECT id FROM visits")))
        assert {str(i) for i in ids} == {kept}
        assert db.session.execute(sa.text("SELECT epoch FROM sync_state")).scalar_one() != epoch
        assert client.get("/readyz").json["checks"]["migrations"] == "ok"
        # the phone's cursor from before the restore: told to download its scope again
        answer = phone.get(f"/api/sync/pull?cursor={cursor}").json
        assert answer["reset"] is True
        db.session.remove()
        db.engine.dispose()


def test_a_backup_that_fails_leaves_no_file_and_fails_loudly(tmp_path) -> None:
    import os

    env = {
        "PATH": os.environ["PATH"],
        "PGHOST": "127.0.0.1",
        "PGUSER": "postgres",
        "PGDATABASE": "fv_no_such_database_for_backup",
    }
    done = run("pg-backup", str(tmp_path), env=env)
    assert done.returncode != 0
    assert "fv_no_such_database_for_backup" in done.stderr
    assert list(tmp_path.iterdir()) == []
