"""The `fieldvisit` command: database, reference and demo data, users, serving."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

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
    if user.id is not None:
        from server.sessions import end_sessions

        end_sessions(user)  # a password reset ends every session and token of the user
    user.password_hash = hash_password(password)
    db.session.commit()
    click.echo(f"user {username} ({role}) saved")


@main.command("disable-user")
@click.argument("username")
@with_appcontext
def disable_user_cmd(username: str) -> None:
    """Disable an account: it cannot sign in, and every session and token of it ends."""
    from server.sessions import disable_user

    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.BadParameter(f"no user {username!r}", param_hint="USERNAME")
    disable_user(user)
    db.session.commit()
    click.echo(f"user {username} disabled; every session and device token ended")


@main.command("erase-personal")
@with_appcontext
def erase_personal_cmd() -> None:
    """Erase the personal fields of home visits deleted more than
    HOME_VISIT_RETENTION_DAYS ago (the beat does it every 6 hours); amounts and dates stay."""
    from flask import current_app

    from server.privacy import erase_deleted_home_visits

    days = current_app.config["FV"].HOME_VISIT_RETENTION_DAYS
    erased = erase_deleted_home_visits(db.session, days)
    db.session.commit()
    click.echo(f"erased the personal fields of {erased} home visits deleted over {days} days ago")
    from server.attachments import run_retention
    from server.attachments_store import store_from_settings

    settings = current_app.config["FV"]
    purged = run_retention(db.session, store_from_settings(settings), settings)
    click.echo(
        f"removed {purged.attachments} attachments of records deleted over "
        f"{settings.ATTACHMENT_RETENTION_DAYS} days ago ({purged.blobs} stored files no "
        f"longer used) and {purged.uploads} uploads"
    )


@main.command("enable-user")
@click.argument("username")
@with_appcontext
def enable_user_cmd(username: str) -> None:
    """Let a disabled account sign in again (old sessions stay ended)."""
    from server.sessions import enable_user

    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.BadParameter(f"no user {username!r}", param_hint="USERNAME")
    enable_user(user)
    db.session.commit()
    click.echo(f"user {username} enabled")


def _lookup(model, code: str | None, hint: str):  # noqa: ANN001, ANN202
    if not code:
        return None
    obj = db.session.scalar(select(model).where(model.code == code))
    if obj is None:
        raise click.BadParameter(f"no such code {code!r}", param_hint=hint)
    return obj


@main.command("load-demo")
@click.option("--visits", default=60, show_default=True, help="How many demo visits.")
@click.option(
    "--allow-production",
    is_flag=True,
    help="Load it even with FIELDVISIT_ENV=production (a throw-away demo server only).",
)
@with_appcontext
def load_demo_cmd(visits: int, allow_production: bool) -> None:
    """Load fictional demo users, enterprises and visits (idempotent) and print the login."""
    from server.demo import DEMO_PASSWORD, DemoRefused, load_demo, refuse_in_production

    try:
        refuse_in_production(current_app.config["FV"], allow_production)
    except DemoRefused as exc:
        raise click.ClickException(str(exc)) from None
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

    ensure_port_free(host, port)

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
    """The embedded default: database, demo data, web app, Celery worker and beat.

    The web (gunicorn) and the worker (Celery, with its beat) run as child processes,
    each in a process group of its own. SIGTERM, SIGINT (Ctrl-C) and SIGHUP stop them
    all: each child gets SIGTERM (and stops its own workers), and whatever is left of a
    child's group after the grace period gets SIGKILL, so no gunicorn or Celery process
    outlives this command. A port that is
    taken is refused before anything starts; a child that exits on its own stops the
    others and this command exits 1.
    """
    from server.demo import DEMO_PASSWORD, load_demo

    ensure_port_free(host, port)
    upgrade_database()
    if current_app.config["FV"].is_production:
        click.echo("production configuration: no demo data loaded")
    else:
        load_demo(db.session)
        db.session.commit()
    data_dir = current_app.config["FV"].DATA_DIR
    db.session.remove()
    env = dict(os.environ, DATA_DIR=data_dir)
    exe = os.path.dirname(sys.executable)
    children = Children()
    with children.stopping_on_signals():
        children.start(
            "web (gunicorn)",
            [os.path.join(exe, "fieldvisit"), "serve", "--host", host, "--port", str(port)],
            env,
        )
        if _has_worker():
            children.start(
                "worker (celery)",
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
                env,
            )
        if children.wait_listening(host, port, timeout=60):
            click.echo(f"\nfieldvisit is running at http://{host}:{port}/")
            if not current_app.config["FV"].is_production:
                click.echo(
                    f"demo login: user 'demo' password '{DEMO_PASSWORD}'  "
                    f"(coordinator: 'coordinator' / '{DEMO_PASSWORD}')"
                )
            click.echo("Ctrl-C (or SIGTERM) stops everything.\n")
            children.watch()
    failed = children.failed
    if failed:
        raise click.ClickException(f"{failed}; everything else was stopped")


def ensure_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on, with a message saying what to do.

    Bound the way gunicorn binds (SO_REUSEADDR), so a port left in TIME_WAIT by a
    server that just stopped counts as free, as it does for gunicorn.
    """
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}. "
                "Another program (or another fieldvisit) is using the port: stop it, or "
                "choose another port (--port, or PORT=5001 scripts/run)."
            ) from None


class _Stop(Exception):
    """Raised in the main thread by a stop signal."""


class Children:
    """The child processes of `fieldvisit run`, each in a process group of its own."""

    GRACE = 20.0  # seconds a child may take to stop after SIGTERM (Celery's warm shutdown)

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.failed: str | None = None
        self.stopping = False

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        # process_group=0: the child leads a group of its own, so its own children
        # (gunicorn's workers, Celery's pool and beat) can be signalled with it, and a
        # terminal's Ctrl-C reaches only this process, which stops them in order.
        self.procs.append((name, subprocess.Popen(args, env=env, process_group=0)))

    @contextlib.contextmanager
    def stopping_on_signals(self) -> Iterator[None]:
        def handler(signum: int, frame: object) -> None:
            if not self.stopping:
                raise _Stop(signal.Signals(signum).name)

        stops = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {s: signal.signal(s, handler) for s in stops}
        try:
            yield
        except _Stop as stop:
            click.echo(f"fieldvisit: {stop}, stopping the web and the worker...", err=True)
        finally:
            self.stopping = True
            try:
                self.stop_all()
            finally:
                for s, h in previous.items():
                    signal.signal(s, h)

    def _check(self) -> bool:
        for name, proc in self.procs:
            if proc.poll() is not None:
                self.failed = f"{name} exited on its own (exit status {proc.returncode})"
                return False
        return True

    def wait_listening(self, host: str, port: int, timeout: float) -> bool:
        """Wait until the web accepts connections; False if a child exited first."""
        import socket

        deadline = time.monotonic() + timeout
        while self._check():
            try:
                with socket.create_connection((host, port), timeout=1):
                    return True
            except OSError:
                if time.monotonic() > deadline:
                    self.failed = f"the web is not listening on {host}:{port} after {timeout:.0f} s"
                    return False
                time.sleep(0.2)
        return False

    def watch(self) -> None:
        while self._check():
            time.sleep(0.5)

    def stop_all(self) -> None:
        # SIGTERM to each leader (gunicorn's master, Celery's main process), as `docker
        # stop` does: each stops its own workers in order.
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.GRACE
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for _, proc in self.procs:
            # whatever is left of the group: a worker that hung, a leftover grandchild
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _has_worker() -> bool:
    import importlib.util

    return importlib.util.find_spec("worker.celery_app") is not None
