"""Settings: the generated docs page, the production refusals, and failing fast.

docs/settings.md is written by `settings_markdown()`; when this test fails after a
setting changed, regenerate the page:

    .venv/bin/python -c "from config.settings import settings_markdown as m; \
open('docs/settings.md', 'w').write(m())"
"""

from __future__ import annotations

import subprocess

import pytest

from config.settings import DEFAULT_SECRET, SettingsError, load_settings, settings_markdown
from tests.deploy.conftest import BIN, PROD_SECRETS, REPO, clean_env

PROD = {
    "FIELDVISIT_ENV": "production",
    **PROD_SECRETS,
    "DATABASE_URL": "postgresql+psycopg://fieldvisit@db/fieldvisit",
}


def test_docs_settings_page_is_generated_from_the_code() -> None:
    page = (REPO / "docs" / "settings.md").read_text()
    assert page == settings_markdown(), (
        "docs/settings.md is out of date: regenerate it from settings_markdown() "
        "(see this module's docstring)"
    )


def test_a_sound_production_configuration_loads() -> None:
    settings = load_settings(env=PROD)
    assert settings.is_production
    assert settings.database_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SECRET_KEY": DEFAULT_SECRET}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"ID_HASH_KEY": "dev-id-hash-key"}, "ID_HASH_KEY"),
        ({"DEBUG": "true"}, "DEBUG"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:////data/fieldvisit.db"}, "DATABASE_URL"),
    ],
)
def test_production_refuses_unsafe_settings(change: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env={**PROD, **change})
    assert str(err.value).startswith(named)


def test_production_on_sqlite_when_explicitly_allowed() -> None:
    settings = load_settings(env={**PROD, "DATABASE_URL": "", "ALLOW_SQLITE_IN_PRODUCTION": "true"})
    assert settings.database_url.startswith("sqlite:///")


def test_secrets_are_not_required_in_development() -> None:
    settings = load_settings(env={})
    assert settings.SECRET_KEY == DEFAULT_SECRET and not settings.is_production


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("SYNC_MAX_BATCH", "abc", "expected an integer"),
        ("DEBUG", "maybe", "expected true/false"),
        ("DEDUP_AUTO_THRESHOLD", "high", "expected a number"),
        ("SMTP_SECURITY", "ssl", "expected starttls, tls or none"),
        ("SYNC_PULL_MAX", "0", "must be at least 1"),
        ("FIELDVISIT_ENV", "prod", "expected development or production"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, raw: str, expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env={name: raw})
    message = str(err.value)
    assert message.startswith(name) and expected in message, message


def test_create_app_fails_fast(tmp_path) -> None:
    from server.app import create_app

    with pytest.raises(SettingsError, match="^SECRET_KEY"):
        create_app(FIELDVISIT_ENV="production", DATA_DIR=str(tmp_path))
    with pytest.raises(SettingsError, match="^DEBUG"):
        create_app(FIELDVISIT_ENV="production", DEBUG=True, DATA_DIR=str(tmp_path), **PROD_SECRETS)
    with pytest.raises(SettingsError, match="^DATABASE_URL"):
        create_app(FIELDVISIT_ENV="production", DATA_DIR=str(tmp_path), **PROD_SECRETS)


def _run_cli(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "fieldvisit"), *args],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=60,
        env=clean_env(DATA_DIR=str(tmp_path), **env),
    )


def test_cli_refuses_the_default_secret_in_production(tmp_path) -> None:
    """What `fieldvisit init-db` (the migrate service) says with a forgotten .env."""
    done = _run_cli(tmp_path, "init-db", FIELDVISIT_ENV="production")
    assert done.returncode != 0
    assert "SECRET_KEY" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "fieldvisit.db").exists()  # refused before touching anything


def test_cli_names_a_malformed_variable(tmp_path) -> None:
    done = _run_cli(tmp_path, "init-db", SYNC_MAX_BATCH="abc")
    assert done.returncode != 0
    assert "SYNC_MAX_BATCH='abc': expected an integer" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_serve_refuses_before_starting_gunicorn(tmp_path) -> None:
    """The web service with a forgotten .env exits at once, not with workers failing to boot."""
    done = _run_cli(tmp_path, "serve", "--port", "1", "--workers", "1", FIELDVISIT_ENV="production")
    assert done.returncode != 0
    assert "SECRET_KEY" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_the_schedules_follow_the_timezone_setting(tmp_path) -> None:
    """The beat reads every cron setting in TIMEZONE, and the docs say so."""
    from celery.schedules import crontab

    from config.settings import SETTINGS, load_settings
    from worker.celery_app import make_celery

    crons = [s for s in SETTINGS if s.name.endswith("_CRON")]
    assert crons
    for setting in crons:
        assert "in TIMEZONE" in setting.doc and "Asia/Shanghai" not in setting.doc, setting
    app = make_celery(load_settings({"DATA_DIR": str(tmp_path), "TIMEZONE": "Europe/Berlin"}))
    assert app.conf.timezone == "Europe/Berlin"
    schedules = [e["schedule"] for e in app.conf.beat_schedule.values()]
    nightly = [s for s in schedules if isinstance(s, crontab)]
    assert len(nightly) == len(crons)
    for schedule in nightly:
        schedule.app = app
        assert str(schedule.tz) == "Europe/Berlin"
