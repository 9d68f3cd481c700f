"""supervision: spot-check samples and items; merges the dedup and briefing heads

Revision ID: 0004_supervision
Revises: 0002_dedup, 0003_briefing
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_supervision"
down_revision = ("0002_dedup", "0003_briefing")
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "spot_check_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_spot_check_samples_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_check_samples")),
    )
    op.create_table(
        "spot_check_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("work_group_id", sa.Integer(), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("checked_by_id", sa.Integer(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["spot_check_samples.id"],
            ondelete="CASCADE",
            name=op.f("fk_spot_check_items_sample_id_spot_check_samples"),
        ),
        sa.ForeignKeyConstraint(
            ["district_id"],
            ["district_units.id"],
            name=op.f("fk_spot_check_items_district_id_district_units"),
        ),
        sa.ForeignKeyConstraint(
            ["work_group_id"],
            ["work_groups.id"],
            name=op.f("fk_spot_check_items_work_group_id_work_groups"),
        ),
        sa.ForeignKeyConstraint(
            ["checked_by_id"], ["users.id"], name=op.f("fk_spot_check_items_checked_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_check_items")),
        sa.UniqueConstraint("sample_id", "visit_id", name="uq_spot_check_items_sample_visit"),
    )
    op.create_index("ix_spot_check_items_sample_id", "spot_check_items", ["sample_id"])
    op.create_index("ix_spot_check_items_visit_id", "spot_check_items", ["visit_id"])
    op.create_index("ix_spot_check_items_district_id", "spot_check_items", ["district_id"])
    op.create_index("ix_spot_check_items_result", "spot_check_items", ["district_id", "result"])


def downgrade():
    op.drop_table("spot_check_items")
    op.drop_table("spot_check_samples")
