"""Tables of the supervision team (督导检查组): random spot checks of visit records.

A sample is drawn once from a seed and frozen as its items, so a check run can be
shown, resumed and audited later even after more visits arrive (a redraw with the same
seed over the same data gives the same items; see server/coordination/spotcheck.py).

Imported at the end of server/models.py so the tables register with the shared metadata.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.extensions import db
from server.models import UTCDateTime, utcnow

CHECK_RESULTS = ("confirmed", "doubtful", "not_confirmed")
"""属实 / 存疑 / 不属实."""


class SpotCheckSample(db.Model):
    """One draw of visits to check: the seed, the size asked for and the filters used."""

    __tablename__ = "spot_check_samples"
    id: Mapped[int] = mapped_column(primary_key=True)
    seed: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    items: Mapped[list[SpotCheckItem]] = relationship(
        back_populates="sample", order_by="SpotCheckItem.id", cascade="all, delete-orphan"
    )


class SpotCheckItem(db.Model):
    """A sampled visit and, once checked, the finding: 属实, 存疑 or 不属实, with a note."""

    __tablename__ = "spot_check_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(
        ForeignKey("spot_check_samples.id", ondelete="CASCADE"), index=True
    )
    visit_id: Mapped[str] = mapped_column(String(36), index=True)
    # Copied at draw time: the stratum the visit was drawn from, for per-district figures.
    district_id: Mapped[int] = mapped_column(ForeignKey("district_units.id"), index=True)
    work_group_id: Mapped[int | None] = mapped_column(ForeignKey("work_groups.id"))
    result: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    sample: Mapped[SpotCheckSample] = relationship(back_populates="items")
    __table_args__ = (
        UniqueConstraint("sample_id", "visit_id", name="uq_spot_check_items_sample_visit"),
        Index("ix_spot_check_items_result", "district_id", "result"),
    )


FLAG_PENDING = "pending"
FLAG_ACCEPTED = "accepted"
FLAG_REJECTED = "rejected"
FLAG_OBSOLETE = "obsolete"  # the record was edited since: a newer flag (or none) applies


class PlausibilityFlag(db.Model):
    """A visit or home visit above a soft plausibility limit (server/plausibility.py),
    held out of the statistics until the supervision team accepts it."""

    __tablename__ = "plausibility_flags"
    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[str] = mapped_column(String(36))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district_units.id"))
    # [{"field": "workers_met", "value": 1000, "limit": 500}, ...]
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(12), default=FLAG_PENDING)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        Index("ix_plausibility_flags_record", "entity", "record_id"),
        Index("ix_plausibility_flags_queue", "status", "district_id"),
    )
