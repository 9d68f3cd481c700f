"""Liveness and readiness for load balancers and orchestrators.

`/healthz`: the process answers. `/readyz`: this web process can serve requests — the
database answers and its schema is at the migrations' head. The broker (Redis) is
reported but does not fail readiness: a push is stored and its outbox row waits for the
workers, so a Redis outage must not take every web server out of the proxy.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from server.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # noqa: ANN201
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():  # noqa: ANN201
    """200 `ready` or `degraded` (the broker is down), 503 `not_ready` (the database)."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["migrations"] = migrations_status()
        db.session.rollback()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        db.session.rollback()
        checks.setdefault("database", f"error: {type(exc).__name__}")
        checks.setdefault("migrations", "unknown")
    checks["broker"] = broker_status(current_app.config["FV"])
    if checks["database"] != "ok" or checks["migrations"] != "ok":
        status, code = "not_ready", 503
    elif checks["broker"] != "ok":
        status, code = "degraded", 200
    else:
        status, code = "ready", 200
    return jsonify({"status": status, "checks": checks}), code


def migration_heads() -> frozenset[str]:
    """The head revisions of migrations/ (read once per process)."""
    heads = current_app.extensions.get("fieldvisit.migration_heads")
    if heads is None:
        from alembic.script import ScriptDirectory

        directory = current_app.extensions["migrate"].directory
        heads = frozenset(ScriptDirectory(directory).get_heads())
        current_app.extensions["fieldvisit.migration_heads"] = heads
    return heads


def migrations_status() -> str:
    """`ok` when the database is at every head; otherwise what it is at."""
    from sqlalchemy import inspect

    if not inspect(db.session.connection()).has_table("alembic_version"):
        return "error: not migrated (run fieldvisit init-db)"
    current = set(db.session.scalars(text("SELECT version_num FROM alembic_version")))
    heads = migration_heads()
    if current == heads:
        return "ok"
    shown = ", ".join(sorted(current)) or "none"
    return f"error: at {shown}, head is {', '.join(sorted(heads))} (run fieldvisit init-db)"


def broker_status(settings) -> str:  # noqa: ANN001
    """Can the broker be reached? Redis is pinged; the embedded broker is a local file."""
    if settings.REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
            ).ping()
            return "ok"
        except redis.RedisError as exc:
            return f"error: {type(exc).__name__}"
    return "ok"
