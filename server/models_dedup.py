"""Tables of the dedup workers: blocking keys, merge links and the review queue.

Merges never rewrite the merged records' own data: a merge sets `canonical_id` on the
duplicate (an ORM change, so phones pull it) and appends a `MergeLink` saying who or
what decided it and why. Undoing a merge marks its link `undone`; links are never
deleted, so the decision log stays append-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from server.extensions import db
from server.models import UTCDateTime, utcnow

LINK_ACTIVE = "active"
LINK_UNDONE = "undone"
LINK_SUPERSEDED = "superseded"  # a chain repoint replaced it (A→B became A→C)

REVIEW_PENDING = "pending"
REVIEW_UNSURE = "unsure"
REVIEW_ACCEPTED = "accepted"
REVIEW_REJECTED = "rejected"
REVIEW_OBSOLETE = "obsolete"  # the pair got merged some other way, or a side was deleted
REVIEW_OPEN = (REVIEW_PENDING, REVIEW_UNSURE)


class DedupKey(db.Model):
    """A blocking key of a record: records sharing a key are compared (tens, not all)."""

    __tablename__ = "dedup_keys"
    entity: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    __table_args__ = (Index("ix_dedup_keys_record", "entity", "record_id"),)


class MergeLink(db.Model):
    """One merge of a duplicate into its canonical record: who decided, by which rule, why."""

    __tablename__ = "merge_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[str] = mapped_column(String(36), index=True)
    canonical_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(12), default=LINK_ACTIVE)
    rule: Mapped[str] = mapped_column(String(40))
    score: Mapped[float | None] = mapped_column(Float)
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    decided_by: Mapped[str] = mapped_column(String(64))  # "worker" or a username
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    review_id: Mapped[int | None] = mapped_column(ForeignKey("review_candidates.id"))
    # The merge whose chain repoint created this link (A→B, then B→C: A→C has parent B→C).
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("merge_links.id"), index=True)
    # Canonical visit's counts before this merge combined them, so undo can recompute.
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    undo_reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        # A record is merged into at most one canonical record at a time: two workers
        # racing to merge the same duplicate collide here instead of both succeeding.
        Index(
            "uq_merge_links_active",
            "entity",
            "record_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )


class ReviewCandidate(db.Model):
    """A pair a person must judge (uncertain enterprises, every needy-worker match)."""

    __tablename__ = "review_candidates"
    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    a_id: Mapped[str] = mapped_column(String(36))  # a_id < b_id: one row per unordered pair
    b_id: Mapped[str] = mapped_column(String(36), index=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    rule: Mapped[str] = mapped_column(String(40))
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default=REVIEW_PENDING)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)
    merge_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    __table_args__ = (
        # Two workers proposing the same pair make one row, and a rejected pair is never
        # proposed again.
        Index("uq_review_candidates_pair", "entity", "a_id", "b_id", unique=True),
        Index("ix_review_candidates_queue", "status", "score"),
    )
