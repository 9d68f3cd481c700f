"""A real Celery worker process and a real Redis dedup what phones push, exactly once.

The worker runs as a subprocess (`celery -A worker.celery_app worker`) on a SQLite file
shared with the test; Redis DB 7 is the broker and is flushed first. With the broker
down, a push still succeeds and its outbox row waits; a worker started later does the
work once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import Phone, create_user, make_app, service_missing, visit_fields

REDIS_URL = os.environ.get("FV_TEST_REDIS", "redis://127.0.0.1:6379/7")
DEAD_REDIS = "redis://127.0.0.1:6390/0"  # nothing listens there
CELERY = str(Path(sys.executable).with_name("celery"))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        service_missing("Redis at " + REDIS_URL.rsplit("/", 1)[0])
    client.flushdb()
    client.close()
    return REDIS_URL


@pytest.fixture
def shared_db(tmp_path) -> Iterator[tuple[str, Path]]:
    """A migrated SQLite file of this test alone (the worker process opens it too)."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    app = make_app(url, tmp_path)
    with app.app_context():
        from server.cli import upgrade_database
        from server.extensions import db

        upgrade_database()
        db.session.remove()
        db.engine.dispose()
    yield url, tmp_path


class Worker:
    """A celery worker subprocess, always stopped (and killed if need be) at the end."""

    def __init__(self, db_url: str, data_dir: Path, redis_url: str) -> None:
        env = dict(
            os.environ,
            DATABASE_URL=db_url,
            DATA_DIR=str(data_dir),
            REDIS_URL=redis_url,
            LOG_JSON="false",
            LOG_LEVEL="INFO",
        )
        args = [
            CELERY,
            "-A",
            "worker.celery_app",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
            "-n",
            f"dedup-test-{uuid.uuid4().hex[:6]}@%h",
        ]
        self.log = open(data_dir / f"worker-{uuid.uuid4().hex[:6]}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args,
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]


@pytest.fixture
def start_worker(shared_db) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(redis_url: str) -> Worker:
        w = Worker(shared_db[0], shared_db[1], redis_url)
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()


def wait_for(check: Callable[[], bool], worker: Worker, timeout: float = 30.0) -> None:
    from server.extensions import db

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.remove()  # a fresh snapshot each time
        if check():
            return
        if worker.proc.poll() is not None:
            pytest.fail("the worker exited:\n" + worker.output())
        time.sleep(0.25)
    pytest.fail("timed out waiting for the worker:\n" + worker.output())


def test_real_worker_dedups_pushes_and_survives_a_broker_outage(redis_url, shared_db, start_worker):
    from server.extensions import db
    from server.models import OutboxMessage, Visit
    from server.models_dedup import MergeLink

    url, data_dir = shared_db

    def visit(phone: Phone, vid: str, eid: str, met: int) -> dict:
        return phone.mutation(
            "create",
            "visit",
            vid,
            visit_fields(work_group_code="WG01", enterprise_id=eid, workers_met=met),
        )

    def links() -> int:
        return db.session.scalar(select(func.count()).select_from(MergeLink))

    live = make_app(url, data_dir, REDIS_URL=redis_url)
    with live.app_context():
        create_user("cadre1", "field_cadre", "510104", "WG01")
        create_user("cadre2", "field_cadre", "510104", "WG01")
        worker = start_worker(redis_url)
        client = live.test_client()
        p1, p2 = Phone(client, "cadre1"), Phone(client, "cadre2")
        eid, v1, v2 = (str(uuid.uuid4()) for _ in range(3))
        assert (
            p1.push(
                [
                    p1.mutation(
                        "create",
                        "enterprise",
                        eid,
                        {"name": "成都蓝天纺织有限公司", "district_code": "510104"},
                    ),
                    visit(p1, v1, eid, 10),
                ]
            ).status_code
            == 200
        )
        assert p2.push([visit(p2, v2, eid, 14)]).status_code == 200
        # The push kicked the worker through Redis: it merges without anyone waiting.
        wait_for(lambda: db.session.get(Visit, v2).canonical_id == v1, worker)
        assert db.session.get(Visit, v1).workers_met == 14
        worker.stop()
        db.session.remove()

    # Broker down during the push: the push succeeds, the outbox row waits.
    down = make_app(url, data_dir, REDIS_URL=DEAD_REDIS)
    with down.app_context():
        client = down.test_client()
        p1, p2 = Phone(client, "cadre1"), Phone(client, "cadre2")
        v3, v4 = str(uuid.uuid4()), str(uuid.uuid4())
        started = time.monotonic()
        r1 = p1.push(
            [
                p1.mutation(
                    "create",
                    "visit",
                    v3,
                    visit_fields(
                        work_group_code="WG01",
                        enterprise_id=eid,
                        workers_met=7,
                        visited_at="2026-03-09T10:00:00+08:00",
                    ),
                )
            ]
        )
        r2 = p2.push(
            [
                p2.mutation(
                    "create",
                    "visit",
                    v4,
                    visit_fields(
                        work_group_code="WG01",
                        enterprise_id=eid,
                        workers_met=9,
                        visited_at="2026-03-09T11:00:00+08:00",  # within the window
                    ),
                )
            ]
        )
        assert (r1.status_code, r2.status_code) == (200, 200)
        assert time.monotonic() - started < 10  # the dead broker did not hang the push
        db.session.remove()
        waiting = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.done_at.is_(None))
        ).all()
        assert len(waiting) == 2
        assert db.session.get(Visit, v4).canonical_id is None
        before = links()
        db.session.remove()

    # A worker with a working broker catches up when the next drain is asked for (the
    # beat asks every 10 s; here the web app's own kick asks, to keep the test short).
    from server.app import _outbox_kick

    with live.app_context():
        worker = start_worker(redis_url)
        kick = _outbox_kick(live.config["FV"])
        kick(None)
        wait_for(
            lambda: (
                db.session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.done_at.is_(None))
                )
                == 0
            ),
            worker,
        )
        assert db.session.get(Visit, v4).canonical_id == v3
        assert links() == before + 1
        # More drains find nothing to do: exactly once.
        kick(None)
        kick(None)
        time.sleep(1.5)
        db.session.remove()
        assert links() == before + 1
        assert db.session.get(Visit, v3).workers_met == 9
        worker.stop()
        db.session.remove()
        db.engine.dispose()
    with down.app_context():
        db.engine.dispose()
