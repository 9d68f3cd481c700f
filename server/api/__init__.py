"""HTTP blueprints; imported only inside the app factory."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    """Attach every blueprint to the app."""
    from server.api import admin, auth, health, openapi, ops, records, reference, sync, uploads

    for module in (auth, reference, records, sync, uploads, admin, health, openapi, ops):
        app.register_blueprint(module.bp)
    __import__("server.briefing_web", fromlist=["register"]).register(app)  # briefings + /login
    __import__("server.review", fromlist=["register"]).register(app)  # dedup review queue
    __import__("server.coordination.web", fromlist=["register"]).register(app)  # coordination
    __import__("server.ops_web", fromlist=["register"]).register(app)  # background work
    __import__("server.sync_health_web", fromlist=["register"]).register(app)  # sync health
    __import__("server.nonreporters_web", fromlist=["register"]).register(app)  # 催报
    __import__("server.reminders_web", fromlist=["register"]).register(app)  # 督办 reminders
    __import__("server.status_web", fromlist=["register"]).register(app)  # 查询码 page
    __import__("server.attachments_web", fromlist=["register"]).register(app)  # photos
