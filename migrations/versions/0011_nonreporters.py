"""report reminders (催报): one batch per click on 催报 (under a one-time key), one reminder per
person with what is missing and what became of it

Revision ID: 0011_nonreporters
Revises: 0010_device_health
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_nonreporters"
down_revision = "0010_device_health"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "report_reminder_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_kind", sa.String(10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_report_reminder_batches_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_reminder_batches")),
        sa.UniqueConstraint("key", name=op.f("uq_report_reminder_batches_key")),
    )
    op.create_table(
        "report_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("missing", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("token", sa.String(43), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["report_reminder_batches.id"],
            name=op.f("fk_report_reminders_batch_id_report_reminder_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_report_reminders_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_reminders")),
        sa.UniqueConstraint("batch_id", "user_id", name="uq_report_reminders_batch_user"),
        sa.UniqueConstraint("token", name=op.f("uq_report_reminders_token")),
    )
    op.create_index("ix_report_reminders_user_id", "report_reminders", ["user_id"])


def downgrade():
    op.drop_index("ix_report_reminders_user_id", table_name="report_reminders")
    op.drop_table("report_reminders")
    op.drop_table("report_reminder_batches")
