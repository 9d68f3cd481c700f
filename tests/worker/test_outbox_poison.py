"""Workers never poison (issue 11): a record that fails cannot hold back the others of
its push, a row that keeps failing goes dead and is listed with its error, an admin
retries it, and dedup workers running side by side on PostgreSQL do not deadlock.

The poison is real: a trigger on dedup_keys that refuses one record's keys, so the
handler fails inside the database exactly as the 61-character name did.
"""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from tests.conftest import PASSWORD, Phone, create_user
from tests.worker.test_merge_flow import valid_uscc


def _drain(**kw) -> int:  # noqa: ANN003
    import worker.dedup_jobs  # noqa: F401  (registers the handler)
    from server.extensions import db
    from worker.outbox import drain

    return drain(db.session, **kw)


@contextmanager
def poisoned(record_id: str):  # noqa: ANN201
    """While inside: inserting a dedup key of `record_id` fails in the database."""
    from server.extensions import db

    postgres = db.engine.dialect.name == "postgresql"
    with db.engine.begin() as conn:
        if postgres:
            conn.execute(
                text(
                    "CREATE FUNCTION test_poison() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.record_id = '{record_id}' THEN "
                    "RAISE EXCEPTION 'poisoned record'; END IF; RETURN NEW; END $$ "
                    "LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER test_poison BEFORE INSERT ON dedup_keys "
                    "FOR EACH ROW EXECUTE FUNCTION test_poison()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER test_poison BEFORE INSERT ON dedup_keys "
                    f"WHEN NEW.record_id = '{record_id}' "
                    "BEGIN SELECT RAISE(ABORT, 'poisoned record'); END"
                )
            )
    try:
        yield
    finally:
        db.session.rollback()
        with db.engine.begin() as conn:
            conn.execute(
                text("DROP TRIGGER IF EXISTS test_poison" + (" ON dedup_keys" if postgres else ""))
            )
            if postgres:
                conn.execute(text("DROP FUNCTION IF EXISTS test_poison()"))


def _admin_headers(client) -> dict[str, str]:  # noqa: ANN001
    r = client.post("/api/auth/login", json={"username": "admin1", "password": PASSWORD})
    assert r.status_code == 200, r.json
    return {"Authorization": f"Bearer {r.json['token']}"}


def test_a_poison_record_fails_alone_goes_dead_and_is_retried(app):
    from server.extensions import db
    from server.models import Enterprise, OutboxMessage
    from server.models_dedup import DedupKey

    create_user("cadre1", "field_cadre", "510104", "WG01")
    create_user("admin1", "admin")
    client = app.test_client()
    phone = Phone(client, "cadre1")
    code = valid_uscc()
    a, b, p, c = (str(uuid.uuid4()) for _ in range(4))

    def ent(eid: str, name: str, **extra) -> dict:  # noqa: ANN003
        fields = {"name": name, "district_code": "510104", **extra}
        return phone.mutation("create", "enterprise", eid, fields)

    with poisoned(p):
        r = phone.push(
            [
                ent(a, "成都市华兴机械有限公司", uscc=code),
                ent(p, "蓝天食品有限公司"),
                ent(b, "华兴机械（成都）有限责任公司", uscc=code),
                ent(c, "红星印务有限公司"),
            ]
        )
        assert r.status_code == 200 and {x["status"] for x in r.json["results"]} == {"applied"}
        assert _drain() == 1  # the push's row is done: the other three were deduplicated
        db.session.expire_all()
        assert db.session.get(Enterprise, b).canonical_id == a
        keyed = set(db.session.scalars(select(DedupKey.record_id).distinct()))
        assert keyed == {a, b, c}
        rows = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.done_at.is_(None))
        ).all()
        assert len(rows) == 1
        single = rows[0]
        assert single.payload == {"records": [["enterprise", p]]} and single.attempts == 1
        assert "poisoned record" in single.last_error and p not in single.last_error
        # Not due before its back-off; then it backs off and fails until it is dead.
        assert _drain() == 0 and db.session.get(OutboxMessage, single.id).attempts == 1
        later = datetime.now(UTC)
        for attempt in range(2, 6):
            later += timedelta(hours=2)
            assert _drain(now=later) == 0
            db.session.expire_all()
            row = db.session.get(OutboxMessage, single.id)
            assert row.attempts == attempt
            assert (row.dead_at is not None) == (attempt == 5)
        later += timedelta(hours=2)
        assert _drain(now=later) == 0  # dead: not taken again
        assert db.session.get(OutboxMessage, single.id).attempts == 5

        admin = _admin_headers(client)
        queue = client.get("/api/admin/queue", headers=admin).json["outbox"]
        assert queue["pending"] == 0 and queue["dead"] == 1
        dead = queue["dead_rows"][0]
        assert (dead["id"], dead["entity"], dead["record_id"], dead["attempts"]) == (
            single.id,
            "enterprise",
            p,
            5,
        )
        assert "poisoned record" in dead["last_error"] and dead["dead_at"]
        # the ops page lists it with a retry button
        assert client.post(
            "/login", data={"username": "admin1", "password": PASSWORD}
        ).status_code in (302, 303)
        page = client.get("/admin/queue")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert (
            f"/admin/queue/{single.id}/retry" in html
            and "重试" in html
            and "poisoned record" in html
        )

    # The cause is fixed: an admin retries, the next drain deduplicates the record.
    r = client.post(f"/api/admin/queue/{single.id}/retry", headers=admin)
    assert r.status_code == 200 and r.json["dead_at"] is None and r.json["attempts"] == 0
    assert _drain() == 1
    db.session.expire_all()
    assert db.session.get(OutboxMessage, single.id).done_at is not None
    assert db.session.scalar(
        select(func.count()).select_from(DedupKey).where(DedupKey.record_id == p)
    )
    queue = client.get("/api/admin/queue", headers=admin).json["outbox"]
    assert queue["dead"] == 0 and queue["pending"] == 0
    # A done or unknown row cannot be retried.
    for missing in (single.id, 999_999):
        r = client.post(f"/api/admin/queue/{missing}/retry", headers=admin)
        assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    cadre = {"Authorization": f"Bearer {phone.token}"}
    assert client.post(f"/api/admin/queue/{single.id}/retry", headers=cadre).status_code == 403


