"""hardening: a fingerprint of every pushed mutation (a reused mid is told apart from a
replay) and a dead-letter mark on outbox rows that failed too often

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


def downgrade():
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("dead_at")
    with op.batch_alter_table("mutation_results") as batch:
        batch.drop_column("fingerprint")
