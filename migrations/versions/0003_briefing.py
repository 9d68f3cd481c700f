"""briefing recipients and deliveries

Revision ID: 0003_briefing
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_briefing"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "briefing_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district", sa.String(length=12), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_briefing_recipients")),
        sa.UniqueConstraint("district", "email", name="uq_briefing_recipients"),
    )
    op.create_index("ix_briefing_recipients_district", "briefing_recipients", ["district"])
    op.create_table(
        "briefing_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district", sa.String(length=12), nullable=False),
        sa.Column("period_kind", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["briefing_recipients.id"],
            name=op.f("fk_briefing_deliveries_recipient_id_briefing_recipients"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_briefing_deliveries")),
        sa.UniqueConstraint(
            "district",
            "period_kind",
            "period_start",
            "recipient",
            name="uq_briefing_deliveries_key",
        ),
    )
    op.create_index(
        "ix_briefing_deliveries_status", "briefing_deliveries", ["status", "updated_at"]
    )


def downgrade():
    op.drop_index("ix_briefing_deliveries_status", table_name="briefing_deliveries")
    op.drop_table("briefing_deliveries")
    op.drop_index("ix_briefing_recipients_district", table_name="briefing_recipients")
    op.drop_table("briefing_recipients")
