"""Shared fixtures: a real database per backend (SQLite file and PostgreSQL), the app,
clients signed in as users of each role.

Every run creates its own PostgreSQL database (so parallel runs never collide) and
drops it at the end. Under CI=true a missing PostgreSQL fails the tests that need it;
elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get(
    "FV_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "test-pass-123"
IN_CI = os.environ.get("CI", "").lower() == "true"


def service_missing(what: str) -> None:
    """Fail under CI, skip elsewhere: a test that needs a service never silently passes."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is not reachable")
    pytest.skip(f"{what} not reachable")


CHROMIUM = os.environ.get("FV_CHROMIUM", "/usr/bin/chromium")
# Debian's Chromium, never a downloaded browser; no background traffic off the machine.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        service_missing(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def playwright_instance(chromium_path: str):  # noqa: ANN201
    """One Playwright for the whole run: a second sync_playwright() cannot start while
    one is open, so every browser test shares this one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("python playwright")
    with sync_playwright() as p:
        yield p


def _backends() -> list[str]:
    wanted = os.environ.get("FV_TEST_BACKENDS", "sqlite,postgresql")
    return [b.strip() for b in wanted.split(",") if b.strip()]


@contextmanager
def scratch_pg_database(prefix: str) -> Iterator[str]:
    """An empty PostgreSQL database of its own, dropped afterwards (parallel runs never
    collide); a missing server fails under CI and skips elsewhere."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        service_missing("PostgreSQL at 127.0.0.1:5432")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run."""
    with scratch_pg_database("fv_test") as url:
        yield url


def make_app(database_url: str, data_dir: Path, **overrides):
    from server.app import create_app

    return create_app(
        DATA_DIR=str(data_dir),
        DATABASE_URL=database_url,
        LOG_JSON=False,
        LOG_LEVEL="WARNING",
        **overrides,
    )


@pytest.fixture(scope="session", params=_backends())
def _migrated(request, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A migrated database per backend, shared by the tests of the session."""
    data_dir = tmp_path_factory.mktemp(f"data-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'test.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    app = make_app(url, data_dir)
    with app.app_context():
        from server.cli import upgrade_database
        from server.extensions import db

        upgrade_database()
        db.engine.dispose()
    yield url, data_dir


def _clean(db) -> None:  # noqa: ANN001
    """Empty every table but the reference data, and reset the sync state."""
    from server.models import DistrictUnit, WorkGroup, work_group_districts

    keep = {
        DistrictUnit.__tablename__,
        WorkGroup.__tablename__,
        work_group_districts.name,
        "alembic_version",
    }
    tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in keep]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(
            sa.text(
                "TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " RESTART IDENTITY CASCADE"
            )
        )
    else:
        for table in tables:
            db.session.execute(table.delete())
    from sync.versioning import ensure_state

    ensure_state(db.session)
    db.session.commit()


@pytest.fixture
def app(_migrated):
    """The Flask app on a clean database (reference data loaded)."""
    url, data_dir = _migrated
    application = make_app(url, data_dir)
    with application.app_context():
        from server.extensions import db

        _clean(db)
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def db_session(app):
    from server.extensions import db

    return db.session


@pytest.fixture
def client(app):
    return app.test_client()


def create_user(username: str, role: str, district: str | None = None, group: str | None = None):
    """A user with PASSWORD (factory for tests)."""
    from sqlalchemy import select

    from server.auth import hash_password
    from server.extensions import db
    from server.models import DistrictUnit, User, WorkGroup

    user = User(
        username=username, display_name=username, role=role, password_hash=hash_password(PASSWORD)
    )
    if district:
        user.district = db.session.scalar(select(DistrictUnit).where(DistrictUnit.code == district))
    if group:
        user.work_group = db.session.scalar(select(WorkGroup).where(WorkGroup.code == group))
    db.session.add(user)
    db.session.commit()
    return user


class Phone:
    """A signed-in device speaking the sync protocol through the test client."""

    def __init__(self, client, username: str, device_id: str | None = None):
        self.client = client
        body = {"username": username, "password": PASSWORD}
        if device_id:
            body["device_id"] = device_id
        r = client.post("/api/auth/login", json=body)
        assert r.status_code == 200, r.json
        self.token, self.device_id = r.json["token"], r.json["device_id"]
        self.mid = 0
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def mutation(
        self,
        op: str,
        entity: str,
        record_id: str,
        fields: dict | None = None,
        base_version: int | None = None,
    ) -> dict:
        self.mid += 1
        m = {"mid": self.mid, "op": op, "entity": entity, "id": record_id, "fields": fields or {}}
        if base_version is not None:
            m["base_version"] = base_version
        return m

    def push(self, mutations: list[dict], protocol: int = 1):
        return self.client.post(
            "/api/sync/push",
            json={"protocol": protocol, "device_id": self.device_id, "mutations": mutations},
            headers=self.headers,
        )

    def pull_all(self, cursor: str | None = None, limit: int = 500) -> tuple[list[dict], str]:
        changes: list[dict] = []
        while True:
            url = f"/api/sync/pull?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            r = self.client.get(url, headers=self.headers)
            assert r.status_code == 200, r.json
            changes.extend(r.json["changes"])
            cursor = r.json["cursor"]
            if not r.json["has_more"]:
                return changes, cursor

    def get(self, url: str):
        return self.client.get(url, headers=self.headers)


def visit_fields(district: str = "510104", **extra) -> dict:
    """Valid fields of a new visit."""
    return {
        "method": "symposium",
        "visited_at": "2026-03-05T10:20:00+08:00",
        "district_code": district,
        "workers_met": 12,
        **extra,
    }
