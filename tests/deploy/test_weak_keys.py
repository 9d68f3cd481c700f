"""Production refuses weak keys and demo data (issue 13, item 9).

Weak: too short, a well-known placeholder, one character repeated, a short pattern
repeated, a run of neighbouring characters, or SECRET_KEY equal to ID_HASH_KEY. The
refusal names the setting, at load_settings(), create_app() and on the command line.
`fieldvisit load-demo` refuses a production configuration unless --allow-production.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from config.settings import SettingsError, load_settings, weak_key_reason
from tests.conftest import scratch_pg_database
from tests.deploy.conftest import BIN, PROD_SECRETS, clean_env

PROD = {
    "FIELDVISIT_ENV": "production",
    **PROD_SECRETS,
    "DATABASE_URL": "postgresql+psycopg://fieldvisit@db/fieldvisit",
}
WEAK = [
    ("0" * 64, "one character repeated"),
    ("0" * 16, "one character repeated"),
    ("ab" * 16, "repeats a pattern of 2 characters"),
    ("s3cr3t!" * 5, "repeats a pattern of 7 characters"),
    ("0123456789abcdef" * 2, "repeats a pattern of 16 characters"),
    ("0123456789abcdefghijklmnopqrstuv", "run of neighbouring characters"),
    ("please-change-me-2026", "placeholder 'change-me'"),
    ("CHANGEME-CHANGEME-CHANGEME-x1", "placeholder 'changeme'"),
    ("dev-secret-change-me", "placeholder"),
    ("aaaabbbbccccdddd", "only 4 different characters"),
    ("short-key", "has 9 characters"),
]


@pytest.mark.parametrize("name", ["SECRET_KEY", "ID_HASH_KEY"])
@pytest.mark.parametrize(("key", "why"), WEAK)
def test_production_refuses_a_weak_key_and_names_it(name: str, key: str, why: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env={**PROD, name: key})
    message = str(err.value)
    assert message.startswith(f"{name}:") and why in message, message
    assert key not in message  # the refusal never prints the key itself


@pytest.mark.parametrize(("key", "why"), WEAK)
def test_development_accepts_any_key(key: str, why: str) -> None:
    settings = load_settings(env={"SECRET_KEY": key, "ID_HASH_KEY": key})
    assert settings.SECRET_KEY == key


def test_production_refuses_equal_keys() -> None:
    key = secrets.token_hex(32)
    with pytest.raises(SettingsError, match="^SECRET_KEY: must differ from ID_HASH_KEY"):
        load_settings(env={**PROD, "SECRET_KEY": key, "ID_HASH_KEY": key})


def test_generated_keys_always_pass() -> None:
    """What docs and .env.example tell people to run never trips the checks: 20,000
    keys of each kind, the shortest allowed length included."""
    for _ in range(20_000):
        for key in (secrets.token_hex(8), secrets.token_hex(32), secrets.token_urlsafe(24)):
            assert weak_key_reason(key) is None, key
    settings = load_settings(
        env={**PROD, "SECRET_KEY": secrets.token_hex(32), "ID_HASH_KEY": secrets.token_hex(32)}
    )
    assert settings.is_production


def test_create_app_refuses_a_weak_key(tmp_path) -> None:
    from server.app import create_app

    with pytest.raises(SettingsError, match="^ID_HASH_KEY: .*one character repeated"):
        create_app(
            FIELDVISIT_ENV="production",
            DATA_DIR=str(tmp_path),
            SECRET_KEY=PROD_SECRETS["SECRET_KEY"],
            ID_HASH_KEY="0" * 64,
            DATABASE_URL=PROD["DATABASE_URL"],
        )


def _cli(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "fieldvisit"), *args],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=120,
        env=clean_env(DATA_DIR=str(tmp_path), **env),
    )


def test_cli_refuses_weak_keys_before_touching_the_database(tmp_path) -> None:
    done = _cli(
        tmp_path,
        "init-db",
        FIELDVISIT_ENV="production",
        ALLOW_SQLITE_IN_PRODUCTION="true",
        SECRET_KEY="0" * 64,
        ID_HASH_KEY=PROD_SECRETS["ID_HASH_KEY"],
    )
    assert done.returncode != 0
    assert "SECRET_KEY: production needs a random key" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "fieldvisit.db").exists()


@pytest.fixture(params=["sqlite", "postgresql"])
def prod_db(request, tmp_path) -> Iterator[dict[str, str]]:
    """A production configuration on each backend (SQLite explicitly allowed)."""
    env = {"FIELDVISIT_ENV": "production", **PROD_SECRETS}
    if request.param == "sqlite":
        yield {**env, "ALLOW_SQLITE_IN_PRODUCTION": "true"}
    else:
        with scratch_pg_database("fv_demo") as url:
            yield {**env, "DATABASE_URL": url}


def _users(tmp_path, env: dict[str, str]) -> list[str]:
    url = env.get("DATABASE_URL") or f"sqlite:///{tmp_path / 'fieldvisit.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(sa.text("SELECT username FROM users ORDER BY username")))
    finally:
        engine.dispose()


def test_load_demo_refuses_production_unless_allowed(tmp_path, prod_db) -> None:
    assert _cli(tmp_path, "init-db", **prod_db).returncode == 0
    refused = _cli(tmp_path, "load-demo", **prod_db)
    assert refused.returncode != 0
    assert "FIELDVISIT_ENV=production" in refused.stderr and "--allow-production" in refused.stderr
    assert "Traceback" not in refused.stderr, refused.stderr
    assert _users(tmp_path, prod_db) == []  # no admin/demo-2012 on the production database
    allowed = _cli(tmp_path, "load-demo", "--visits", "3", "--allow-production", **prod_db)
    assert allowed.returncode == 0, allowed.stderr
    assert "admin" in _users(tmp_path, prod_db)


def test_load_demo_in_development_needs_no_flag(tmp_path) -> None:
    assert _cli(tmp_path, "init-db").returncode == 0
    done = _cli(tmp_path, "load-demo", "--visits", "3")
    assert done.returncode == 0, done.stderr
    assert "demo" in _users(tmp_path, {})
