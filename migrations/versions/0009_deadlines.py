"""deadlines: briefing retries and renders; problem deadlines, owners, reminders

- briefing_deliveries.next_attempt_at: when the sweep sends a transiently failed
  briefing again (None: failed for good);
- briefing_renders: a period's briefing e-mails, computed once;

Revision ID: 0009_deadlines
Revises: 0007_outbox_retry
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_deadlines"
down_revision = "0007_outbox_retry"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("briefing_deliveries") as batch:
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "briefing_renders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("district", sa.String(12), nullable=False),
        sa.Column("period_kind", sa.String(10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "district", "period_kind", "period_start", name="uq_briefing_renders_key"
        ),
    )


def downgrade():
    op.drop_table("briefing_renders")
    with op.batch_alter_table("briefing_deliveries") as batch:
        batch.drop_column("next_attempt_at")
