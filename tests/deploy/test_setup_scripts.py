"""scripts/setup and scripts/run: the lock, installing only when something changed, ports.

scripts/setup is run for real in a copy of the repository's top level whose .venv holds a
stand-in `python` that records every call, so the test sees exactly when pip would run
without touching the package index or the project's own .venv.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.deploy.conftest import BIN, REPO, clean_env


def pins() -> dict[str, str]:
    """constraints.txt as {normalised name: version}; every line is name==version."""
    found = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
        assert match, f"constraints.txt: not an exact pin: {line!r}"
        found[_norm(match[1])] = match[2]
    return found


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def needed(root: str = "fieldvisit", extras: tuple[str, ...] = ("test",)) -> set[str]:
    """Every distribution fieldvisit[test] pulls in, transitively, in this environment."""
    seen: set[str] = set()
    todo = [(root, set(extras))]
    while todo:
        name, wanted = todo.pop()
        dist = metadata.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            key = (_norm(req.name), frozenset(req.extras))
            if key in seen:
                continue
            seen.add(key)
            todo.append((req.name, set(req.extras)))
    return {name for name, _ in seen}


def test_the_lock_pins_every_package_the_project_installs_at_its_installed_version() -> None:
    locked = pins()
    assert "fieldvisit" not in locked  # the project itself is never pinned
    missing = sorted(needed() - set(locked))
    assert not missing, f"not in constraints.txt (run scripts/lock): {missing}"
    differ = {
        name: (locked[name], metadata.version(name))
        for name in needed()
        if metadata.version(name) != locked[name]
    }
    assert not differ, f"constraints.txt differs from .venv (lock, installed): {differ}"
    assert "pip" in locked


def test_setup_and_the_image_install_from_the_lock() -> None:
    setup = (REPO / "scripts" / "setup").read_text()
    installs = [line.strip() for line in setup.splitlines() if "pip install" in line]
    assert len(installs) == 3, installs
    # the runtime packages hash-checked, as in the image; pip and the test tools pinned
    assert installs[1].endswith(
        "pip install --quiet --require-hashes --no-deps -r requirements.lock"
    )
    assert all("-c constraints.txt" in line for line in (installs[0], installs[2]))
    assert "requirements.lock" in re.search(r"^want=.*$", setup, re.M).group(0)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(
        r"^COPY pyproject\.toml constraints\.txt requirements\.lock \./$", dockerfile, re.M
    )
    installs = re.findall(r"pip install [^\\&\n]*", dockerfile)
    assert "pip install --require-hashes --no-deps -r requirements.lock" in [
        i.strip() for i in installs
    ]
    for line in installs:
        assert "--constraint constraints.txt" in line or "--no-deps" in line, line
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "constraints.txt" not in ignored and "*.txt" not in ignored


def test_the_image_lock_pins_every_runtime_package_with_a_hash() -> None:
    """requirements.lock: the runtime closure, same versions as constraints.txt, hashed."""
    text = (REPO / "requirements.lock").read_text()
    entries = re.findall(
        r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\\n    --hash=sha256:([0-9a-f]{64})$", text, re.M
    )
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(body) == 2 * len(entries), "every package on two lines: pin, then hash"
    locked = {_norm(name): version for name, version, _ in entries}
    runtime = needed(extras=())
    assert set(locked) == runtime, (sorted(runtime - set(locked)), sorted(set(locked) - runtime))
    constraints = pins()
    assert {n: v for n, v in locked.items() if constraints[n] != v} == {}


FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "{log}"
case "$1" in
  -VV) echo "Python 3.11.99 (stand-in)" ;;
  -m) touch "{venv}/bin/fieldvisit"; chmod +x "{venv}/bin/fieldvisit" ;;
esac
"""


@pytest.fixture
def top(tmp_path: Path) -> Path:
    """The repository's top level (scripts, pyproject.toml, the lock), with a stand-in venv."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("setup", "run"):
        shutil.copy2(REPO / "scripts" / name, root / "scripts" / name)
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy2(REPO / name, root / name)
    venv = root / ".venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(FAKE_PYTHON.format(log=tmp_path / "calls.log", venv=venv))
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return root


def pip_calls(top: Path) -> list[str]:
    log = top.parent / "calls.log"
    calls = [c for c in log.read_text().splitlines() if "pip" in c] if log.exists() else []
    log.unlink(missing_ok=True)
    return calls


def setup(top: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", str(top / "scripts" / "setup"), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_setup_installs_only_when_something_changed(top: Path) -> None:
    setup(top)
    first = pip_calls(top)
    assert first == [
        "-m pip install --quiet --disable-pip-version-check -c constraints.txt pip",
        "-m pip install --quiet -c constraints.txt -e .",
    ]
    setup(top)
    assert pip_calls(top) == []  # installed, nothing changed: no package index needed
    setup(top, "test")
    assert pip_calls(top)[-1] == "-m pip install --quiet -c constraints.txt -e .[test]"
    setup(top, "test")
    setup(top)  # the test install has everything a plain one has
    assert pip_calls(top) == []

    with open(top / "constraints.txt", "a") as lock:
        lock.write("example-new-package==1.0\n")
    setup(top)
    assert len(pip_calls(top)) == 2  # the lock changed
    (top / "pyproject.toml").write_text((top / "pyproject.toml").read_text() + "\n# edited\n")
    setup(top)
    assert len(pip_calls(top)) == 2  # a dependency may have changed
    (top / ".venv" / "bin" / "fieldvisit").unlink()
    setup(top)
    assert len(pip_calls(top)) == 2  # a broken install is repaired
    bad = subprocess.run(["bash", str(top / "scripts" / "setup"), "tset"], capture_output=True)
    assert bad.returncode == 2 and b"usage: scripts/setup [test]" in bad.stderr


def test_run_refuses_a_taken_port_without_reinstalling(top: Path, tmp_path: Path) -> None:
    setup(top)
    pip_calls(top)
    # the real command, as the stand-in install would have put it there
    fieldvisit = top / ".venv" / "bin" / "fieldvisit"
    fieldvisit.unlink()
    fieldvisit.symlink_to(BIN / "fieldvisit")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            ["bash", str(top / "scripts" / "run")],
            env=clean_env(PORT=str(port), HOST="127.0.0.1", DATA_DIR=str(tmp_path / "data")),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "running at" not in done.stdout
    assert pip_calls(top) == []  # started again without installing anything


def test_run_documents_host_port_and_data_dir() -> None:
    run = (REPO / "scripts" / "run").read_text()
    comments = "\n".join(line for line in run.splitlines() if line.startswith("#"))
    for name in ("PORT=", "HOST=", "DATA_DIR="):
        assert name in comments, name
    assert '"${HOST:-127.0.0.1}"' in run and '"${PORT:-5000}"' in run
    readme = (REPO / "README.md").read_text()
    assert "PORT=" in readme and "HOST=" in readme


@pytest.mark.skipif(os.environ.get("FV_FRESH_SETUP") != "1", reason="FV_FRESH_SETUP=1 only")
def test_a_fresh_clone_sets_up_from_the_lock(tmp_path: Path) -> None:
    """Slow and needs the package index: `git clone`, `scripts/setup test`, versions = lock."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    subprocess.run([str(clone / "scripts" / "setup"), "test"], check=True, timeout=1800)
    frozen = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    locked = pins()
    for line in frozen.splitlines():
        name, _, version = line.partition("==")
        assert locked.get(_norm(name)) == version, line
