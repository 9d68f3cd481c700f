"""Operations: the admin queue view, and a request id followed from a push into the worker."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from server.logs import JsonFormatter
from tests.conftest import PASSWORD, create_user, visit_fields


def login(client, username: str) -> tuple[dict[str, str], str]:  # noqa: ANN001
    """Sign in through the API: the bearer header and the new device's id."""
    r = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.json
    return {"Authorization": f"Bearer {r.json['token']}"}, r.json["device_id"]


def push_visit_and_enterprise(client, username: str, request_id: str):  # noqa: ANN001, ANN201
    """One push of an enterprise and a visit, as a phone sends it, with a request id."""
    headers, device_id = login(client, username)
    eid, vid = str(uuid.uuid4()), str(uuid.uuid4())
    body = {
        "protocol": 1,
        "device_id": device_id,
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
                "id": vid,
                "fields": visit_fields(enterprise_id=eid),
            },
        ],
    }
    answer = client.post(
        "/api/sync/push", json=body, headers={**headers, "X-Request-ID": request_id}
    )
    assert answer.status_code == 200, answer.json
    assert answer.headers["X-Request-ID"] == request_id
    assert [r["status"] for r in answer.json["results"]] == ["applied", "applied"]
    return eid, vid


class JsonCapture(logging.Handler):
    """Formats each record when it is emitted, as the real stderr handler does: the
    request id is read from the context at that moment."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def capture():
    logger = logging.getLogger("fieldvisit.test.outbox")
    handler = JsonCapture()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_queue_is_for_admins_only(app, client) -> None:
    create_user("admin1", "admin")
    create_user("coord1", "city_coordinator")
    assert client.get("/api/admin/queue").status_code == 401
    assert client.get("/api/admin/queue", headers=login(client, "coord1")[0]).status_code == 403
    r = client.get("/api/admin/queue", headers=login(client, "admin1")[0])
    assert r.status_code == 200
    assert r.json["outbox"] == {
        "pending": 0,
        "oldest_pending_at": None,
        "oldest_pending_age_seconds": None,
        "last_errors": [],
        "dead": 0,
        "dead_rows": [],
    }
    assert r.json["broker"]["kind"] == "embedded"


def test_request_id_follows_a_push_into_the_worker(app, client, capture, monkeypatch) -> None:
    """X-Request-ID of the push → the outbox row → the handler's JSON log lines."""
    from sqlalchemy import select

    from server.extensions import db
    from server.models import OutboxMessage
    from worker import outbox

    logger, captured = capture
    create_user("cadre1", "field_cadre", "510104", "WG01")
    create_user("admin1", "admin")
    admin, _ = login(client, "admin1")
    request_id = "push-" + uuid.uuid4().hex[:12]
    eid, vid = push_visit_and_enterprise(client, "cadre1", request_id)

    row = db.session.scalars(select(OutboxMessage)).one()
    assert row.request_id == request_id and row.topic == "dedup"
    queue = client.get("/api/admin/queue", headers=admin).json["outbox"]
    assert queue["pending"] == 1 and queue["oldest_pending_age_seconds"] >= 0

    # a handler that fails: the row stays pending, its error shows in the queue view
    def broken(session, message):  # noqa: ANN001, ANN202
        raise RuntimeError("index unavailable")

    monkeypatch.setitem(outbox.HANDLERS, "dedup", broken)
    monkeypatch.setattr(outbox.log, "disabled", True)  # its traceback is expected here
    assert outbox.drain(db.session) == 0
    queue = client.get("/api/admin/queue", headers=admin).json["outbox"]
    assert queue["pending"] == 1
    assert queue["last_errors"][0]["last_error"] == "RuntimeError: index unavailable"
    assert queue["last_errors"][0]["request_id"] == request_id

    # a handler that works and logs, as the dedup handler will
    def handle(session, message):  # noqa: ANN001, ANN202
        logger.info("dedup records", extra={"records": len(message.payload["records"])})

    monkeypatch.setitem(outbox.HANDLERS, "dedup", handle)
    # the failed row backs off: not due now, due after its back-off
    assert outbox.drain(db.session) == 0
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert outbox.drain(db.session, now=later) == 1
    db.session.expire_all()
    assert db.session.get(OutboxMessage, row.id).done_at is not None
    lines = [json.loads(line) for line in captured.lines]
    assert lines == [
        {
            **lines[0],
            "msg": "dedup records",
            "request_id": request_id,
            "records": 2,
            "logger": "fieldvisit.test.outbox",
            "level": "INFO",
        }
    ]
    # outside the row's handling the request id is gone again
    from server.logs import request_id_var

    assert request_id_var.get() != request_id
    queue = client.get("/api/admin/queue", headers=admin).json["outbox"]
    assert queue == {
        "pending": 0,
        "oldest_pending_at": None,
        "oldest_pending_age_seconds": None,
        "last_errors": [],
        "dead": 0,
        "dead_rows": [],
    }


def test_redis_queue_length(redis_url) -> None:
    import redis

    from config.settings import load_settings
    from server.api.ops import CELERY_QUEUE, broker_status
    from tests.deploy.conftest import free_port

    client = redis.Redis.from_url(redis_url)
    client.lpush(CELERY_QUEUE, "a", "b")
    assert broker_status(load_settings(env={}, REDIS_URL=redis_url)) == {
        "kind": "redis",
        "queue_length": 2,
        "status": "ok",
    }
    down = broker_status(load_settings(env={}, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"))
    assert down["queue_length"] is None and down["status"].startswith("error")
    client.close()
