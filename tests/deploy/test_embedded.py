"""The embedded default, started exactly as a new user would: `fieldvisit run`.

No DATABASE_URL, no REDIS_URL: SQLite in DATA_DIR, the embedded broker, gunicorn, and
a Celery worker with its beat, all from one command; Ctrl-C stops everything.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import visit_fields
from tests.deploy.conftest import BIN, clean_env, free_port, wait_for, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def call(url: str, body: dict | None = None, headers: dict[str, str] | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if data else "GET",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_fieldvisit_run_as_a_new_user_would(tmp_path, spawn) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    run = spawn(
        [str(BIN / "fieldvisit"), "run", "--port", str(port)],
        clean_env(DATA_DIR=str(data_dir)),
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", run, timeout=60)
    # printed once the web listens (the command polls the port)
    wait_for(lambda: "demo login: user 'demo' password 'demo-2012'" in run.output(), 10, "login")

    login = call(f"{base}/api/auth/login", {"username": "demo", "password": "demo-2012"})
    request_id = "embedded-" + uuid.uuid4().hex[:10]
    eid = str(uuid.uuid4())
    answer = call(
        f"{base}/api/sync/push",
        {
            "protocol": 1,
            "device_id": login["device_id"],
            "mutations": [
                {
                    "mid": 1,
                    "op": "create",
                    "entity": "enterprise",
                    "id": eid,
                    "fields": {"name": "成都锦江示范机电有限公司", "district_code": "510104"},
                },
                {
                    "mid": 2,
                    "op": "create",
                    "entity": "visit",
                    "id": str(uuid.uuid4()),
                    "fields": visit_fields(enterprise_id=eid),
                },
            ],
        },
        {"Authorization": f"Bearer {login['token']}", "X-Request-ID": request_id},
    )
    assert [r["status"] for r in answer["results"]] == ["applied", "applied"]

    engine = sa.create_engine(
        f"sqlite:///{data_dir / 'fieldvisit.db'}", connect_args={"timeout": 10}
    )

    def taken() -> sa.Row | None:
        assert run.alive(), run.output()[-4000:]
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT id, topic, attempts, done_at, last_error FROM outbox "
                    "WHERE request_id = :rid"
                ),
                {"rid": request_id},
            ).one()
        return row if row.done_at or row.attempts else None

    try:
        # the web's kick reaches the embedded worker through the SQLite broker; the
        # beat's periodic drain (10 s) would take the row too
        row = wait_for(taken, 40, "the embedded worker to take the outbox row")
    finally:
        engine.dispose()
    assert row.topic == "dedup"
    # Until the dedup engineer registers a handler for "dedup", the worker records
    # "no handler" and leaves the row pending; with the handler, the row is done.
    assert row.done_at is not None or "no handler for topic 'dedup'" in row.last_error, row

    # Ctrl-C in the terminal: SIGINT to the whole foreground process group
    os.killpg(run.popen.pid, signal.SIGINT)
    assert run.popen.wait(timeout=30) == 0, run.output()[-3000:]
