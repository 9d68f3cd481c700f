"""dedup: blocking keys, merge links, review candidates

Revision ID: 0002_dedup
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_dedup"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dedup_keys",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("entity", "key", "record_id", name=op.f("pk_dedup_keys")),
    )
    op.create_index("ix_dedup_keys_record", "dedup_keys", ["entity", "record_id"])

    op.create_table(
        "review_candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("a_id", sa.String(length=36), nullable=False),
        sa.Column("b_id", sa.String(length=36), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("merge_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_review_candidates_decided_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_candidates")),
    )
    op.create_index("ix_review_candidates_b_id", "review_candidates", ["b_id"])
    op.create_index(
        "uq_review_candidates_pair", "review_candidates", ["entity", "a_id", "b_id"], unique=True
    )
    op.create_index("ix_review_candidates_queue", "review_candidates", ["status", "score"])

    op.create_table(
        "merge_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("canonical_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("review_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.Column("undo_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_merge_links_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["review_candidates.id"],
            name=op.f("fk_merge_links_review_id_review_candidates"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["merge_links.id"], name=op.f("fk_merge_links_parent_id_merge_links")
        ),
        sa.ForeignKeyConstraint(
            ["undone_by_id"], ["users.id"], name=op.f("fk_merge_links_undone_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merge_links")),
    )
    op.create_index("ix_merge_links_record_id", "merge_links", ["record_id"])
    op.create_index("ix_merge_links_canonical_id", "merge_links", ["canonical_id"])
    op.create_index("ix_merge_links_parent_id", "merge_links", ["parent_id"])
    op.create_index(
        "uq_merge_links_active",
        "merge_links",
        ["entity", "record_id"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade():
    op.drop_table("merge_links")
    op.drop_table("review_candidates")
    op.drop_table("dedup_keys")
