"""Photos and signatures on records: resumable uploads (tus, docs/sync-protocol.md
"Attachments"), image checks and clean re-encoding, who sees which attachment, the
spot-check figures (distance, clock, delay) and the retention sweep.

Plain functions over a session and an AttachmentStore (server/attachments_store.py); no
HTTP here. Errors are AttachmentError with the API's status and code; the caller turns
them into answers. The caller commits, and deletes the keys a result lists only after
its commit (a failed commit then loses nothing).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import math
import re
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.attachments_store import AttachmentStore
from server.models import SYNCED_MODELS, HomeVisit, Problem, User, Visit
from server.models_attachments import (
    ATTACHMENT_KINDS,
    ATTACHMENT_MIMES,
    RECORD_TYPES,
    Attachment,
    AttachmentBlob,
    Upload,
    UploadPart,
)
from server.privacy import sees_home_visit_details
from server.scope import Scope

TUS_VERSION = "1.0.0"
METADATA_MAX = 4096
_SHA = re.compile(r"^[0-9a-f]{64}$")
_META_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
FORMAT_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
FULL_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


class AttachmentError(Exception):
    """An answer the API gives with its status, stable code and the field at fault."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.extra = (
            status,
            code,
            message,
            field,
            extra,
        )


@dataclass(frozen=True)
class Limits:
    """The settings uploads and images obey."""

    max_bytes: int = 10 * 1024 * 1024
    chunk_max: int = 1024 * 1024
    max_pixels: int = 50_000_000
    full_px: int = 2048
    thumb_px: int = 320

    @classmethod
    def from_settings(cls, s: Any) -> Limits:
        return cls(
            s.UPLOAD_MAX_BYTES,
            s.UPLOAD_CHUNK_MAX,
            s.ATTACHMENT_MAX_PIXELS,
            s.ATTACHMENT_FULL_MAX_PX,
            s.ATTACHMENT_THUMB_PX,
        )


# ----------------------------------------------------------------------- metadata


def _invalid(key: str, reason: str) -> AttachmentError:
    return AttachmentError(400, "invalid", f"Upload-Metadata {key}: {reason}", key)


def parse_metadata_header(header: str | None) -> dict[str, str]:
    """tus Upload-Metadata: comma-separated `key base64(value)` pairs (a key alone means
    an empty value). Keys may not repeat; values must be UTF-8."""
    if not header or not header.strip():
        raise AttachmentError(400, "invalid", "Upload-Metadata is required", "Upload-Metadata")
    if len(header) > METADATA_MAX:
        raise AttachmentError(
            400,
            "invalid",
            f"Upload-Metadata is longer than {METADATA_MAX} characters",
            "Upload-Metadata",
        )
    out: dict[str, str] = {}
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if len(parts) > 2 or not _META_KEY.match(parts[0]):
            raise AttachmentError(
                400,
                "malformed",
                "Upload-Metadata: expected comma-separated `key base64value` pairs",
                "Upload-Metadata",
            )
        key = parts[0]
        if key in out:
            raise _invalid(key, "given twice")
        raw = parts[1] if len(parts) == 2 else ""
        try:
            out[key] = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise _invalid(key, "the value is not base64 of UTF-8 text") from None
    return out


def _instant(meta: dict[str, str], key: str) -> datetime:
    raw = meta.get(key)
    if not raw:
        raise _invalid(key, "required")
    try:
        value = datetime.fromisoformat(raw.strip()) if len(raw) <= 40 else None
    except ValueError:
        value = None
    if value is None:
        raise _invalid(key, "expected an ISO 8601 date and time")
    if value.tzinfo is None:
        raise _invalid(key, "the time needs its offset (Z or +08:00)")
    if not 2000 <= value.year <= 2100:
        raise _invalid(key, "the year is out of range")
    return value.astimezone(UTC)


def _number(meta: dict[str, str], key: str, low: float, high: float) -> float | None:
    raw = meta.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw) if len(raw) <= 32 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise _invalid(key, f"expected a number from {low:g} to {high:g}")
    return value


