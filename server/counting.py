"""Which records the statistics count: one rule for the briefings, the dashboard, the
problem tracker and the deadline reports.

A record counts when it is live (not deleted, not merged into another record by dedup).
A problem or home visit is a child of its visit: it counts only while that visit is
not deleted. Deleting a visit tombstones its children in the same transaction
(docs/sync-protocol.md), but rows written before that rule, or by a path that deletes
only the visit, must not be counted either. A visit merged into another is not
deleted: its children count (they belong to the canonical visit now).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_


def visit_not_deleted(visit: Any) -> Any:
    """SQL condition on a child's visit, joined (inner or outer) as `visit`: the child
    counts unless that visit is deleted. A child whose visit row is missing counts."""
    return or_(visit.id.is_(None), visit.deleted.is_(False))
