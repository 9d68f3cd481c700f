"""Sign-in that resists guessing (issue 13, item 5): limits per account and per address
with back-off, in memory and in Redis; equal work and equal answers for unknown users;
a bound on concurrent password hashing. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid

import pytest

from server import signin
from tests.conftest import PASSWORD, create_user, make_app, service_missing

WRONG = "not-the-password"


def _login(client, username: str, password: str):
    return client.post("/api/auth/login", json={"username": username, "password": password})


@pytest.fixture
def values(app):
    return app.config["FV"].values


def test_account_is_refused_after_too_many_failures(app, client, values):
    create_user("cadre", "field_cadre", "510104", "WG01")
    create_user("other", "field_cadre", "510104", "WG01")
    for _ in range(values["SIGNIN_MAX_FAILURES"]):
        r = _login(client, "cadre", WRONG)
        assert r.status_code == 401 and r.json["error"]["code"] == "bad_credentials"
    # Now even the right password is refused, with a Retry-After.
    r = _login(client, "cadre", PASSWORD)
    assert r.status_code == 429, r.json
    assert r.json["error"]["code"] == "too_many_attempts"
    assert 0 < int(r.headers["Retry-After"]) <= values["SIGNIN_WINDOW_SECONDS"]
    # The page's sign-in is refused too, as a page.
    r = client.post("/login", data={"username": "cadre", "password": PASSWORD})
    assert r.status_code == 429 and "登录失败次数过多".encode() in r.data
    assert "Retry-After" in r.headers
    # Another account from the same address is not locked out.
    assert _login(client, "other", PASSWORD).status_code == 200


def test_the_lock_ends_with_the_window_and_trying_restarts_it(app, client, values, monkeypatch):
    create_user("cadre", "field_cadre", "510104", "WG01")
    monkeypatch.setitem(values, "SIGNIN_MAX_FAILURES", 2)
    monkeypatch.setitem(values, "SIGNIN_WINDOW_SECONDS", 2)
    for _ in range(2):
        assert _login(client, "cadre", WRONG).status_code == 401
    time.sleep(1.2)
    assert _login(client, "cadre", PASSWORD).status_code == 429  # restarts the window
    time.sleep(1.2)
    assert _login(client, "cadre", PASSWORD).status_code == 429  # still inside it
    time.sleep(2.2)
    assert _login(client, "cadre", PASSWORD).status_code == 200


def test_success_clears_the_account_count(app, client, values):
    create_user("cadre", "field_cadre", "510104", "WG01")
    n = values["SIGNIN_MAX_FAILURES"]
    for _ in range(n - 1):
        assert _login(client, "cadre", WRONG).status_code == 401
    assert _login(client, "cadre", PASSWORD).status_code == 200
    for _ in range(n - 1):
        assert _login(client, "cadre", WRONG).status_code == 401
    assert _login(client, "cadre", PASSWORD).status_code == 200


def test_address_limit_over_many_accounts(app, client, values, monkeypatch):
    monkeypatch.setitem(values, "SIGNIN_MAX_FAILURES_PER_ADDRESS", 3)
    create_user("cadre", "field_cadre", "510104", "WG01")
    for name in ("a1", "a2", "a3"):
        assert _login(client, name, WRONG).status_code == 401
    r = _login(client, "cadre", PASSWORD)
    assert r.status_code == 429 and r.json["error"]["code"] == "too_many_attempts"
    # Another address is not affected.
    r = client.post(
        "/api/auth/login",
        json={"username": "cadre", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert r.status_code == 200


def test_unknown_and_existing_users_take_the_same_work_and_answer(app, client, values, monkeypatch):
    # Room for every attempt: this test is about timing and answers, not the limit.
    monkeypatch.setitem(values, "SIGNIN_MAX_FAILURES", 100)
    monkeypatch.setitem(values, "SIGNIN_MAX_FAILURES_PER_ADDRESS", 100)
    from server.extensions import db

    create_user("cadre", "field_cadre", "510104", "WG01")
    create_user("gone", "field_cadre", "510104", "WG01").active = False
    db.session.commit()
    _login(client, "nobody", WRONG)  # the dummy hash is made once: not timed

    from argon2 import PasswordHasher

    checks: list[str] = []
    real_verify = PasswordHasher.verify

    def counted(self, hash, password):  # noqa: ANN001, ANN202, A002
        checks.append(hash[:9])
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counted)

    def timed(username: str, password: str) -> tuple[float, str, int]:
        before = len(checks)
        start = time.perf_counter()
        r = _login(client, username, password)
        took = time.perf_counter() - start
        return took, f"{r.status_code} {r.json['error']}", len(checks) - before

    cases = {
        "existing user, wrong password": ("cadre", WRONG),
        "unknown user": ("nobody", WRONG),
        "disabled user, right password": ("gone", PASSWORD),
    }
    runs: dict[str, list] = {k: [] for k in cases}
    for _ in range(7):  # interleaved, so a burst of load on the machine hits every case
        for name, (username, password) in cases.items():
            runs[name].append(timed(username, password))
    answers = {answer for rs in runs.values() for _, answer, _ in rs}
    assert len(answers) == 1, answers  # one answer: nothing tells which users exist
    # The same work, counted: exactly one argon2 verification per sign-in in every case.
    work = {name: {n for _, _, n in rs} for name, rs in runs.items()}
    assert all(w == {1} for w in work.values()), work
    # and timed: the fastest of each (the least disturbed by other load) within a margin
    fastest = {k: min(t for t, _, _ in v) for k, v in runs.items()}
    known = fastest["existing user, wrong password"]
    assert known > 0.02, fastest  # a real argon2 check
    for took in fastest.values():
        assert abs(took - known) <= 0.5 * known, fastest


def test_concurrent_hashing_is_bounded(app, client, values, monkeypatch):
    create_user("cadre", "field_cadre", "510104", "WG01")
    monkeypatch.setattr(signin, "HASH_WAIT_SECONDS", 0.3)
    guard = app.extensions["fieldvisit.signin"]
    slots = values["SIGNIN_MAX_CONCURRENT_HASHES"]
    for _ in range(slots):  # every hashing slot taken, as by slow sign-ins in flight
        assert guard.hashing.acquire(timeout=1)
    try:
        start = time.perf_counter()
        r = _login(client, "cadre", PASSWORD)
        assert r.status_code == 503 and r.json["error"]["code"] == "busy"
        assert r.headers["Retry-After"] == "5"
        assert time.perf_counter() - start < 2  # refused quickly, never queued forever
    finally:
        for _ in range(slots):
            guard.hashing.release()
    assert _login(client, "cadre", PASSWORD).status_code == 200


def test_redis_counts_are_shared_by_web_processes(_migrated):
    """With REDIS_URL (production), two web processes see the same failure counts."""
    import redis

    url = "redis://127.0.0.1:6379/14"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        service_missing("Redis at 127.0.0.1:6379")
    db_url, data_dir = _migrated
    name = f"r{uuid.uuid4().hex[:8]}"
    one = make_app(db_url, data_dir, REDIS_URL=url)
    two = make_app(db_url, data_dir, REDIS_URL=url)
    assert isinstance(one.extensions["fieldvisit.signin"].counter, signin.RedisCounter)
    with one.app_context():
        from server.extensions import db

        try:
            create_user(name, "field_cadre", "510104", "WG01")
            limit = one.config["FV"].SIGNIN_MAX_FAILURES
            for i in range(limit):
                app = one if i % 2 else two
                assert _login(app.test_client(), name, WRONG).status_code == 401
            assert _login(one.test_client(), name, PASSWORD).status_code == 429
            assert _login(two.test_client(), name, PASSWORD).status_code == 429
        finally:
            r = redis.Redis.from_url(url)
            for key in r.scan_iter("fv:signin:*"):
                r.delete(key)
            from server.models import User

            db.session.query(User).filter_by(username=name).delete()
            db.session.commit()
            db.session.remove()
            db.engine.dispose()