def validate_metadata(meta: dict[str, str]) -> dict[str, Any]:
    """The upload's metadata checked and normalised (unknown keys are ignored, as tus
    allows a client to send more, e.g. a filename)."""
    sha = (meta.get("sha256") or "").strip().lower()
    if not _SHA.match(sha):
        raise _invalid("sha256", "expected 64 hexadecimal digits")
    record_type = meta.get("record_type")
    if record_type not in RECORD_TYPES:
        raise _invalid("record_type", f"expected one of {', '.join(RECORD_TYPES)}")
    try:
        record_id = str(uuid.UUID(meta.get("record_id") or ""))
    except ValueError:
        raise _invalid("record_id", "expected the record's UUID") from None
    kind = meta.get("kind")
    if kind not in ATTACHMENT_KINDS:
        raise _invalid("kind", f"expected one of {', '.join(ATTACHMENT_KINDS)}")
    mime = meta.get("mime")
    if mime not in ATTACHMENT_MIMES:
        raise _invalid("mime", f"expected one of {', '.join(ATTACHMENT_MIMES)}")
    captured_at = _instant(meta, "captured_at")
    device_time = _instant(meta, "device_time")
    lat = _number(meta, "lat", -90, 90)
    lng = _number(meta, "lng", -180, 180)
    if (lat is None) != (lng is None):
        raise _invalid("lat" if lat is None else "lng", "lat and lng go together")
    accuracy = _number(meta, "accuracy", 0, 1_000_000)
    return {
        "sha256": sha,
        "record_type": record_type,
        "record_id": record_id,
        "kind": kind,
        "mime": mime,
        "captured_at": captured_at.isoformat(),
        "device_time": device_time.isoformat(),
        "lat": lat,
        "lng": lng,
        "accuracy": accuracy,
    }


# ------------------------------------------------------------------------ records


def find_record(session: Session, record_type: str, record_id: str) -> Any:
    """The record an attachment belongs to, or None."""
    if record_type not in RECORD_TYPES:
        return None
    return session.get(SYNCED_MODELS[record_type], record_id)


def may_read(user: User, scope: Scope, record_type: str, record: Any) -> bool:
    """Whether `user` may see the attachments of `record`: the record is live and in
    the read scope, and a home visit's photos (personal data of a needy worker) only for
    the roles that see its personal fields (server/privacy.py)."""
    if record is None or record.deleted or not scope.can_read(record.district_id):
        return False
    return record_type != "home_visit" or sees_home_visit_details(user)


def _writable(scope: Scope, record_type: str, record: Any) -> None:
    if record is None:
        raise AttachmentError(
            409,
            "record_not_synced",
            "the record is not on the server yet: send it first, then the photo",
            "record_id",
        )
    if not scope.can_read(record.district_id):
        raise AttachmentError(404, "not_found", "no such record in your scope", "record_id")
    if record.deleted:
        raise AttachmentError(
            409, "record_deleted", "the record was deleted on the server", "record_id"
        )
    if not scope.can_write(record.district_id):
        raise AttachmentError(403, "forbidden", "your role may not add photos to this record")


# ------------------------------------------------------------------------ uploads


def create_upload(
    session: Session,
    *,
    user: User,
    device_id: str | None,
    scope: Scope,
    length: int,
    meta: dict[str, Any],
    limits: Limits,
) -> Upload:
    """A new upload, or the one to go on with: the existing complete one when these
    bytes are already attached to this record (its `received` equals `length`, the
    phone sends nothing), or this user's unfinished one of the same file (resume)."""
    if length < 1:
        raise AttachmentError(400, "invalid", "Upload-Length: must be at least 1", "Upload-Length")
    if length > limits.max_bytes:
        raise AttachmentError(
            413, "too_large", f"Upload-Length: over {limits.max_bytes} bytes", "Upload-Length"
        )
    record = find_record(session, meta["record_type"], meta["record_id"])
    _writable(scope, meta["record_type"], record)
    now = datetime.now(UTC)
    attached = session.scalar(
        select(Attachment).where(
            Attachment.record_type == meta["record_type"],
            Attachment.record_id == meta["record_id"],
            Attachment.blob_sha256 == meta["sha256"],
        )
    )
    if attached is not None and attached.blob.original_size == length:
        upload = Upload(
            id=str(uuid.uuid4()),
            user_id=user.id,
            device_id=device_id,
            sha256=meta["sha256"],
            record_type=meta["record_type"],
            record_id=meta["record_id"],
            length=length,
            received=length,
            bytes_received=0,
            meta=meta,
            attachment_id=attached.id,
            created_at=now,
            updated_at=now,
            completed_at=now,
        )
        session.add(upload)
        return upload
    unfinished = session.scalar(
        select(Upload)
        .where(
            Upload.record_type == meta["record_type"],
            Upload.record_id == meta["record_id"],
            Upload.sha256 == meta["sha256"],
            Upload.user_id == user.id,
            Upload.length == length,
            Upload.completed_at.is_(None),
        )
        .order_by(Upload.received.desc())
        .limit(1)
    )
    if unfinished is not None:
        unfinished.meta = meta  # the latest word on the capture (e.g. a later position)
        return unfinished
    upload = Upload(
        id=str(uuid.uuid4()),
        user_id=user.id,
        device_id=device_id,
        sha256=meta["sha256"],
        record_type=meta["record_type"],
        record_id=meta["record_id"],
        length=length,
        received=0,
        bytes_received=0,
        meta=meta,
        created_at=now,
        updated_at=now,
    )
    session.add(upload)
    return upload


