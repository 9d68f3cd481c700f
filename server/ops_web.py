"""The ops page: background work that waits, failed, or was set aside (admins only).

The same figures as ``GET /api/admin/queue``, for a person: the outbox's pending rows
and the age of the oldest, the broker's queue, recent failures, and the dead rows
(failed OUTBOX_MAX_ATTEMPTS times) each with its error and a 重试 (retry) button.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, url_for

from server.api.ops import broker_status, outbox_status
from server.extensions import db
from server.models import Role
from server.web import web_login_required
from worker.outbox import retry as retry_row

log = logging.getLogger(__name__)
bp = Blueprint("ops_web", __name__)


def register(app: Flask) -> None:
    """Attach the ops page (the web sign-in is registered by the briefing pages)."""
    app.register_blueprint(bp)


@bp.get("/admin/queue")
@web_login_required(Role.ADMIN.value)
def queue():  # noqa: ANN201
    """Outbox and broker at a glance; dead rows with a retry button."""
    status = outbox_status(db.session)
    broker = broker_status(current_app.config["FV"])
    db.session.rollback()
    return render_template("ops/queue.html", outbox=status, broker=broker)


@bp.post("/admin/queue/<int:outbox_id>/retry")
@web_login_required(Role.ADMIN.value)
def retry(outbox_id: int):  # noqa: ANN201
    """Make a dead row due again; the next drain (every 10 s) takes it."""
    row = retry_row(db.session, outbox_id)
    if row is None:
        db.session.rollback()
        flash(f"没有待处理的任务 #{outbox_id}", "error")
    else:
        db.session.commit()
        log.info("outbox row retried", extra={"outbox_id": outbox_id})
        flash(f"任务 #{outbox_id} 将在下一次处理时重试", "ok")
    return redirect(url_for("ops_web.queue"))
