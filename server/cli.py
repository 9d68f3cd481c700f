"""The `fieldvisit` command: database, reference and demo data, users, serving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from server.app import create_app
from server.extensions import db
from server.models import DistrictUnit, Role, User, WorkGroup


def _app(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    return create_app()


@click.group(cls=FlaskGroup, create_app=_app, add_default_commands=True)
def main() -> None:
    """fieldvisit (基层走访): field visits of a trade-union federation's campaign."""


def upgrade_database() -> None:
    """Apply every migration, then make sure the sync state row and reference data exist."""
    from flask_migrate import upgrade

    from server.reference import load_reference
    from sync.versioning import ensure_state

    upgrade(directory=current_app.extensions["migrate"].directory, revision="heads")
    ensure_state(db.session)
    load_reference(db.session)
    db.session.commit()


@main.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database and load reference data (idempotent)."""
    upgrade_database()
    click.echo(f"database ready: {_safe_url()}")


def _safe_url() -> str:
    return db.engine.url.render_as_string(hide_password=True)


@main.command("load-reference")
@with_appcontext
def load_reference_cmd() -> None:
    """Load district units and work groups from config/."""
    from server.reference import load_reference

    counts = load_reference(db.session)
    db.session.commit()
    click.echo(f"loaded {counts['districts']} district units, {counts['work_groups']} work groups")


@main.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", "display_name", default=None, help="Display name.")
@click.option("--district", default=None, help="District unit code, e.g. 510104.")
@click.option("--work-group", default=None, help="Work group code, e.g. WG01.")
@click.option("--email", default=None)
@click.password_option(envvar="FIELDVISIT_NEW_PASSWORD")
@with_appcontext
def create_user(
    username: str,
    role: str,
    display_name: str | None,
    district: str | None,
    work_group: str | None,
    email: str | None,
    password: str,
) -> None:
    """Create a user (or reset an existing user's password and role)."""
    from server.auth import hash_password

    if len(password) < 8:
        raise click.BadParameter("at least 8 characters", param_hint="--password")
    district_obj = _lookup(DistrictUnit, district, "--district")
    group_obj = _lookup(WorkGroup, work_group, "--work-group")
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username)
        db.session.add(user)
    user.display_name = display_name or username
    user.role = role
    user.district = district_obj
    user.work_group = group_obj
    user.email = email
    user.password_hash = hash_password(password)
    db.session.commit()
    click.echo(f"user {username} ({role}) saved")


def _lookup(model, code: str | None, hint: str):  # noqa: ANN001, ANN202
    if not code:
        return None
    obj = db.session.scalar(select(model).where(model.code == code))
    if obj is None:
        raise click.BadParameter(f"no such code {code!r}", param_hint=hint)
    return obj


@main.command("load-demo")
@click.option("--visits", default=60, show_default=True, help="How many demo visits.")
@with_appcontext
def load_demo_cmd(visits: int) -> None:
    """Load fictional demo users, enterprises and visits (idempotent) and print the login."""
    from server.demo import DEMO_PASSWORD, load_demo

    summary = load_demo(db.session, visits=visits)
    db.session.commit()
    click.echo(f"demo data: {summary}")
    click.echo(
        f"demo login: user 'demo' password '{DEMO_PASSWORD}' (field cadre, 锦江区); "
        f"'coordinator' / '{DEMO_PASSWORD}' sees every district"
    )


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--threads", default=4, show_default=True)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the web app and the PWA under gunicorn (the production WSGI server)."""
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread" if threads > 1 else "sync")
            self.cfg.set("timeout", 60)
            # A pull cursor or a long filter query fits: gunicorn's default (4094) answers
            # longer request lines with an HTML 414; 8190 is the most gunicorn allows.
            self.cfg.set("limit_request_line", 8190)
            self.cfg.set("accesslog", None)

        def load(self):  # noqa: ANN202
            return create_app()

    _Server().run()


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def run_all(host: str, port: int) -> None:
    """The embedded default: database, demo data, web app, Celery worker and beat."""
    from server.demo import DEMO_PASSWORD, load_demo

    upgrade_database()
    load_demo(db.session)
    db.session.commit()
    data_dir = current_app.config["FV"].DATA_DIR
    db.session.remove()
    env = dict(os.environ, DATA_DIR=data_dir)
    exe = os.path.dirname(sys.executable)
    procs = [
        subprocess.Popen(
            [os.path.join(exe, "fieldvisit"), "serve", "--host", host, "--port", str(port)], env=env
        )
    ]
    if _has_worker():
        procs.append(
            subprocess.Popen(
                [
                    os.path.join(exe, "celery"),
                    "-A",
                    "worker.celery_app",
                    "worker",
                    "--beat",
                    "--concurrency",
                    "1",
                    "--loglevel",
                    "INFO",
                    "-s",
                    os.path.join(data_dir, "celerybeat-schedule"),
                ],
                env=env,
            )
        )
    click.echo(f"\nfieldvisit is running at http://{host}:{port}/")
    click.echo(
        f"demo login: user 'demo' password '{DEMO_PASSWORD}'  "
        f"(coordinator: 'coordinator' / '{DEMO_PASSWORD}')"
    )
    click.echo("Ctrl-C stops everything.\n")
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def _has_worker() -> bool:
    import importlib.util

    return importlib.util.find_spec("worker.celery_app") is not None
