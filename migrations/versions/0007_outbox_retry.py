"""outbox retry: when a failed outbox row is due again (its back-off grows with each
attempt; after OUTBOX_MAX_ATTEMPTS the row is dead until an admin retries it)

Revision ID: 0007_outbox_retry
Revises: 0006_hardening
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_outbox_retry"
down_revision = "0006_hardening"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("next_attempt_at")
