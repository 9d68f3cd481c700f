"""Fixtures for the deployment tests: real processes, free ports, fresh databases.

Every process these tests start runs in its own process group, and every wait is bounded;
the group is terminated (then killed) whatever the test's outcome.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import SETTINGS
from tests.conftest import scratch_pg_database, service_missing

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REDIS_TEST_URL = os.environ.get("FV_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
# Production secrets for the tests (long enough, not the defaults).
PROD_SECRETS = {
    "SECRET_KEY": "test-secret-key-0123456789abcdef",
    "ID_HASH_KEY": "test-id-hash-key-0123456789abcdef",
}


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**values: str) -> dict[str, str]:
    """os.environ without any fieldvisit setting, plus `values`.

    A developer's own DATABASE_URL or REDIS_URL must not leak into a process that a test
    means to run on the embedded defaults.
    """
    names = {s.name for s in SETTINGS}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(values)
    return env


class Proc:
    """A child process in its own process group, with its output in a file."""

    def __init__(
        self, args: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None
    ):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the whole group, SIGKILL after `grace` seconds."""
        try:
            if self.alive():
                os.killpg(self.popen.pid, signal.SIGTERM)
                try:
                    self.popen.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
            # children (gunicorn and Celery workers) may outlive their parent
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator:
    """Start processes that are always stopped at the end of the test."""
    procs: list[Proc] = []

    def start(args: list[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        proc = Proc(args, env, tmp_path / f"proc-{len(procs)}.log", cwd=cwd)
        procs.append(proc)
        return proc

    yield start
    for proc in reversed(procs):
        proc.stop()


def wait_http(url: str, proc: Proc, timeout: float = 30.0, status: int = 200) -> bytes:
    """Poll `url` until it answers `status`; fail with the process output otherwise."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if not proc.alive():
            pytest.fail(f"process exited ({proc.popen.returncode}):\n{proc.output()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == status:
                    return response.read()
                last = response.status
        except urllib.error.HTTPError as exc:
            last = exc.code
            if exc.code == status:
                return exc.read()
        except OSError as exc:
            last = exc
        time.sleep(0.25)
    pytest.fail(
        f"{url} did not answer {status} in {timeout}s (last: {last}):\n{proc.output()[-4000:]}"
    )


def wait_for(predicate, timeout: float, what: str, step: float = 0.5):  # noqa: ANN001, ANN201
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """An empty PostgreSQL database of its own (not migrated), dropped afterwards."""
    with scratch_pg_database("fv_deploy") as url:
        yield url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis database, emptied before and after the test."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        service_missing(f"Redis at {REDIS_TEST_URL}")
    client.flushdb()
    yield REDIS_TEST_URL
    client.flushdb()
    client.close()
