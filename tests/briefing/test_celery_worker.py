"""A real Celery worker process runs the scheduled briefing task: mail arrives once.

Broker: Redis db 8 (flushed). Under CI=true a missing Redis fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.briefing.smtp import start_smtp
from tests.conftest import make_app, service_missing

REDIS_URL = os.environ.get("FV_TEST_REDIS", "redis://127.0.0.1:6379/8")


def _redis_or_skip() -> None:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.flushdb()
        client.close()
    except redis.exceptions.ConnectionError:
        service_missing(f"Redis at {REDIS_URL}")


@pytest.mark.redis
@pytest.mark.slow
def test_worker_sends_scheduled_briefings_once(tmp_path: Path):
    _redis_or_skip()
    db_url = f"sqlite:///{tmp_path / 'worker.db'}"
    app = make_app(db_url, tmp_path)
    with app.app_context():
        from server.cli import upgrade_database
        from server.extensions import db
        from server.models_briefing import CITY_SCOPE, BriefingRecipient
        from tests.briefing.fixture_data import WEEK, A, seed

        upgrade_database()
        seed()
        db.session.add_all(
            [
                BriefingRecipient(district=A, email="head@a.example"),
                BriefingRecipient(district=CITY_SCOPE, email="coord@city.example"),
            ]
        )
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
    try:
        from celery import Celery

        producer = Celery("test-producer", broker=REDIS_URL, set_as_current=False)
        # What beat sends — twice, as if beat fired twice.
        for _ in range(2):
            producer.send_task(
                "worker.tasks.briefings_scheduled", kwargs={"kind": "week", "day": WEEK.isoformat()}
            )
        deadline = time.monotonic() + 45
        while len(recorder.messages) < 2 and time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.3)
        time.sleep(2)  # any duplicate would arrive now
        assert sorted(m["To"] for m in recorder.messages) == [
            "coord@city.example",
            "head@a.example",
        ], (tmp_path / "worker.log").read_text()
        engine = sa.create_engine(db_url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT status, attempts FROM briefing_deliveries")).all()
        engine.dispose()
        assert [r[0] for r in rows] == ["sent", "sent"]
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


def test_beat_schedule_uses_setting_and_timezone():
    from config.settings import load_settings
    from worker.celery_app import make_celery

    app = make_celery(
        load_settings(env={}, BRIEFING_CRON="15 9 * * 1", DATA_DIR=str(Path("/tmp/fv-beat-test")))
    )
    entry = app.conf.beat_schedule["briefings-weekly"]
    assert entry["task"] == "worker.tasks.briefings_scheduled"
    assert entry["schedule"]._orig_minute == "15" and entry["schedule"]._orig_hour == "9"
    assert app.conf.timezone == "Asia/Shanghai"
    assert "briefings-sweep" in app.conf.beat_schedule