def test_the_ops_page_retry_button_needs_an_admin_and_csrf(app):
    from server.extensions import db
    from server.models import OutboxMessage

    create_user("admin1", "admin")
    create_user("coord1", "coordinator")
    row = OutboxMessage(
        topic="dedup",
        payload={"records": []},
        attempts=5,
        last_error="X",
        dead_at=datetime.now(UTC),
    )
    db.session.add(row)
    db.session.commit()
    client = app.test_client()
    client.post("/login", data={"username": "coord1", "password": PASSWORD})
    assert client.get("/admin/queue").status_code in (302, 403)
    from flask import g

    g.pop("web_user", None)  # the test's app context outlives a request: forget its user
    client = app.test_client()
    client.post("/login", data={"username": "admin1", "password": PASSWORD})
    assert client.post(f"/admin/queue/{row.id}/retry").status_code in (400, 403)
    db.session.expire_all()
    assert db.session.get(OutboxMessage, row.id).dead_at is not None
    html = client.get("/admin/queue").get_data(as_text=True)
    token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = client.post(f"/admin/queue/{row.id}/retry", data={"csrf_token": token})
    assert r.status_code in (302, 303)
    db.session.expire_all()
    assert db.session.get(OutboxMessage, row.id).dead_at is None


def test_a_row_with_no_handler_goes_dead_without_blocking_the_next(app):
    from server.extensions import db
    from server.models import OutboxMessage

    odd = OutboxMessage(topic="no-such-topic", payload={})
    fine = OutboxMessage(topic="dedup", payload={"records": []})
    db.session.add_all([odd, fine])
    db.session.commit()
    assert _drain(now=datetime.now(UTC)) == 1
    at = datetime.now(UTC)
    for _ in range(6):
        at += timedelta(hours=2)
        _drain(now=at)
    db.session.expire_all()
    row = db.session.get(OutboxMessage, odd.id)
    assert row.dead_at is not None and row.attempts == 5 and "no handler" in row.last_error
    assert db.session.get(OutboxMessage, fine.id).done_at is not None


def test_dedup_workers_and_pushes_side_by_side_do_not_deadlock(app):
    """Three workers drain rows whose records share blocking keys in opposite orders,
    while a phone pushes; every merge happens once and no transaction deadlocks (on
    PostgreSQL the advisory locks and the version counter's row lock; on SQLite the
    single writer)."""
    from server.extensions import db
    from server.models import Enterprise, OutboxMessage
    from server.models_dedup import MergeLink

    create_user("cadre1", "field_cadre", "510104", "WG01")
    create_user("cadre2", "field_cadre", "510104", "WG01")
    client = app.test_client()
    p1, p2 = Phone(client, "cadre1"), Phone(client, "cadre2")
    pairs = []
    for i in range(24):
        code = valid_uscc(f"91510100MA6{i:06d}")
        pairs.append((str(uuid.uuid4()), str(uuid.uuid4()), code, f"华{i}兴机械有限公司"))
    for phone, side in ((p1, 0), (p2, 1)):
        r = phone.push(
            [
                phone.mutation(
                    "create",
                    "enterprise",
                    pair[side],
                    {"name": pair[3], "district_code": "510104", "uscc": pair[2]},
                )
                for pair in pairs
            ]
        )
        assert r.status_code == 200
    # Replace the push rows by rows that pair the clusters in opposite orders.
    db.session.execute(OutboxMessage.__table__.delete())
    for k in range(0, len(pairs), 2):
        x, y = pairs[k], pairs[k + 1]
        db.session.add(
            OutboxMessage(
                topic="dedup", payload={"records": [["enterprise", x[0]], ["enterprise", y[0]]]}
            )
        )
        db.session.add(
            OutboxMessage(
                topic="dedup", payload={"records": [["enterprise", y[1]], ["enterprise", x[1]]]}
            )
        )
    db.session.commit()

    errors: list[BaseException] = []

    def work() -> None:
        try:
            with app.app_context():
                for _ in range(40):
                    if not _drain(max_rows=1):
                        break
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def pushes() -> None:
        try:
            with app.app_context():
                c = app.test_client()
                phone = Phone(c, "cadre1")
                for i in range(10):
                    eid = str(uuid.uuid4())
                    fields = {"name": f"新{i}机械有限公司", "district_code": "510104"}
                    r = phone.push([phone.mutation("create", "enterprise", eid, fields)])
                    assert r.status_code == 200, r.json
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)] + [threading.Thread(target=pushes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert errors == [], errors
    # Rows requeued because a lock was busy are done by a later drain.
    for _ in range(5):
        _drain(now=datetime.now(UTC) + timedelta(hours=1))
    db.session.expire_all()
    assert (
        db.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.done_at.is_(None))
        )
        == 0
    )
    assert db.session.scalar(select(func.count()).select_from(MergeLink)) == len(pairs)
    for a, b, _, _ in pairs:
        roots = {
            db.session.get(Enterprise, a).canonical_id or a,
            db.session.get(Enterprise, b).canonical_id or b,
        }
        assert len(roots) == 1
