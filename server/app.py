"""The Flask application factory: settings, extensions, blueprints, the PWA's files."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from flask import Flask, g, request, send_from_directory
from sqlalchemy import event
from sqlalchemy.engine import Engine

from config.settings import ROOT, Settings, load_settings
from server.extensions import db, migrate
from server.logs import configure_logging, request_id_var

PWA_DIR = ROOT / "pwa"


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the web app; `overrides` replace individual settings (tests, CLI)."""
    settings = settings or load_settings(**overrides)
    Path(settings.DATA_DIR).mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, static_folder=None)
    app.config.update(
        FV=settings,
        SECRET_KEY=settings.SECRET_KEY,
        DEBUG=settings.DEBUG,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url),
        MAX_CONTENT_LENGTH=settings.SYNC_MAX_BODY,
        # The web pages' session cookie: never readable by scripts, not sent on
        # cross-site subrequests or posts, and only over HTTPS in production.
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False
    app.json.sort_keys = False  # pull pages of thousands of records: sorting costs
    configure_logging(settings.LOG_LEVEL, settings.LOG_JSON)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    import sync.versioning  # noqa: F401  (installs the version-stamping session hook)
    from server.errors import register_error_handlers

    register_error_handlers(app)
    _request_ids(app)
    from server.params import check_path_values

    app.before_request(check_path_values)

    from server.api import register_blueprints

    register_blueprints(app)
    from server import security

    security.install(app)  # CSP, nosniff, no framing, no-store... on every answer
    from server import signin, users_web

    signin.install(app)  # sign-in limits and the bound on concurrent password hashing

    users_web.register(app)  # /admin/users: disable an account, ending its sessions
    _pwa_routes(app)
    app.extensions["fieldvisit.outbox_kick"] = _outbox_kick(settings)
    return app


def _outbox_kick(settings: Settings) -> Any:
    """A function that asks the workers to drain the outbox now, never failing the request.

    If the broker is down the rows simply wait: the beat's periodic drain takes them.
    """
    import logging

    from celery import Celery

    log = logging.getLogger("fieldvisit.outbox")
    producer = Celery("fieldvisit-web", broker=settings.broker_url, set_as_current=False)
    options = (
        {"socket_connect_timeout": 1, "socket_timeout": 1, "max_retries": 0}
        if settings.REDIS_URL
        else {}
    )
    producer.conf.update(
        broker_connection_timeout=1, broker_connection_retry=False, broker_transport_options=options
    )

    def kick(request_id: str | None) -> None:
        try:
            producer.send_task(
                "worker.tasks.drain_outbox", kwargs={"request_id": request_id}, retry=False
            )
        except Exception as exc:  # noqa: BLE001 - the broker being down must not fail a push
            log.warning(
                "broker unavailable, outbox waits for the periodic drain: %s", type(exc).__name__
            )

    return kick


def _engine_options(url: str) -> dict[str, Any]:
    # hide_parameters: an error's text never carries the statement's values (a needy
    # worker's name or phone would otherwise reach the log with the SQL).
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}, "hide_parameters": True}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10, "hide_parameters": True}


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL and foreign keys on SQLite: readers never block the writer."""
    module = type(dbapi_connection).__module__
    if "sqlite" not in module:
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _request_ids(app: Flask) -> None:
    import logging

    log = logging.getLogger("fieldvisit.http")

    @app.before_request
    def _start() -> None:
        rid = request.headers.get("X-Request-ID", "")[:64] or str(uuid.uuid4())
        g.request_id = rid
        g.started = time.perf_counter()
        request_id_var.set(rid)

    @app.after_request
    def _finish(response):  # noqa: ANN001, ANN202
        response.headers["X-Request-ID"] = g.get("request_id", "")
        _gzip_json(response)
        if request.path.startswith("/api"):
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - g.started) * 1000, 1),
                },
            )
        return response


def _gzip_json(response: Any) -> None:
    """Compress JSON answers for clients that accept gzip: a pull page of a cadre's scope
    is mostly repeated keys, and field networks run at a few hundred kbit/s."""
    import gzip

    if (
        response.mimetype != "application/json"
        or response.direct_passthrough
        or "Content-Encoding" in response.headers
        or "gzip" not in request.headers.get("Accept-Encoding", "").lower()
    ):
        return
    body = response.get_data()
    if len(body) < 1400:  # fits one packet anyway
        return
    response.set_data(gzip.compress(body, 5))
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")


def _pwa_routes(app: Flask) -> None:
    """Serve pwa/ at the site root; the service worker may control the whole origin."""

    @app.get("/")
    def index():  # noqa: ANN202
        response = send_from_directory(PWA_DIR, "index.html", max_age=0)
        response.headers["Cache-Control"] = "no-cache"
        return response

    @app.get("/<path:path>")
    def pwa_file(path: str):  # noqa: ANN202
        if path.startswith("api/"):
            from werkzeug.exceptions import NotFound

            raise NotFound()
        response = send_from_directory(PWA_DIR, path, max_age=0)
        response.headers["Cache-Control"] = "no-cache"
        if path == "sw.js":
            response.headers["Service-Worker-Allowed"] = "/"
        if path.endswith(".webmanifest"):
            response.mimetype = "application/manifest+json"
        return response
