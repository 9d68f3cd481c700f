"""/healthz and /readyz with the database or the broker down, and with both up."""

from __future__ import annotations

import pytest

from tests.deploy.conftest import free_port


@pytest.fixture
def make(tmp_path):
    """Build an app on the given settings; its engine is disposed afterwards."""
    built = []

    def build(**settings):  # noqa: ANN003, ANN202
        from server.app import create_app

        app = create_app(DATA_DIR=str(tmp_path), LOG_JSON=False, LOG_LEVEL="WARNING", **settings)
        built.append(app)
        return app

    yield build
    from server.extensions import db

    for app in built:
        with app.app_context():
            db.engine.dispose()


def test_database_down(make) -> None:
    # a PostgreSQL URL where nothing listens: connection refused at once
    app = make(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["status"] == "not_ready"
    assert ready.json["checks"]["database"].startswith("error: ")
    assert ready.json["checks"]["broker"] == "ok"  # the embedded broker


def test_redis_down(make, tmp_path) -> None:
    app = make(
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"] == {"database": "ok", "broker": "error: ConnectionError"}


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
    app = make(DATABASE_URL=fresh_pg_url, REDIS_URL=redis_url)
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}
