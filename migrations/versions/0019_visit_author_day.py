"""visits: an index on (created_by_id, visited_at, deleted) for the visits_per_day
plausibility check, which counted one author's visits of a day by scanning every visit

Revision ID: 0019_visit_author_day
Revises: 0018_plausibility
"""

from alembic import op

revision = "0019_visit_author_day"
down_revision = "0018_plausibility"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_visits_author_day", "visits", ["created_by_id", "visited_at", "deleted"])


def downgrade():
    op.drop_index("ix_visits_author_day", table_name="visits")
