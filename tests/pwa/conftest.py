"""End-to-end fixtures for the field app: a real server in a subprocess, real headless Chromium.

The server runs `fieldvisit init-db`, `load-demo` and `serve` on a free port with its own
DATA_DIR. Chromium is Debian's /usr/bin/chromium (never downloaded); under CI=true a
missing browser fails the tests, elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "screenshots"
DEMO_USER, DEMO_PASSWORD = "demo", "demo-2012"


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("fieldvisit")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from server.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running server: its base URL and a tiny API client for checking what arrived."""

    url: str
    data_dir: Path

    def call(
        self, method: str, path: str, body: dict | None = None, token: str | None = None
    ) -> dict:
        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
        )
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=30) as res:
            return json.loads(res.read())

    def login(self, username: str = DEMO_USER, password: str = DEMO_PASSWORD) -> str:
        return self.call("POST", "/api/auth/login", {"username": username, "password": password})[
            "token"
        ]

    def pull_all(self) -> list[dict]:
        """Every change in the demo cadre's scope, as a fresh device sees it."""
        token = self.login()
        cursor, out = None, []
        while True:
            q = "/api/sync/pull?limit=2000" + (f"&cursor={cursor}" if cursor else "")
            page = self.call("GET", q, token=token)
            out.extend(page["changes"])
            cursor = page["cursor"]
            if not page["has_more"]:
                return out


@pytest.fixture(scope="session")
def fv_server() -> Iterator[Server]:
    """Start `fieldvisit serve` on a free port with a fresh database and demo data."""
    data_dir = Path(tempfile.mkdtemp(prefix="fv-pwa-e2e-"))
    env = {**os.environ, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"}
    for cmd in (["init-db"], ["load-demo"]):
        subprocess.run(
            _cli() + cmd, env=env, cwd=ROOT, check=True, capture_output=True, timeout=120
        )
    port = _free_port()
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        _cli() + ["serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as res:
                    if res.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "server did not start: "
                    + (data_dir / "server.log").read_text(errors="replace")[-2000:]
                )
            time.sleep(0.2)
        yield Server(url=url, data_dir=data_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def launch(playwright_instance, chromium_path: str, tmp_path: Path) -> Iterator[Callable]:  # noqa: ANN001
    """Open a persistent browser profile (a phone); the same name reopens the same profile."""
    opened = []

    def _launch(profile: str = "phone", **kw):  # noqa: ANN202
        ctx = playwright_instance.chromium.launch_persistent_context(
            str(tmp_path / profile),
            executable_path=chromium_path,
            args=CHROMIUM_ARGS + kw.pop("args", []),
            viewport={"width": 360, "height": 740},
            device_scale_factor=1,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            accept_downloads=True,
            # The server's CSP (script-src 'self') refuses eval, which Playwright's
            # wait_for_function needs for its string predicates; the app uses none.
            bypass_csp=True,
            **kw,
        )
        ctx.set_default_timeout(20000)
        opened.append(ctx)
        return ctx

    yield _launch
    for ctx in opened:
        try:
            ctx.close()
        except Exception:  # noqa: BLE001 - already closed by the test
            pass


@pytest.fixture
def shot() -> Callable:
    """Save a 360x740 screenshot of the page under tests/screenshots/ (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def _shot(page, name: str) -> None:  # noqa: ANN001
        page.wait_for_timeout(150)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    return _shot


@pytest.fixture
def marker() -> str:
    """A unique text to find this test's records on the server."""
    return f"e2e-{uuid.uuid4().hex[:8]}"


class _Proxy:
    """A pass-through HTTP proxy in front of the server that can rewrite one file.

    Used to deploy "a new version" of the app to a browser without touching pwa/:
    the browser keeps the same origin, only the bytes of a file change.
    """

    def __init__(self, upstream: str) -> None:
        import http.server
        import threading

        self.upstream = upstream
        self.rewrites: dict[str, Callable[[bytes], bytes]] = {}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                req = urllib.request.Request(
                    proxy.upstream + self.path, data=body, method=self.command
                )
                skip = {"host", "connection", "content-length", "accept-encoding"}
                if self.path.split("?")[0] in proxy.rewrites:
                    skip |= {"if-none-match", "if-modified-since"}  # a 304 would hide the rewrite
                for k, v in self.headers.items():
                    if k.lower() not in skip:
                        req.add_header(k, v)
                try:
                    res = urllib.request.urlopen(req, timeout=60)  # noqa: S310 - local test server
                    status, headers, data = res.status, res.headers, res.read()
                except urllib.error.HTTPError as err:
                    status, headers, data = err.code, err.headers, err.read()
                path = self.path.split("?")[0]
                if path in proxy.rewrites and status == 200:
                    data = proxy.rewrites[path](data)
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in (
                        "transfer-encoding",
                        "connection",
                        "content-length",
                        "date",
                        "server",
                    ):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the browser went away (closed, or cut off by the test)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward  # noqa: N815

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(fv_server: Server) -> Iterator[_Proxy]:
    p = _Proxy(fv_server.url)
    yield p
    p.close()