def upload_of(session: Session, upload_id: str, user: User) -> Upload:
    """The user's own upload, or 404 (another user's upload looks absent)."""
    upload = session.get(Upload, upload_id) if len(upload_id) <= 36 else None
    if upload is None or upload.user_id != user.id:
        raise AttachmentError(404, "not_found", "no such upload")
    return upload


@dataclass
class ChunkResult:
    """What a PATCH did: the upload, an error to answer after committing (the upload
    was reset or dropped), and stored objects to delete after the commit."""

    upload: Upload | None
    error: AttachmentError | None = None
    garbage: list[str] = field(default_factory=list)


def _mismatch(received: int) -> AttachmentError:
    return AttachmentError(
        409,
        "offset_mismatch",
        f"Upload-Offset: the server has {received} bytes of this upload",
        "Upload-Offset",
        upload_offset=received,
    )


def _advance(session: Session, upload: Upload, start: int, size: int, **values: Any) -> bool:
    """Move the upload from `start` to `start + size` if nobody moved it meanwhile."""
    done = session.execute(
        update(Upload)
        .where(Upload.id == upload.id, Upload.received == start)
        .values(
            received=start + size,
            bytes_received=Upload.bytes_received + size,
            updated_at=datetime.now(UTC),
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    return done.rowcount == 1


def _parts(session: Session, upload_id: str) -> list[UploadPart]:
    return list(
        session.scalars(
            select(UploadPart).where(UploadPart.upload_id == upload_id).order_by(UploadPart.start)
        )
    )


def _reset(session: Session, upload: Upload) -> list[str]:
    """Forget what the upload received (its count of bytes stays); the keys to delete."""
    keys = [p.key for p in _parts(session, upload.id)]
    session.execute(delete(UploadPart).where(UploadPart.upload_id == upload.id))
    session.execute(
        update(Upload)
        .where(Upload.id == upload.id)
        .values(received=0, updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return keys


def _drop(session: Session, upload: Upload) -> list[str]:
    keys = [p.key for p in _parts(session, upload.id)]
    session.execute(delete(UploadPart).where(UploadPart.upload_id == upload.id))
    session.execute(delete(Upload).where(Upload.id == upload.id))
    return keys


def append_chunk(
    session: Session,
    store: AttachmentStore,
    *,
    upload: Upload,
    scope: Scope,
    offset: int,
    data: bytes,
    limits: Limits,
) -> ChunkResult:
    """Append one chunk at `offset` (tus PATCH). The chunk is stored whole as its own
    object before the offset moves, so a chunk is either all there or not at all, and
    the offset (HEAD) never counts a byte that is not stored. The last chunk completes
    the upload: checksum, image check, clean re-encoding, thumbnail, attachment."""
    start = upload.received
    if offset != start:
        raise _mismatch(start)
    if offset + len(data) > upload.length:
        raise AttachmentError(
            400,
            "beyond_length",
            f"the chunk goes past Upload-Length ({upload.length})",
            "Upload-Offset",
        )
    if not data:
        return ChunkResult(upload)
    if offset + len(data) < upload.length:
        key = f"uploads/{upload.id}/{offset:012d}-{uuid.uuid4().hex[:8]}"
        store.put(key, data, "application/octet-stream")
        if not _advance(session, upload, start, len(data)):
            return ChunkResult(None, _mismatch(_current(session, upload.id)), [key])
        session.add(UploadPart(upload_id=upload.id, start=offset, size=len(data), key=key))
        return ChunkResult(upload)
    return _complete(session, store, upload, scope, data, limits)


def _current(session: Session, upload_id: str) -> int:
    return session.scalar(select(Upload.received).where(Upload.id == upload_id)) or 0


def _complete(
    session: Session,
    store: AttachmentStore,
    upload: Upload,
    scope: Scope,
    last: bytes,
    limits: Limits,
) -> ChunkResult:
    parts = _parts(session, upload.id)
    pieces: list[bytes] = []
    at = 0
    try:
        for part in parts:
            if part.start != at:
                raise KeyError(part.key)
            pieces.append(store.get(part.key))
            at += part.size
    except KeyError:
        # A stored chunk went missing (storage lost it): start the upload again.
        return ChunkResult(None, _mismatch(0), _reset(session, upload))
    pieces.append(last)
    whole = b"".join(pieces)
    parts_keys = [p.key for p in parts]
    if len(whole) != upload.length or hashlib.sha256(whole).hexdigest() != upload.sha256:
        garbage = _reset(session, upload)
        session.execute(
            update(Upload)
            .where(Upload.id == upload.id)
            .values(bytes_received=Upload.bytes_received + len(last))
            .execution_options(synchronize_session=False)
        )
        return ChunkResult(
            None,
            AttachmentError(
                422,
                "checksum_mismatch",
                "the file's SHA-256 differs from Upload-Metadata sha256: the upload starts "
                "again from 0",
                "sha256",
            ),
            garbage,
        )
    meta = upload.meta
    record = find_record(session, upload.record_type, upload.record_id)
    try:
        _writable(scope, upload.record_type, record)
    except AttachmentError as err:
        return ChunkResult(None, err, _drop(session, upload))
    blob = session.get(AttachmentBlob, upload.sha256)
    if blob is None:
        try:
            image = process_image(whole, meta["mime"], limits)
        except AttachmentError as err:
            return ChunkResult(None, err, _drop(session, upload))
        blob = _store_blob(session, store, upload.sha256, len(whole), meta["mime"], image)
    attachment = session.scalar(
        select(Attachment).where(
            Attachment.record_type == upload.record_type,
            Attachment.record_id == upload.record_id,
            Attachment.blob_sha256 == upload.sha256,
        )
    )
    if attachment is None:
        attachment = Attachment(
            id=str(uuid.uuid4()),
            blob_sha256=blob.sha256,
            record_type=upload.record_type,
            record_id=upload.record_id,
            kind=meta["kind"],
            captured_at=datetime.fromisoformat(meta["captured_at"]),
            device_time=datetime.fromisoformat(meta["device_time"]),
            lat=meta.get("lat"),
            lng=meta.get("lng"),
            accuracy=meta.get("accuracy"),
            user_id=upload.user_id,
            device_id=upload.device_id,
        )
        session.add(attachment)
        session.flush()
    if not _advance(
        session,
        upload,
        upload.received,
        len(last),
        completed_at=datetime.now(UTC),
        attachment_id=attachment.id,
    ):
        raise _mismatch(_current(session, upload.id))
    session.execute(delete(UploadPart).where(UploadPart.upload_id == upload.id))
    session.refresh(upload)
    return ChunkResult(upload, None, parts_keys)


def _store_blob(
    session: Session,
    store: AttachmentStore,
    sha: str,
    size: int,
    mime: str,
    image: ProcessedImage,
) -> AttachmentBlob:
    base = f"blobs/{sha[:2]}/{sha}"
    full_key = f"{base}/full.{FULL_EXT[image.mime]}"
    thumb_key = f"{base}/thumb.jpg"
    # Objects first: a blob row always points at stored files. Two uploads of the same
    # bytes at once write the same objects; the second row insert loses and reuses.
    store.put(full_key, image.full, image.mime)
    store.put(thumb_key, image.thumb, "image/jpeg")
    blob = AttachmentBlob(
        sha256=sha,
        original_size=size,
        mime=image.mime,
        width=image.width,
        height=image.height,
        full_key=full_key,
        full_size=len(image.full),
        thumb_key=thumb_key,
        thumb_size=len(image.thumb),
    )
    try:
        with session.begin_nested():
            session.add(blob)
            session.flush()
    except IntegrityError:
        blob = session.get(AttachmentBlob, sha, populate_existing=True)
        if blob is None:  # pragma: no cover - inserted and deleted in between
            raise
    return blob


# ------------------------------------------------------------------------- images


@dataclass(frozen=True)
class ProcessedImage:
    """The re-encoded image (no metadata at all) and its thumbnail."""

    full: bytes
    mime: str
    thumb: bytes
    width: int
    height: int


def _unreadable(why: str) -> AttachmentError:
    return AttachmentError(422, "not_an_image", f"the file is not a readable image: {why}")


def process_image(data: bytes, mime: str, limits: Limits) -> ProcessedImage:
    """Decode (refusing decompression bombs before decoding), apply the EXIF orientation,
    and encode again from the bare pixels: EXIF, XMP, ICC, GPS, the camera's serial and
    every other chunk of the original are gone. The full image keeps its format (a
    signature's PNG keeps its transparency), at most `full_px` on its longest edge; the
    thumbnail is a JPEG on white, at most `thumb_px`."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # corrupt EXIF and the like: the bytes go anyway
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=list(FORMAT_MIME))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels(limits) from None
        except Exception as exc:  # noqa: BLE001 - hostile input: any decoder error is a 422
            raise _unreadable(type(exc).__name__) from None
        found = FORMAT_MIME.get(img.format or "")
        if found is None:
            raise _unreadable("unsupported format")
        if found != mime:
            raise AttachmentError(
                422, "mime_mismatch", f"the file is {found}, not {mime} as declared", "mime"
            )
        width, height = img.size
        if width < 1 or height < 1 or width * height > limits.max_pixels:
            raise _too_many_pixels(limits)
        try:
            if img.format == "JPEG":
                img.draft("RGB", (limits.full_px, limits.full_px))
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
            alpha = img.mode in ("RGBA", "LA", "PA") or (
                img.mode == "P" and "transparency" in img.info
            )
            mode = "RGBA" if alpha and found != "image/jpeg" else "RGB"
            if img.mode == "L" and not alpha:
                mode = "L"
            if img.mode != mode:
                img = img.convert(mode)
            # Only the pixels cross over: a new image has no info, no EXIF, no XMP, no ICC.
            bare = Image.new(mode, img.size)
            bare.paste(img, (0, 0))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels(limits) from None
        except Exception as exc:  # noqa: BLE001 - a truncated or corrupt stream
            raise _unreadable(type(exc).__name__) from None
    full_img = bare
    if max(bare.size) > limits.full_px:
        scale = limits.full_px / max(bare.size)
        size = (max(1, round(bare.width * scale)), max(1, round(bare.height * scale)))
        # Bicubic: half the time of Lanczos on a 12-megapixel photo, no visible loss at
        # this size; the phone sends 1600 px anyway, so this is the rare case.
        full_img = bare.resize(size, Image.Resampling.BICUBIC)
    out = io.BytesIO()
    if found == "image/jpeg":
        full_img.save(out, "JPEG", quality=85)
    elif found == "image/png":
        full_img.save(out, "PNG", compress_level=6)
    else:
        full_img.save(out, "WEBP", quality=80)
    thumb_img = full_img.copy()  # from the smaller image: cheaper, same result
    thumb_img.thumbnail((limits.thumb_px, limits.thumb_px), Image.Resampling.BILINEAR)
    if thumb_img.mode == "RGBA":
        white = Image.new("RGB", thumb_img.size, (255, 255, 255))
        white.paste(thumb_img, mask=thumb_img.getchannel("A"))
        thumb_img = white
    thumb = io.BytesIO()
    thumb_img.save(thumb, "JPEG", quality=75)
    return ProcessedImage(out.getvalue(), found, thumb.getvalue(), *full_img.size)


def _too_many_pixels(limits: Limits) -> AttachmentError:
    return AttachmentError(
        422,
        "image_too_large",
        f"the image has more than {limits.max_pixels} pixels (a decompression bomb?)",
    )


# -------------------------------------------------------------------------- reads


def attachments_of(session: Session, record_type: str, record_ids: list[str]) -> list[Attachment]:
    """The attachments of some records of one type, oldest capture first."""
    if not record_ids:
        return []
    return list(
        session.scalars(
            select(Attachment)
            .where(Attachment.record_type == record_type, Attachment.record_id.in_(record_ids))
            .order_by(Attachment.captured_at, Attachment.id)
        )
    )


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine on a 6371 km sphere)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class Checks:
    """How far from and how long after the visit a photo may be before it is flagged."""

    far_m: float = 1000
    late: timedelta = timedelta(hours=24)

    @classmethod
    def from_settings(cls, s: Any) -> Checks:
        return cls(s.ATTACHMENT_FAR_METERS, timedelta(hours=s.ATTACHMENT_LATE_HOURS))


def visit_of(session: Session, record_type: str, record: Any) -> Visit | None:
    """The visit a record belongs to (itself for a visit), for place and time checks."""
    if record_type == "visit":
        return record
    visit_id = getattr(record, "visit_id", None)
    return session.get(Visit, visit_id) if visit_id else None


def describe(att: Attachment, visit: Visit | None, checks: Checks) -> dict[str, Any]:
    """An attachment as the API lists it, with the spot-check figures."""
    clock = (att.device_time - att.captured_at).total_seconds()
    distance = None
    if visit is not None and None not in (att.lat, att.lng, visit.lat, visit.lng):
        distance = round(distance_m(att.lat, att.lng, visit.lat, visit.lng))
    delay = (att.captured_at - visit.visited_at).total_seconds() if visit is not None else None
    return {
        "id": att.id,
        "record_type": att.record_type,
        "record_id": att.record_id,
        "kind": att.kind,
        "mime": att.blob.mime,
        "captured_at": att.captured_at.isoformat(),
        "device_time": att.device_time.isoformat(),
        "received_at": att.created_at.isoformat(),
        "clock_difference_seconds": round(clock),
        "lat": att.lat,
        "lng": att.lng,
        "accuracy": att.accuracy,
        "distance_from_visit_m": distance,
        "seconds_from_visit": round(delay) if delay is not None else None,
        "far": distance is not None and distance > checks.far_m,
        "late": delay is not None and abs(delay) > checks.late.total_seconds(),
        "width": att.blob.width,
        "height": att.blob.height,
        "original_size": att.blob.original_size,
        "full_size": att.blob.full_size,
        "thumb_size": att.blob.thumb_size,
        "thumb_url": f"/attachments/{att.id}/thumb",
        "full_url": f"/attachments/{att.id}/full",
    }


def readable_attachment(
    session: Session, user: User, scope: Scope, attachment_id: str
) -> Attachment | None:
    """The attachment if `user` may see it (its record's scope and privacy), else None."""
    att = session.get(Attachment, attachment_id) if len(attachment_id) <= 36 else None
    if att is None:
        return None
    record = find_record(session, att.record_type, att.record_id)
    return att if may_read(user, scope, att.record_type, record) else None


# ---------------------------------------------------------------------- retention


def _deleted_before(session: Session, cutoff: datetime) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for record_type, model in (("visit", Visit), ("problem", Problem), ("home_visit", HomeVisit)):
        ids = session.scalars(
            select(Attachment.record_id)
            .distinct()
            .join(model, model.id == Attachment.record_id)
            .where(
                Attachment.record_type == record_type,
                model.deleted.is_(True),
                model.updated_at < cutoff,
            )
        ).all()
        if ids:
            out[record_type] = list(ids)
    return out


@dataclass
class Purged:
    """What a retention sweep removed, and the stored objects to delete after commit."""

    attachments: int = 0
    blobs: int = 0
    uploads: int = 0
    garbage: list[str] = field(default_factory=list)


def purge_attachments(
    session: Session, *, days: int, expire_hours: int, now: datetime | None = None
) -> Purged:
    """Remove the attachments of records deleted more than `days` days ago (a blob
    still attached to another record stays), and uploads left unfinished more than
    `expire_hours` hours. The caller commits, then deletes `garbage` from the store."""
    now = now or datetime.now(UTC)
    result = Purged()
    doomed: list[str] = []
    for record_type, ids in _deleted_before(session, now - timedelta(days=days)).items():
        for start in range(0, len(ids), 500):
            doomed.extend(
                session.scalars(
                    select(Attachment.id).where(
                        Attachment.record_type == record_type,
                        Attachment.record_id.in_(ids[start : start + 500]),
                    )
                )
            )
    shas: set[str] = set()
    for start in range(0, len(doomed), 500):
        chunk = doomed[start : start + 500]
        shas.update(session.scalars(select(Attachment.blob_sha256).where(Attachment.id.in_(chunk))))
        stale = session.scalars(select(Upload.id).where(Upload.attachment_id.in_(chunk))).all()
        session.execute(delete(UploadPart).where(UploadPart.upload_id.in_(stale)))
        session.execute(delete(Upload).where(Upload.id.in_(stale)))
        result.uploads += len(stale)
        session.execute(delete(Attachment).where(Attachment.id.in_(chunk)))
    result.attachments = len(doomed)
    for sha in sorted(shas):
        still = session.scalar(
            select(func.count()).select_from(Attachment).where(Attachment.blob_sha256 == sha)
        )
        if still:
            continue
        blob = session.get(AttachmentBlob, sha)
        if blob is not None:
            result.garbage += [blob.full_key, blob.thumb_key]
            session.delete(blob)
            result.blobs += 1
    expired = session.scalars(
        select(Upload.id).where(
            Upload.completed_at.is_(None),
            Upload.updated_at < now - timedelta(hours=expire_hours),
        )
    ).all()
    for upload_id in expired:
        result.garbage += session.scalars(
            select(UploadPart.key).where(UploadPart.upload_id == upload_id)
        ).all()
        session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id))
        session.execute(delete(Upload).where(Upload.id == upload_id))
    result.uploads += len(expired)
    session.flush()
    return result


def delete_garbage(store: AttachmentStore, keys: list[str]) -> None:
    """Delete stored objects nothing points at any more (after the commit)."""
    for key in keys:
        store.delete(key)


def run_retention(session: Session, store: AttachmentStore, settings: Any) -> Purged:
    """The sweep the beat and `fieldvisit erase-personal` run: purge, commit, then delete
    the files nothing points at, and chunks of uploads that no longer exist."""
    result = purge_attachments(
        session,
        days=settings.ATTACHMENT_RETENTION_DAYS,
        expire_hours=settings.UPLOAD_EXPIRE_HOURS,
    )
    session.commit()
    delete_garbage(store, result.garbage)
    live = set(session.scalars(select(Upload.id)))
    for key in store.keys("uploads"):
        parts = key.split("/")
        if len(parts) == 3 and parts[1] not in live:
            store.delete(key)
    return result


def for_visits(
    session: Session, user: User, scope: Scope, visits: list[Visit], checks: Checks
) -> dict[str, list[dict[str, Any]]]:
    """Per visit id: the attachments of the visit, of its problems and of its home visits
    that `user` may see (described against that visit), oldest capture first."""
    by_id = {v.id: v for v in visits}
    out: dict[str, list[dict[str, Any]]] = {v.id: [] for v in visits}
    if not by_id:
        return out
    owners: dict[tuple[str, str], Visit] = {}
    for visit in visits:
        if may_read(user, scope, "visit", visit):
            owners[("visit", visit.id)] = visit
    ids = list(by_id)
    for record_type, model in (("problem", Problem), ("home_visit", HomeVisit)):
        for record in session.scalars(select(model).where(model.visit_id.in_(ids))):
            if may_read(user, scope, record_type, record):
                owners[(record_type, record.id)] = by_id[record.visit_id]
    for record_type in RECORD_TYPES:
        wanted = [rid for (kind, rid) in owners if kind == record_type]
        for att in attachments_of(session, record_type, wanted):
            visit = owners[(record_type, att.record_id)]
            out[visit.id].append(describe(att, visit, checks))
    for items in out.values():
        items.sort(key=lambda a: (a["captured_at"], a["id"]))
    return out
