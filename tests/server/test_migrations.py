"""The migrations build exactly the schema the models declare, on each backend."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext


def test_migrated_schema_matches_the_models(app):
    from server.extensions import db, for_dialect

    with db.engine.connect() as connection, warnings.catch_warnings():
        # SQLAlchemy cannot reflect SQLite's index on expressions, and Alembic skips it
        # (the next test checks it by its SQL)
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
        warnings.filterwarnings(
            "ignore", "autogenerate skipping metadata-specified expression-based index"
        )
        context = MigrationContext.configure(
            connection,
            opts={"include_object": for_dialect(db.engine.dialect.name), "compare_type": False},
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_sqlite_statistics_indexes_exist_only_on_sqlite(app):
    import sqlalchemy as sa

    from server.extensions import db
    from server.models import FOCUS_GROUPS, sqlite_focus_count

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
        names = {i["name"] for i in sa.inspect(db.engine).get_indexes("visits")}
    stats = {
        "ix_visits_day_stats",
        "ix_visits_group_stats",
        "ix_visits_enterprise_stats",
        "ix_visits_id_visited_at",
    }
    if db.engine.dialect.name == "sqlite":
        assert stats <= names
        assert "ix_visits_visited_at" not in names  # ix_visits_day_stats leads with it
        # the index on expressions, by its SQL: the queries must spell them the same way
        sql = db.session.scalar(
            sa.text("SELECT sql FROM sqlite_master WHERE name = 'ix_visits_stats'")
        )
        for group in FOCUS_GROUPS:
            assert sqlite_focus_count(group) in sql
    else:
        assert not (stats | {"ix_visits_stats"}) & names
        assert {"ix_visits_visited_at", "ix_visits_work_group_id"} <= names
    assert "ix_visits_version" not in names  # ix_visits_sync leads with the version
