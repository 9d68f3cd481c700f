"""hardening: a fingerprint of every pushed mutation (a reused mid is told apart from a
replay), a dead-letter mark on outbox rows that failed too often, and the problems and
home visits of visits deleted before 0006 deleted with them (deleting a visit now
deletes its children; phones pull the tombstones at a new version)

Revision ID: 0006_hardening
Revises: 0005_stats_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_hardening"
down_revision = "0005_stats_indexes"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("mutation_results") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(32), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    orphans = "deleted = :no AND visit_id IN (SELECT id FROM visits WHERE deleted = :yes)"
    flags = {"yes": True, "no": False}
    count = sum(
        bind.execute(sa.text(f"SELECT count(*) FROM {t} WHERE {orphans}"), flags).scalar()
        for t in ("problems", "home_visits")
    )
    if count:
        version = bind.execute(
            sa.text("UPDATE sync_state SET version = version + 1 WHERE id = 1 RETURNING version")
        ).scalar()
        for table in ("problems", "home_visits"):
            bind.execute(
                sa.text(f"UPDATE {table} SET deleted = :yes, version = :v WHERE {orphans}"),
                {**flags, "v": version},
            )


def downgrade():
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("dead_at")
    with op.batch_alter_table("mutation_results") as batch:
        batch.drop_column("fingerprint")
