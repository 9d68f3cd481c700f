"""Helpers of the attachment tests: images made with Pillow, a tus client over the
Flask test client, records pushed through sync."""

from __future__ import annotations

import base64
import hashlib
import io
import uuid

from tests.conftest import Phone, visit_fields

CAPTURED = "2026-03-05T10:25:00+08:00"
DEVICE_TIME = "2026-03-05T10:27:00+08:00"


def jpeg(width: int = 640, height: int = 480, *, exif: bool = False, seed: int = 1) -> bytes:
    """A JPEG of noise-ish pixels (so it does not compress to nothing), optionally with
    EXIF carrying GPS, a camera serial and a maker note."""
    from PIL import Image

    img = Image.effect_noise((width, height), 40 + seed).convert("RGB")
    out = io.BytesIO()
    if exif:
        data = Image.Exif()
        data[0x010F] = "ACME"  # Make
        data[0x0110] = "Phone 9"  # Model
        data[0x0112] = 1  # Orientation
        ifd = data.get_ifd(0x8769)  # Exif IFD
        ifd[0xA431] = "SERIAL-123456"  # BodySerialNumber
        gps = data.get_ifd(0x8825)
        gps[1] = "N"
        gps[2] = (30.0, 39.0, 36.0)
        gps[3] = "E"
        gps[4] = (104.0, 3.0, 36.0)
        xmp = (
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
            b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="30,39.6N"/>'
            b"</rdf:RDF></x:xmpmeta>"
        )
        img.save(out, "JPEG", quality=90, exif=data, xmp=xmp, icc_profile=b"\0" * 128)
    else:
        img.save(out, "JPEG", quality=90)
    return out.getvalue()


def png(width: int = 300, height: int = 120) -> bytes:
    """A signature-like PNG with transparency."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(10, 100), (150, 20), (290, 90)], fill=(0, 0, 0, 255), width=4)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def metadata(**values) -> str:
    """An Upload-Metadata header from values (None leaves a key out)."""
    return ",".join(
        f"{k} {base64.b64encode(str(v).encode()).decode()}"
        for k, v in values.items()
        if v is not None
    )


def meta_for(data: bytes, record_id: str, record_type: str = "visit", **extra) -> str:
    values = {
        "sha256": sha(data),
        "record_type": record_type,
        "record_id": record_id,
        "kind": "photo",
        "mime": "image/jpeg",
        "captured_at": CAPTURED,
        "device_time": DEVICE_TIME,
        "lat": "30.66",
        "lng": "104.06",
        "accuracy": "12.5",
    }
    values.update(extra)
    return metadata(**values)


TUS = {"Tus-Resumable": "1.0.0"}


def create(phone: Phone, data: bytes, record_id: str, record_type: str = "visit", **extra):
    return phone.client.post(
        "/api/uploads",
        headers={
            **phone.headers,
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": meta_for(data, record_id, record_type, **extra),
        },
    )


def patch(phone: Phone, location: str, offset: int, chunk: bytes, **headers):
    return phone.client.patch(
        location,
        data=chunk,
        headers={
            **phone.headers,
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            **headers,
        },
    )


def head(phone: Phone, location: str):
    return phone.client.head(location, headers={**phone.headers, **TUS})


def upload(
    phone: Phone, data: bytes, record_id: str, record_type: str = "visit", chunk=64 * 1024, **extra
):
    """Create and send a whole file in chunks; the last answer."""
    r = create(phone, data, record_id, record_type, **extra)
    assert r.status_code == 201, r.json
    location = r.headers["Location"]
    offset = int(r.headers["Upload-Offset"])
    last = r
    while offset < len(data):
        last = patch(phone, location, offset, data[offset : offset + chunk])
        if last.status_code != 204:
            return last
        offset = int(last.headers["Upload-Offset"])
    return last


def push_visit(phone: Phone, district: str = "510104", **fields) -> str:
    vid = str(uuid.uuid4())
    r = phone.push([phone.mutation("create", "visit", vid, visit_fields(district, **fields))])
    assert r.json["results"][0]["status"] == "applied", r.json
    return vid


def push_home_visit(phone: Phone, district: str = "510104", visit_id: str | None = None) -> str:
    hid = str(uuid.uuid4())
    fields = {
        "district_code": district,
        "visited_at": "2026-03-06T15:00:00+08:00",
        "worker_name": "王某某",
        "amount_cents": 50000,
    }
    if visit_id:
        fields["visit_id"] = visit_id
    r = phone.push([phone.mutation("create", "home_visit", hid, fields)])
    assert r.json["results"][0]["status"] == "applied", r.json
    return hid
