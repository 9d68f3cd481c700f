"""The latest state each device reported (sync health): never the content of entries.

Imported at the end of server/models.py so the table registers with the shared metadata.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.extensions import db
from server.models import UTCDateTime


class DeviceHealth(db.Model):
    """What a phone said about itself with its last push or pull, and when it last
    synced successfully. One row per device, overwritten with each report."""

    __tablename__ = "device_health"
    device_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # entries (a visit with its problems is one) waiting on the phone, and the oldest's age
    pending: Mapped[int | None] = mapped_column(Integer)
    oldest_pending_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the code of the phone's last sync error (network, token_expired, ...), or None
    last_error: Mapped[str | None] = mapped_column(String(40))
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    app_version: Mapped[str | None] = mapped_column(String(40))
    storage_used: Mapped[int | None] = mapped_column(BigInteger)
    storage_quota: Mapped[int | None] = mapped_column(BigInteger)
    persisted: Mapped[bool | None] = mapped_column(Boolean)
    last_push_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_pull_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the later of the two: the device's last successful sync
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
