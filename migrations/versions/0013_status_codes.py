"""status codes (查询码): the keyed hash of a problem's public status code and when it
was revoked; the lookups of the public page, for its rate limit

Revision ID: 0013_status_codes
Revises: 0012_deadline_reminders
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_status_codes"
down_revision = "0012_deadline_reminders"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("problems") as batch:
        batch.add_column(sa.Column("status_code_hash", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("status_code_revoked_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.create_unique_constraint("uq_problems_status_code_hash", ["status_code_hash"])
    op.create_table(
        "status_lookups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_status_lookups_client", "status_lookups", ["client", "at"])


def downgrade():
    op.drop_table("status_lookups")
    with op.batch_alter_table("problems") as batch:
        batch.drop_constraint("uq_problems_status_code_hash", type_="unique")
        batch.drop_column("status_code_revoked_at")
        batch.drop_column("status_code_hash")
