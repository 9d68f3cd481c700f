"""deadline reminders: the current stage's clock on problems (stage_started_at,
due_date, owner_level, owner_work_group_id, progress_at; open problems of before get
theirs from the reminder beat, server/deadlines.fill_missing), and problem_reminders /
reminder_digests: reminders owed once per problem, state and user, and the per-user
digest mails carrying them (docs/deadlines.md)

Revision ID: 0012_deadline_reminders
Revises: 0010_device_health
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_deadline_reminders"
down_revision = "0010_device_health"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("problems") as batch:
        batch.add_column(sa.Column("stage_started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("due_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("owner_level", sa.String(12), nullable=True))
        batch.add_column(sa.Column("owner_work_group_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("progress_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            "fk_problems_owner_work_group_id_work_groups",
            "work_groups",
            ["owner_work_group_id"],
            ["id"],
        )
        batch.create_index("ix_problems_due", ["stage", "due_date"])
    op.create_table(
        "reminder_digests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("email", sa.String(200), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_reminder_digests_user_id", "reminder_digests", ["user_id"])
    op.create_index("ix_reminder_digests_status", "reminder_digests", ["status", "created_at"])
    op.create_table(
        "problem_reminders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("problem_id", sa.String(36), sa.ForeignKey("problems.id"), nullable=False),
        sa.Column("state_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("district_id", sa.Integer(), sa.ForeignKey("district_units.id"), nullable=False),
        sa.Column("stage", sa.String(12), nullable=False),
        sa.Column("due_date_text", sa.String(10), nullable=True),
        sa.Column("days_overdue", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "digest_id",
            sa.Integer(),
            sa.ForeignKey("reminder_digests.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_via", sa.String(8), nullable=True),
        sa.UniqueConstraint(
            "problem_id", "state_key", "kind", "user_id", name="uq_problem_reminders_key"
        ),
    )
    op.create_index("ix_problem_reminders_problem_id", "problem_reminders", ["problem_id"])
    op.create_index("ix_problem_reminders_digest_id", "problem_reminders", ["digest_id"])
    op.create_index("ix_problem_reminders_user", "problem_reminders", ["user_id", "digest_id"])


def downgrade():
    op.drop_table("problem_reminders")
    op.drop_table("reminder_digests")
    with op.batch_alter_table("problems") as batch:
        batch.drop_index("ix_problems_due")
        batch.drop_constraint("fk_problems_owner_work_group_id_work_groups", type_="foreignkey")
        for column in (
            "progress_at",
            "owner_work_group_id",
            "owner_level",
            "due_date",
            "stage_started_at",
        ):
            batch.drop_column(column)
