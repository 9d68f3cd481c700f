"""The production stack's commands, run for real without Docker.

Each service of docker-compose.yml runs one command; this test runs the same commands,
with the same production settings, on a real PostgreSQL and a real Redis:
migrate (`fieldvisit init-db`), web (`fieldvisit serve` under gunicorn), worker
(`celery -A worker.celery_app worker`) with its health check, and beat
(`celery -A worker.celery_app beat`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import visit_fields
from tests.deploy.conftest import BIN, PROD_SECRETS, REPO, clean_env, free_port, wait_for, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(120)]

PASSWORD = "stack-pass-123"


def call(url: str, body: dict | None = None, headers: dict[str, str] | None = None) -> dict:
    """One JSON request to the running server."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if data else "GET",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def outbox_rows(url: str) -> list[sa.Row]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT id, request_id, attempts, done_at, last_error FROM outbox"
                        " ORDER BY id"
                    )
                )
            )
    finally:
        engine.dispose()


def test_the_compose_stack_without_docker(tmp_path, spawn, fresh_pg_url, redis_url) -> None:
    env = clean_env(
        FIELDVISIT_ENV="production",
        DATABASE_URL=fresh_pg_url,
        REDIS_URL=redis_url,
        DATA_DIR=str(tmp_path),
        LOG_JSON="true",
        LOG_LEVEL="INFO",
        HOSTNAME=socket.gethostname(),
        **PROD_SECRETS,
    )

    def fieldvisit(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN / "fieldvisit"), *args],
            env={**env, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done

    # migrate, then the three long-running services, as compose orders them
    assert "database ready: postgresql+psycopg://" in fieldvisit("init-db").stdout
    port = free_port()
    web = spawn(
        [
            str(BIN / "fieldvisit"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env,
        cwd=tmp_path,
    )
    worker = spawn(
        [
            str(BIN / "celery"),
            "-A",
            "worker.celery_app",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
        ],
        env,
        cwd=tmp_path,
    )
    beat = spawn(
        [
            str(BIN / "celery"),
            "-A",
            "worker.celery_app",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(tmp_path / "celerybeat-schedule"),
        ],
        env,
        cwd=tmp_path,
    )
    # while they start: migrate again (every `docker compose up` does) and add a user
    assert "database ready" in fieldvisit("init-db").stdout
    fieldvisit(
        "create-user",
        "cadre1",
        "--role",
        "field_cadre",
        "--district",
        "510104",
        "--work-group",
        "WG01",
        FIELDVISIT_NEW_PASSWORD=PASSWORD,
    )

    base = f"http://127.0.0.1:{port}"
    assert json.loads(wait_http(f"{base}/healthz", web, timeout=30)) == {"status": "ok"}
    ready = json.loads(wait_http(f"{base}/readyz", web, timeout=10))
    assert ready["checks"] == {"database": "ok", "migrations": "ok", "broker": "ok"}
    with urllib.request.urlopen(f"{base}/", timeout=5) as response:
        assert b"<html" in response.read().lower()  # the PWA, served by gunicorn too

    # the worker's health check, exactly as the compose file runs it ($$ is compose's $)
    compose = (REPO / "docker-compose.yml").read_text()
    check = next(line for line in compose.splitlines() if "inspect ping" in line)
    check = check.split('"CMD-SHELL", "', 1)[1].rsplit('"', 1)[0].replace("$$", "$")

    # Wait for the worker's own "ready" line first: a ping sent earlier waits out its
    # whole --timeout for an answer that cannot come.
    wait_for(
        lambda: " ready." in worker.output() or not worker.alive(), 45, "the worker to be ready"
    )
    assert worker.alive(), worker.output()[-4000:]
    ping = subprocess.run(
        ["sh", "-c", check],
        env={**env, "PATH": f"{BIN}:{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=40,
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "pong" in ping.stdout

    # a push through gunicorn: the outbox row carries the request id, the web's kick
    # reaches the worker through Redis, and the worker takes the row
    login = call(f"{base}/api/auth/login", {"username": "cadre1", "password": PASSWORD})
    request_id = "stack-" + uuid.uuid4().hex[:10]
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
                    "fields": {"name": "成都华兴机械有限公司", "district_code": "510104"},
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

    def taken() -> sa.Row | None:
        rows = outbox_rows(fresh_pg_url)
        assert len(rows) == 1 and rows[0].request_id == request_id
        return rows[0] if rows[0].done_at or rows[0].attempts else None

    row = taken() or wait_for(taken, 20, "the worker to take the outbox row")
    # Until a handler for "dedup" is registered the worker records that instead of
    # finishing the row; either way the worker, not this test, took it.
    assert row.done_at is not None or "no handler" in (row.last_error or "")
    assert "worker.tasks.drain_outbox" in worker.output()

    # beat: exactly one scheduler sends the periodic drain (every 10 s)
    wait_for(
        lambda: "Sending due task drain-outbox" in beat.output(), 25, "beat to send drain-outbox"
    )
    web_lines = [json.loads(line) for line in web.output().splitlines() if line.startswith("{")]
    push_logs = [line for line in web_lines if line.get("path") == "/api/sync/push"]
    assert push_logs and push_logs[0]["request_id"] == request_id

    # SIGTERM stops each cleanly (docker stop)
    for proc in (beat, worker, web):
        proc.popen.terminate()
    for proc in (beat, worker, web):
        assert proc.popen.wait(timeout=30) == 0, proc.output()[-3000:]
