"""merge heads: the session generations (0008) and the problems' status codes (0013)
were written side by side; one head again

Revision ID: 0014_merge_heads
Revises: 0008_sessions, 0013_status_codes
"""

revision = "0014_merge_heads"
down_revision = ("0008_sessions", "0013_status_codes")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
