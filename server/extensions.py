"""Unbound Flask extensions, initialised in the app factory."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base with constraint names Alembic can rely on."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


def for_dialect(dialect_name: str):  # noqa: ANN201
    """Alembic's `include_object` for autogenerate against `dialect_name`: an index
    declared for one dialect only (`Index(...).ddl_if(dialect=...)`, the SQLite
    statistics indexes in server/models.py) is not missing on the others. (Alembic
    itself skips, with a warning, SQLite's index on expressions, which SQLAlchemy
    cannot reflect; tests/server/test_migrations.py checks that one by its SQL.)"""

    def include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001, ANN202
        if type_ != "index" or reflected:
            return True
        ddl_if = getattr(obj, "_ddl_if", None)
        return ddl_if is None or ddl_if.dialect is None or ddl_if.dialect == dialect_name

    return include_object


def _sqlite_from_hint(self, table, text):  # noqa: ANN001, ANN202
    return text


# SQLAlchemy renders `Select.with_hint(...)` only for dialects that define table hints;
# its SQLite dialect does not, though SQLite has one: `INDEXED BY <index>`. With this a
# query can pin the statistics indexes the planner would not pick without ANALYZE data
# (worker/briefing/compute.py, server/coordination/dashboard.py); hints for SQLite are
# ignored by every other dialect, as SQLAlchemy ignores any dialect's hints on others.
SQLiteCompiler.get_from_hint_text = _sqlite_from_hint
