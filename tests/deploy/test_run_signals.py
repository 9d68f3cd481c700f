"""`fieldvisit run` stops everything it started, and refuses a port that is taken.

A service manager or `kill` sends SIGTERM to the one process it started; gunicorn, its
workers, the Celery worker, its pool and its beat must all go with it, and the port
must be free afterwards. Each test runs `fieldvisit run` as the session leader of a
session of its own, so every process it ever started is found by its session id, even
one that was orphaned and adopted by init.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.conftest import BIN, clean_env, free_port, wait_for, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def session_members(sid: int) -> dict[int, str]:
    """Every live process of session `sid` (zombies excluded): pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            found[int(entry.name)] = cmdline.strip()
    return found


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_run(spawn, tmp_path: Path, port: int):  # noqa: ANN001, ANN201
    run = spawn(
        [str(BIN / "fieldvisit"), "run", "--port", str(port)],
        clean_env(DATA_DIR=str(tmp_path / "data")),
        cwd=tmp_path,
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", run, timeout=60)
    wait_for(lambda: "fieldvisit is running at" in run.output(), 20, "the running line")
    return run


def test_sigterm_to_the_command_alone_stops_gunicorn_worker_and_beat(tmp_path, spawn) -> None:
    port = free_port()
    run = start_run(spawn, tmp_path, port)
    sid = run.popen.pid
    # the Celery worker and its pool (and its beat) come up after the web
    wait_for(lambda: " ready." in run.output(), 60, "the Celery worker to be ready")
    members = session_members(sid)
    commands = " | ".join(members.values())
    assert "fieldvisit serve" in commands and "celery" in commands, commands
    assert len(members) >= 4, members  # run, gunicorn master + workers, celery (+ pool)

    started = time.monotonic()
    os.kill(run.popen.pid, signal.SIGTERM)  # the command only, not its group
    assert run.popen.wait(timeout=45) == 0, run.output()[-3000:]
    assert time.monotonic() - started < 40
    assert "SIGTERM, stopping" in run.output()
    wait_for(lambda: not session_members(sid), 10, "every child to be gone")
    assert port_is_free(port)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_child_that_dies_stops_the_rest_and_fails_the_command(tmp_path, spawn) -> None:
    port = free_port()
    run = start_run(spawn, tmp_path, port)
    sid = run.popen.pid
    (master,) = [
        pid
        for pid, cmd in session_members(sid).items()
        if "fieldvisit serve" in cmd and os.getpgid(pid) == pid
    ]
    os.killpg(master, signal.SIGKILL)  # the web and its workers, as an OOM kill would
    assert run.popen.wait(timeout=45) == 1, run.output()[-3000:]
    assert "web (gunicorn) exited on its own" in run.output()
    wait_for(lambda: not session_members(sid), 10, "the worker to be stopped too")


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_port_that_is_taken_is_refused(tmp_path, command: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(BIN / "fieldvisit"), command, "--port", str(port)],
            env=clean_env(DATA_DIR=str(tmp_path / "data")),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "choose another port (--port, or PORT=5001 scripts/run)" in done.stderr
    assert "running at" not in done.stdout
    # refused before anything was set up
    assert not (tmp_path / "data" / "fieldvisit.db").exists()
