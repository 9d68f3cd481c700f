"""The migrations build exactly the schema the models declare, on each backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext


def test_migrated_schema_matches_the_models(app):
    from server.extensions import db, for_dialect

    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "include_object": for_dialect(db.engine.dialect.name), "compare_type": False})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_sqlite_statistics_indexes_exist_only_on_sqlite(app):
    import sqlalchemy as sa

    from server.extensions import db

    names = {i["name"] for i in sa.inspect(db.engine).get_indexes("visits")}
    stats = {"ix_visits_stats", "ix_visits_day_stats", "ix_visits_group_stats",
             "ix_visits_enterprise_stats", "ix_visits_id_visited_at"}
    if db.engine.dialect.name == "sqlite":
        assert stats <= names
        assert "ix_visits_visited_at" not in names  # ix_visits_day_stats leads with it
    else:
        assert not stats & names
        assert {"ix_visits_visited_at", "ix_visits_work_group_id"} <= names
    assert "ix_visits_version" not in names  # ix_visits_sync leads with the version
