"""sessions: a per-user session generation; a device token and a web session are valid
only while they carry their user's current generation, so logout, a password reset and
disabling the account end every cookie and token of that user at once

Also merges the two heads 0011_nonreporters and 0012_deadline_reminders.

Revision ID: 0008_sessions
Revises: 0011_nonreporters, 0012_deadline_reminders
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_sessions"
down_revision = ("0011_nonreporters", "0012_deadline_reminders")
branch_labels = None
depends_on = None


def upgrade():
    for table in ("users", "devices"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
            )


def downgrade():
    for table in ("devices", "users"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("session_generation")
