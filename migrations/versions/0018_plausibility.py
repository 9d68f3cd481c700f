"""plausibility: visits and home visits above a soft limit are `held` out of the
statistics until the supervision team accepts them; plausibility_flags is their review
list (issue 13, item 8)

Revision ID: 0018_plausibility
Revises: 0017_attachments

On SQLite the visits' covering statistics indexes (0005) gain `held`, so the dashboard
and briefing aggregates, which now read it, are still served from the index alone.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_plausibility"
down_revision = "0017_attachments"
branch_labels = None
depends_on = None

FOCUS = [
    sa.text(f"coalesce(CAST(json_extract(workers_by_group, '$.\"{g}\"') AS INTEGER), 0)")
    for g in ("needy", "laid_off", "migrant", "dispatched")
]
# The covering indexes as 0005 made them; `held` is appended to each.
SQLITE_INDEXES = [
    (
        "ix_visits_stats",
        [
            "district_id",
            "method",
            "visited_at",
            "canonical_id",
            "deleted",
            "workers_met",
            "enterprise_id",
            *FOCUS,
            "workers_by_group",
        ],
    ),
    (
        "ix_visits_enterprise_stats",
        ["district_id", "enterprise_id", "visited_at", "canonical_id", "deleted"],
    ),
    (
        "ix_visits_day_stats",
        [
            "visited_at",
            "canonical_id",
            "deleted",
            "workers_met",
            "district_id",
            "work_group_id",
            "method",
            "enterprise_id",
        ],
    ),
    (
        "ix_visits_group_stats",
        [
            "work_group_id",
            "visited_at",
            "district_id",
            "method",
            "canonical_id",
            "deleted",
            "workers_met",
            "enterprise_id",
        ],
    ),
]


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    # Plain ADD COLUMN (SQLite takes it as it is; batch mode would reflect the
    # expression indexes of visits, which SQLAlchemy cannot).
    for table in ("visits", "home_visits"):
        op.add_column(
            table,
            sa.Column("held", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        )
    op.create_table(
        "plausibility_flags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("entity", sa.String(20), nullable=False),
        sa.Column("record_id", sa.String(36), nullable=False),
        sa.Column(
            "district_id",
            sa.Integer(),
            sa.ForeignKey(
                "district_units.id", name="fk_plausibility_flags_district_id_district_units"
            ),
            nullable=True,
        ),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column(
            "created_by_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_plausibility_flags_created_by_id_users"),
            nullable=True,
        ),
        _ts("created_at"),
        sa.Column(
            "decided_by_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_plausibility_flags_decided_by_id_users"),
            nullable=True,
        ),
        _ts("decided_at", nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_plausibility_flags"),
    )
    op.create_index("ix_plausibility_flags_record", "plausibility_flags", ["entity", "record_id"])
    op.create_index("ix_plausibility_flags_queue", "plausibility_flags", ["status", "district_id"])
    if op.get_bind().dialect.name == "sqlite":
        for name, columns in SQLITE_INDEXES:
            op.drop_index(name, table_name="visits")
            op.create_index(name, "visits", [*columns, "held"])


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for name, columns in SQLITE_INDEXES:
            op.drop_index(name, table_name="visits")
            op.create_index(name, "visits", columns)
    op.drop_index("ix_plausibility_flags_queue", table_name="plausibility_flags")
    op.drop_index("ix_plausibility_flags_record", table_name="plausibility_flags")
    op.drop_table("plausibility_flags")
    for table in ("home_visits", "visits"):
        op.drop_column(table, "held")  # SQLite 3.35+: ALTER TABLE DROP COLUMN
