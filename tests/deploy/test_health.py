"""/healthz and /readyz with the database or the broker down, and with both up.

Readiness means "this web process can serve requests": the database answers and is at
the migrations' head. A broker (Redis) outage is reported as `degraded` with a 200, since
pushes are stored and their outbox rows wait for the workers.
"""

from __future__ import annotations

import shutil

import pytest
import redis
from sqlalchemy import text

from tests.deploy.conftest import free_port, wait_for


@pytest.fixture
def make(tmp_path):
    """Build an app on the given settings; its engine is disposed afterwards."""
    built = []

    def build(migrated: bool = False, **settings):  # noqa: ANN003, ANN202
        from server.app import create_app

        app = create_app(DATA_DIR=str(tmp_path), LOG_JSON=False, LOG_LEVEL="WARNING", **settings)
        built.append(app)
        if migrated:
            from server.cli import upgrade_database

            with app.app_context():
                upgrade_database()
        return app

    yield build
    from server.extensions import db

    for app in built:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def own_redis(spawn, tmp_path):  # noqa: ANN001, ANN201
    """A redis-server of this test's own on a free port: start() and stop() at will."""
    server = shutil.which("redis-server")
    if server is None:
        from tests.conftest import service_missing

        service_missing("redis-server (apt-get install redis-server)")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    procs = []

    def ping() -> bool:
        try:
            return redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False

    class Own:
        def start(self) -> None:
            args = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            args += ["--appendonly", "no", "--dir", str(tmp_path)]
            procs.append(spawn(args, {}, cwd=tmp_path))
            wait_for(ping, 10, "the test's redis-server to answer", step=0.1)

        def stop(self) -> None:
            proc = procs.pop()
            proc.popen.terminate()
            proc.popen.wait(timeout=10)
            assert not ping()

    own = Own()
    own.url = url
    return own


def test_database_down(make) -> None:
    # a PostgreSQL URL where nothing listens: connection refused at once
    app = make(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["status"] == "not_ready"
    assert ready.json["checks"]["database"].startswith("error: ")
    assert ready.json["checks"]["migrations"] == "unknown"
    assert ready.json["checks"]["broker"] == "ok"  # the embedded broker


def test_not_ready_until_migrated_to_the_head(make, tmp_path) -> None:
    app = make(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["database"] == "ok"
    assert ready.json["checks"]["migrations"].startswith("error: not migrated")

    from server.cli import upgrade_database
    from server.extensions import db

    with app.app_context():
        upgrade_database()
        assert client.get("/readyz").json["status"] == "ready"
        # one migration behind, as after a deploy whose migrate job did not run
        db.session.execute(text("DELETE FROM alembic_version"))  # one row per head
        db.session.execute(text("INSERT INTO alembic_version VALUES ('0001')"))
        db.session.commit()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["migrations"].startswith("error: at 0001, head is ")


def test_redis_unreachable_is_degraded_not_unready(make, tmp_path) -> None:
    app = make(
        migrated=True,
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json == {
        "status": "degraded",
        "checks": {"database": "ok", "migrations": "ok", "broker": "error: ConnectionError"},
    }


@pytest.mark.slow
def test_readiness_while_redis_stops_and_comes_back(make, own_redis, fresh_pg_url) -> None:
    """A real Redis of the test's own, stopped under a running app, then started again."""
    own_redis.start()
    app = make(migrated=True, DATABASE_URL=fresh_pg_url, REDIS_URL=own_redis.url)
    client = app.test_client()
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json["status"]) == (200, "ready"), ready.json

    own_redis.stop()
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json["status"] == "degraded"
    assert ready.json["checks"]["database"] == "ok"
    assert ready.json["checks"]["migrations"] == "ok"
    assert ready.json["checks"]["broker"].startswith("error: ")

    own_redis.start()
    assert client.get("/readyz").json == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "broker": "ok"},
    }


def test_a_push_is_accepted_while_redis_is_down(app, client, tmp_path) -> None:
    """The outbox keeps the work; the kick's failure costs the phone nothing."""
    from server.app import _outbox_kick
    from server.extensions import db
    from server.models import OutboxMessage
    from tests.conftest import Phone, create_user, visit_fields

    settings = app.config["FV"]
    down = type(settings)(dict(settings.values, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"))
    app.extensions["fieldvisit.outbox_kick"] = _outbox_kick(down)
    create_user("cadre1", "field_cadre", "510104", "WG01")
    phone = Phone(client, "cadre1")
    answer = phone.push(
        [phone.mutation("create", "visit", "00000000-0000-4000-8000-0000000000a1", visit_fields())]
    )
    assert answer.status_code == 200
    assert answer.json["results"][0]["status"] == "applied"
    assert db.session.query(OutboxMessage).filter(OutboxMessage.done_at.is_(None)).count() == 1


def test_ready_with_postgresql_and_redis(make, fresh_pg_url, redis_url) -> None:
    app = make(migrated=True, DATABASE_URL=fresh_pg_url, REDIS_URL=redis_url)
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "broker": "ok"},
    }
