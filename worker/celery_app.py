"""The Celery application: same models and database as the web app.

Redis is the broker in production (REDIS_URL); with no Redis configured the broker is a
SQLite file (kombu's SQLAlchemy transport) — the same tasks, no server needed. The app
is built lazily on first attribute access (`celery -A worker.celery_app` finds
`celery_app` through the module's __getattr__), so importing this module reads no
settings.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import Celery, Task
from celery.schedules import crontab
from celery.signals import worker_process_init

from config.settings import Settings, load_settings

log = logging.getLogger(__name__)

TASK_DEFAULTS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (Exception,),
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
    "soft_time_limit": 240,
    "time_limit": 300,
}


def cron(expr: str) -> crontab:
    """A crontab from a five-field cron expression (a setting)."""
    minute, hour, day_of_month, month_of_year, day_of_week = expr.split()
    return crontab(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
    )


def make_celery(settings: Settings | None = None) -> Celery:
    """Build the Celery app bound to a Flask app (tasks run inside its app context)."""
    from server.app import create_app
    from server.extensions import db

    settings = settings or load_settings()
    flask_app = create_app(settings)

    class FlaskTask(Task):
        """Runs every task in the Flask app context; the session is removed afterwards."""

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with flask_app.app_context():
                try:
                    return self.run(*args, **kwargs)
                finally:
                    db.session.remove()

    app = Celery("fieldvisit", task_cls=FlaskTask)
    app.conf.update(
        broker_url=settings.broker_url,
        result_backend=settings.result_backend,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        result_expires=3600,
        timezone=settings.TIMEZONE,
        enable_utc=True,
        beat_schedule={
            "drain-outbox": {"task": "worker.tasks.drain_outbox", "schedule": 10.0},
            "dedup-full-pass": {
                "task": "worker.tasks.dedup_full_pass",
                "schedule": cron(settings.DEDUP_FULL_PASS_CRON),
            },
            # Weekly briefings at BRIEFING_CRON, read in TIMEZONE (app.conf.timezone).
            "briefings-weekly": {
                "task": "worker.tasks.briefings_scheduled",
                "schedule": cron(settings.BRIEFING_CRON),
                "kwargs": {"kind": "week"},
            },
            "briefings-sweep": {"task": "worker.tasks.briefings_sweep", "schedule": 300.0},
            # 催报 reminders a click queued and a broker outage or a dead worker left.
            "report-reminders-sweep": {
                "task": "worker.tasks.report_reminders_send",
                "schedule": 300.0,
            },
            # Retention (server/privacy.py): deleted home visits' personal fields erased
            # four times a day (idempotent; the period is in days).
            "erase-personal-data": {
                "task": "worker.tasks.erase_personal_data",
                "schedule": 6 * 3600.0,
            },
            # Deadline reminders and digests (server/reminders.py); idempotent.
            "deadline-reminders": {
                "task": "worker.tasks.deadline_reminders",
                "schedule": float(settings.REMINDER_INTERVAL_SECONDS),
            },
        },
        beat_schedule_filename=f"{settings.DATA_DIR}/celerybeat-schedule",
    )
    app.flask_app = flask_app  # type: ignore[attr-defined]
    app.autodiscover_tasks(["worker"], related_name="tasks", force=True)
    return app


@lru_cache(maxsize=1)
def get_celery() -> Celery:
    """The process-wide Celery app, built from the environment on first use."""
    return make_celery()


def __getattr__(name: str) -> Any:
    if name in ("celery_app", "app"):
        return get_celery()
    raise AttributeError(name)


@worker_process_init.connect
def _dispose_engine_after_fork(**kwargs: Any) -> None:
    """A forked worker must not share the parent's database connections."""
    from server.extensions import db

    app = get_celery()
    with app.flask_app.app_context():  # type: ignore[attr-defined]
        db.engine.dispose()
