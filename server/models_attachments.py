"""Photos and signatures attached to synced records, and their resumable uploads.

Imported at the end of server/models.py so the tables register with the shared metadata.
A blob is the stored image (re-encoded without metadata, and its thumbnail), keyed by
the SHA-256 of the file the phone sent: the same photo attached twice is stored once.
An attachment links a blob to one record (visit, problem, home visit) with what the
phone said about the capture. An upload is one tus upload (docs/sync-protocol.md,
"Attachments"); its received chunks are `UploadPart` rows pointing at stored objects.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.extensions import db
from server.models import UTCDateTime, utcnow

RECORD_TYPES = ("visit", "problem", "home_visit")
ATTACHMENT_KINDS = ("photo", "signature")
ATTACHMENT_MIMES = ("image/jpeg", "image/png", "image/webp")


class AttachmentBlob(db.Model):
    """One stored image: the full re-encoded file and its thumbnail, by content hash."""

    __tablename__ = "attachment_blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    # the file as the phone sent it
    original_size: Mapped[int] = mapped_column(BigInteger)
    mime: Mapped[str] = mapped_column(String(20))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    full_key: Mapped[str] = mapped_column(String(200))
    full_size: Mapped[int] = mapped_column(BigInteger)
    thumb_key: Mapped[str] = mapped_column(String(200))
    thumb_size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Attachment(db.Model):
    """A blob attached to one record, with the capture's time, clock and place."""

    __tablename__ = "attachments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("attachment_blobs.sha256"), index=True)
    record_type: Mapped[str] = mapped_column(String(12))
    record_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(12))
    # captured_at: the phone's best idea of the true time of the capture; device_time:
    # the phone's own clock then (their difference is the phone's clock error).
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    device_time: Mapped[datetime] = mapped_column(UTCDateTime())
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    blob: Mapped[AttachmentBlob] = relationship()
    __table_args__ = (
        Index("ix_attachments_record", "record_type", "record_id"),
        Index("uq_attachments_record_blob", "record_type", "record_id", "blob_sha256", unique=True),
    )


class Upload(db.Model):
    """One resumable (tus) upload of a file for a record, by one user's device."""

    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(String(36))
    sha256: Mapped[str] = mapped_column(String(64))
    record_type: Mapped[str] = mapped_column(String(12))
    record_id: Mapped[str] = mapped_column(String(36))
    length: Mapped[int] = mapped_column(BigInteger)
    # the tus Upload-Offset: bytes stored so far
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    # every byte of an accepted chunk (a reset after a checksum mismatch keeps counting):
    # equal to `length` when nothing was received twice
    bytes_received: Mapped[int] = mapped_column(BigInteger, default=0)
    # the validated Upload-Metadata (kind, mime, captured_at, device_time, lat, lng...)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    attachment_id: Mapped[str | None] = mapped_column(ForeignKey("attachments.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_uploads_record_sha", "record_type", "record_id", "sha256"),)


class UploadPart(db.Model):
    """One accepted chunk of an upload: where it starts, how long it is, where it lies."""

    __tablename__ = "upload_parts"
    upload_id: Mapped[str] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(200))
