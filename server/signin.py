"""Sign-in that resists guessing (issue 13, item 5), for the app's and the pages' sign-in.

- Failed sign-ins are counted per account and per address over SIGNIN_WINDOW_SECONDS;
  at SIGNIN_MAX_FAILURES for an account (SIGNIN_MAX_FAILURES_PER_ADDRESS for an
  address) further attempts answer 429 `too_many_attempts` with Retry-After until the
  window passes, right password or not; each failure while refused starts the window
  again (back-off). A successful sign-in clears the account's count. The counts live in
  Redis when REDIS_URL is set (shared by every web process), else in the process's
  memory (the embedded default runs one web process).
- The same work whether the user exists or not: an unknown or disabled user's password
  is checked against a dummy argon2 hash made with the same parameters, and every
  failure answers the same `bad_credentials`.
- At most SIGNIN_MAX_CONCURRENT_HASHES password checks run at once per process (argon2
  takes 64 MiB and a core for a quarter second); a sign-in that cannot start one within
  a few seconds answers 503 `busy` with Retry-After, so wrong sign-ins cannot starve the
  server's other requests.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask, current_app, request

from server.errors import ApiError
from server.models import User

_DUMMY: list[str] = []
_DUMMY_LOCK = threading.Lock()
HASH_WAIT_SECONDS = 5.0


class MemoryCounter:
    """Failure counts in this process: key -> (count, expires at)."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[int, float]:
        """(count, seconds left) of the key; (0, 0) when absent or expired."""
        now = time.monotonic()
        with self._lock:
            count, until = self._items.get(key, (0, 0.0))
            if until <= now:
                self._items.pop(key, None)
                return 0, 0.0
            return count, until - now

    def hit(self, key: str, window: int) -> None:
        now = time.monotonic()
        with self._lock:
            count, until = self._items.get(key, (0, 0.0))
            if until <= now:
                count = 0
            self._items[key] = (count + 1, now + window)
            if len(self._items) > 100_000:  # bounded: forget the expired ones
                self._items = {k: v for k, v in self._items.items() if v[1] > now}

    def clear(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class RedisCounter:
    """Failure counts in Redis, shared by every web process. While Redis is down the
    counts are kept in this process (sign-in goes on: pushes work without Redis too)."""

    def __init__(self, url: str) -> None:
        import redis

        self._errors = (redis.RedisError, OSError)
        self._redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._local = MemoryCounter()

    def get(self, key: str) -> tuple[int, float]:
        try:
            pipe = self._redis.pipeline()
            pipe.get(key)
            pipe.pttl(key)
            raw, ttl = pipe.execute()
        except self._errors:
            return self._local.get(key)
        if raw is None or ttl is None or ttl <= 0:
            return 0, 0.0
        return int(raw), ttl / 1000

    def hit(self, key: str, window: int) -> None:
        try:
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, window)
            pipe.execute()
        except self._errors:
            self._local.hit(key, window)

    def clear(self, key: str) -> None:
        self._local.clear(key)
        try:
            self._redis.delete(key)
        except self._errors:
            pass


class SignInGuard:
    """The per-app limiter and hashing bound (app.extensions['fieldvisit.signin'])."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.counter: MemoryCounter | RedisCounter = (
            RedisCounter(settings.REDIS_URL) if settings.REDIS_URL else MemoryCounter()
        )
        self.hashing = threading.BoundedSemaphore(settings.SIGNIN_MAX_CONCURRENT_HASHES)

    def _keys(self, username: str) -> list[tuple[str, int]]:
        s = self.settings
        address = request.remote_addr or "unknown"
        return [
            (f"fv:signin:user:{username.strip().lower()[:64]}", s.SIGNIN_MAX_FAILURES),
            (f"fv:signin:addr:{address}", s.SIGNIN_MAX_FAILURES_PER_ADDRESS),
        ]

    def check(self, username: str) -> None:
        """Refuse (429) while the account or the address has too many recent failures."""
        for key, limit in self._keys(username):
            count, left = self.counter.get(key)
            if count >= limit:
                # Back-off: trying while refused starts the window again.
                self.counter.hit(key, self.settings.SIGNIN_WINDOW_SECONDS)
                raise ApiError(
                    429,
                    "too_many_attempts",
                    "too many failed sign-ins: wait and try again",
                    retry_after=max(1, round(left)),
                )

    def failed(self, username: str) -> None:
        for key, _ in self._keys(username):
            self.counter.hit(key, self.settings.SIGNIN_WINDOW_SECONDS)

    def succeeded(self, username: str) -> None:
        self.counter.clear(self._keys(username)[0][0])

    def verify(self, user: User | None, password: str) -> bool:
        """The password check with the same work for an unknown or disabled user, at
        most SIGNIN_MAX_CONCURRENT_HASHES at once (503 `busy` when none frees up)."""
        from server.auth import _hasher, verify_password

        if not self.hashing.acquire(timeout=HASH_WAIT_SECONDS):
            raise ApiError(503, "busy", "the server is busy: try again", retry_after=5)
        try:
            if user is None or not user.active:
                try:
                    _hasher.verify(_dummy_hash(), password)
                except Exception:  # noqa: BLE001, S110 - the answer is no in any case
                    pass
                return False
            return verify_password(user, password)
        finally:
            self.hashing.release()


def _dummy_hash() -> str:
    """An argon2 hash of a random secret, made once, with the real hashes' parameters."""
    if not _DUMMY:
        with _DUMMY_LOCK:
            if not _DUMMY:
                import secrets

                from server.auth import hash_password

                _DUMMY.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY[0]


def install(app: Flask) -> None:
    app.extensions["fieldvisit.signin"] = SignInGuard(app.config["FV"])


def guard() -> SignInGuard:
    return current_app.extensions["fieldvisit.signin"]


def sign_in_check(username: str, user: User | None, password: str) -> bool:
    """The whole check of a sign-in: the limits, the password (equal work), the counts.
    True when the user may sign in; raises 429 / 503 as above."""
    g = guard()
    g.check(username)
    ok = g.verify(user, password) and user is not None and user.active
    if ok:
        g.succeeded(username)
    else:
        g.failed(username)
    return ok


def find_user(session: Any, username: str) -> User | None:
    """The user of a typed user name, or None. A name no database could hold (a NUL, which
    PostgreSQL refuses in text, or longer than the column) is nobody: it is not sent to
    the database, and sign_in_check then answers as for any unknown name."""
    from sqlalchemy import select

    if not username or "\x00" in username or len(username) > 64:
        return None
    return session.scalar(select(User).where(User.username == username))
