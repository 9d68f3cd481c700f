"""A real Celery worker process runs the deadline-reminder beat task: two beats, each
digest mailed once, the task's own shell (worker/tasks.py) and the beat entry included.

Broker: Redis db 9 (flushed). Under CI=true a missing Redis fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.briefing.smtp import start_smtp
from tests.conftest import create_user, make_app, service_missing

REDIS_URL = os.environ.get("FV_TEST_REDIS_REMINDERS", "redis://127.0.0.1:6379/9")


def _redis_or_skip() -> None:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.flushdb()
        client.close()
    except redis.exceptions.ConnectionError:
        service_missing(f"Redis at {REDIS_URL}")


def test_beat_entry_follows_the_setting():
    from config.settings import load_settings
    from worker.celery_app import make_celery

    app = make_celery(
        load_settings(
            env={}, REMINDER_INTERVAL_SECONDS=900, DATA_DIR=str(Path("/tmp/fv-beat-test"))
        )
    )
    entry = app.conf.beat_schedule["deadline-reminders"]
    assert entry["task"] == "worker.tasks.deadline_reminders" and entry["schedule"] == 900.0


@pytest.mark.redis
@pytest.mark.slow
def test_worker_mails_each_digest_once_under_two_beats(tmp_path: Path):
    _redis_or_skip()
    db_url = f"sqlite:///{tmp_path / 'worker.db'}"
    app = make_app(db_url, tmp_path)
    with app.app_context():
        from server import deadlines
        from server.cli import upgrade_database
        from server.extensions import db
        from server.models import DistrictUnit, Problem, Visit

        upgrade_database()
        head = create_user("head_a", "district_head", "510104")
        head.email = "head@a.example"
        cadre = create_user("cadre1", "field_cadre", "510104")
        cadre.email = "cadre@a.example"
        a = db.session.scalar(sa.select(DistrictUnit.id).where(DistrictUnit.code == "510104"))
        rules = deadlines.current_rules(app.config["FV"])
        started = datetime.now(UTC) - timedelta(days=20)  # 15 days allowed: red
        for _ in range(3):
            v = Visit(
                id=str(uuid.uuid4()),
                method="interview",
                visited_at=started,
                district_id=a,
                workers_met=1,
            )
            p = Problem(
                id=str(uuid.uuid4()),
                visit_id=v.id,
                category="employment",
                stage="enterprise",
                description="x",
                district_id=a,
                created_by_id=cadre.id,
            )
            deadlines.start_clock(p, "enterprise", started, rules, None)
            db.session.add_all([v, p])
        db.session.commit()
        db.session.remove()
        db.engine.dispose()

    controller, recorder = start_smtp()
    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        DATA_DIR=str(tmp_path),
        REDIS_URL=REDIS_URL,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(controller.port),
        SMTP_SECURITY="none",
        LOG_JSON="false",
        LOG_LEVEL="INFO",
    )
    celery = str(Path(sys.executable).parent / "celery")
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [
            celery,
            "-A",
            "worker.celery_app",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    from celery import Celery

    producer = Celery("test-producer", broker=REDIS_URL, set_as_current=False)
    try:
        for _ in range(2):  # what beat sends, twice
            producer.send_task("worker.tasks.deadline_reminders")
        deadline = time.monotonic() + 45
        while len(recorder.messages) < 1 and time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.3)
        time.sleep(3)  # any duplicate would arrive now
        logged = (tmp_path / "worker.log").read_text()
        # Three problems owned by the district: one digest to its head, none twice.
        assert [m["To"] for m in recorder.messages] == ["head@a.example"], logged
        assert "到期催办3件" in recorder.messages[0]["Subject"]
        assert "KeyError" not in logged and "reminders planned" in logged
        engine = sa.create_engine(db_url)
        with engine.connect() as conn:
            kinds = conn.execute(sa.text("SELECT kind FROM problem_reminders")).all()
            digests = conn.execute(sa.text("SELECT status FROM reminder_digests")).all()
        engine.dispose()
        assert [k for (k,) in kinds] == ["overdue"] * 3
        assert [s for (s,) in digests] == ["sent"]
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=5)
        log.close()
        controller.stop()
        producer.close()
