"""device health: the latest state each device reported with its push or pull (entries
waiting, the oldest one's age, the last sync error, app version, storage) and when it
last synced

Revision ID: 0010_device_health
Revises: 0009_deadlines
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_device_health"
down_revision = "0009_deadlines"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "device_health",
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending", sa.Integer(), nullable=True),
        sa.Column("oldest_pending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(40), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("app_version", sa.String(40), nullable=True),
        sa.Column("storage_used", sa.BigInteger(), nullable=True),
        sa.Column("storage_quota", sa.BigInteger(), nullable=True),
        sa.Column("persisted", sa.Boolean(), nullable=True),
        sa.Column("last_push_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_pull_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_device_health_device_id_devices",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name="pk_device_health"),
    )
    op.create_index("ix_device_health_last_sync_at", "device_health", ["last_sync_at"])


def downgrade():
    op.drop_table("device_health")
