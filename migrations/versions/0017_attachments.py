"""attachments: stored images by content hash, their links to records, resumable
uploads and their chunks (issue 18)

Revision ID: 0017_attachments
Revises: 0016_dedup_keys_hashed
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_attachments"
down_revision = "0016_dedup_keys_hashed"
branch_labels = None
depends_on = None


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    op.create_table(
        "attachment_blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("original_size", sa.BigInteger(), nullable=False),
        sa.Column("mime", sa.String(20), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("full_key", sa.String(200), nullable=False),
        sa.Column("full_size", sa.BigInteger(), nullable=False),
        sa.Column("thumb_key", sa.String(200), nullable=False),
        sa.Column("thumb_size", sa.BigInteger(), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "attachments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "blob_sha256", sa.String(64), sa.ForeignKey("attachment_blobs.sha256"), nullable=False
        ),
        sa.Column("record_type", sa.String(12), nullable=False),
        sa.Column("record_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        _ts("captured_at"),
        _ts("device_time"),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("device_id", sa.String(36), nullable=True),
        _ts("created_at"),
    )
    op.create_index("ix_attachments_blob_sha256", "attachments", ["blob_sha256"])
    op.create_index("ix_attachments_record", "attachments", ["record_type", "record_id"])
    op.create_index(
        "uq_attachments_record_blob",
        "attachments",
        ["record_type", "record_id", "blob_sha256"],
        unique=True,
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("device_id", sa.String(36), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("record_type", sa.String(12), nullable=False),
        sa.Column("record_id", sa.String(36), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("bytes_received", sa.BigInteger(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("attachment_id", sa.String(36), sa.ForeignKey("attachments.id"), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("completed_at", nullable=True),
    )
    op.create_index("ix_uploads_record_sha", "uploads", ["record_type", "record_id", "sha256"])
    op.create_table(
        "upload_parts",
        sa.Column(
            "upload_id",
            sa.String(36),
            sa.ForeignKey("uploads.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("start", sa.BigInteger(), primary_key=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
    )


def downgrade():
    op.drop_table("upload_parts")
    op.drop_table("uploads")
    op.drop_table("attachments")
    op.drop_table("attachment_blobs")
