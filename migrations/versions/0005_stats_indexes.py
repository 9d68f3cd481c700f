"""indexes: covering indexes for the dashboard's aggregates (SQLite only); the synced
tables' single-column version indexes dropped

Revision ID: 0005_stats_indexes
Revises: 0004_supervision

See server/models.py (Visit, Problem): SQLite reads the aggregates' columns from these
indexes in group order instead of every table row; PostgreSQL does not need them.
`ix_<table>_version` duplicated the leading column of `ix_<table>_sync` (version, id),
which serves every query the first served; each sync push paid for both.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_stats_indexes"
down_revision = "0004_supervision"
branch_labels = None
depends_on = None

# The focus-group counts as SQLite computes them from the JSON (server.models.
# sqlite_focus_count, spelled out here: a migration must not change with the code).
FOCUS = [
    sa.text(f"coalesce(CAST(json_extract(workers_by_group, '$.\"{g}\"') AS INTEGER), 0)")
    for g in ("needy", "laid_off", "migrant", "dispatched")
]

INDEXES = [
    (
        "ix_visits_stats",
        "visits",
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
        "visits",
        ["district_id", "enterprise_id", "visited_at", "canonical_id", "deleted"],
    ),
    ("ix_visits_id_visited_at", "visits", ["id", "visited_at"]),
    (
        "ix_visits_day_stats",
        "visits",
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
        "visits",
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
    (
        "ix_problems_stats",
        "problems",
        [
            "district_id",
            "category",
            "stage",
            "canonical_id",
            "deleted",
            "visit_id",
            "created_at",
            "resolved_at",
            "id",
        ],
    ),
]


SYNCED = ("enterprises", "visits", "problems", "home_visits")
# On SQLite, ix_visits_day_stats and ix_visits_group_stats lead with these columns.
REPLACED_ON_SQLITE = [
    ("ix_visits_visited_at", "visited_at"),
    ("ix_visits_work_group_id", "work_group_id"),
]


def upgrade():
    for table in SYNCED:
        op.drop_index(f"ix_{table}_version", table_name=table)
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, _ in REPLACED_ON_SQLITE:
        op.drop_index(name, table_name="visits")
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade():
    for table in SYNCED:
        op.create_index(f"ix_{table}_version", table, ["version"])
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    for name, column in REPLACED_ON_SQLITE:
        op.create_index(name, "visits", [column])
