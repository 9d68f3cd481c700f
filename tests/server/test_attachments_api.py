"""Photo uploads over tus (issue 18): create, HEAD, PATCH, resume after a cut, offsets,
checksums, images, hostile metadata, scope and privacy, content addressing. Both
database backends (the `app` fixture); the folder storage (the S3 one is in
test_attachments_storage.py)."""

from __future__ import annotations

import io
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Phone, create_user
from tests.server.attachment_util import (
    TUS,
    create,
    head,
    jpeg,
    meta_for,
    metadata,
    patch,
    png,
    push_home_visit,
    push_visit,
    sha,
    upload,
)

OWN, OTHER = "510104", "510105"


@pytest.fixture(autouse=True)
def _own_storage(app, tmp_path):
    """A storage folder of this test's own (the data directory is shared)."""
    app.config["FV"].values["ATTACHMENTS_DIR"] = str(tmp_path / "attachments")
    app.extensions.pop("fieldvisit.attachments", None)


@pytest.fixture
def cadre(client, app):
    create_user("cadre", "field_cadre", OWN, "WG01")
    return Phone(client, "cadre")


def _store(app):
    from server.api.uploads import attachment_store

    return attachment_store()


def _upload_row(upload_id: str):
    from server.extensions import db
    from server.models_attachments import Upload

    db.session.expire_all()
    return db.session.get(Upload, upload_id)


def test_options_announces_the_protocol(client):
    r = client.options("/api/uploads")
    assert r.status_code == 204
    assert r.headers["Tus-Resumable"] == "1.0.0"
    assert r.headers["Tus-Version"] == "1.0.0"
    assert r.headers["Tus-Extension"] == "creation"
    assert int(r.headers["Tus-Max-Size"]) == 10 * 1024 * 1024


def test_create_head_patch_and_the_stored_image(cadre, app, client):
    vid = push_visit(cadre)
    data = jpeg(800, 600)
    r = create(cadre, data, vid)
    assert r.status_code == 201, r.json
    assert r.headers["Tus-Resumable"] == "1.0.0"
    location = r.headers["Location"]
    assert location.startswith("/api/uploads/") and r.headers["Upload-Offset"] == "0"
    h = head(cadre, location)
    assert h.status_code == 200
    assert (h.headers["Upload-Offset"], h.headers["Upload-Length"]) == ("0", str(len(data)))
    assert h.headers["Cache-Control"] == "no-store" and h.headers["Tus-Resumable"] == "1.0.0"
    half = len(data) // 2
    r = patch(cadre, location, 0, data[:half])
    assert r.status_code == 204 and r.headers["Upload-Offset"] == str(half)
    assert r.headers["Tus-Resumable"] == "1.0.0"
    r = patch(cadre, location, half, data[half:])
    assert r.status_code == 204, r.json
    assert r.headers["Upload-Offset"] == str(len(data))
    att_id = r.headers["Upload-Attachment-Id"]
    listed = cadre.get(f"/api/attachments?record_type=visit&record_id={vid}")
    assert listed.status_code == 200
    (item,) = listed.json["attachments"]
    assert item["id"] == att_id and item["kind"] == "photo"
    assert item["clock_difference_seconds"] == 120  # the phone's clock was 2 min ahead
    assert (item["lat"], item["lng"], item["accuracy"]) == (30.66, 104.06, 12.5)
    assert (item["width"], item["height"], item["original_size"]) == (800, 600, len(data))
    full = cadre.get(item["full_url"])
    assert full.status_code == 200 and full.mimetype == "image/jpeg"
    assert full.headers["Cache-Control"] == "private, no-store"
    thumb = cadre.get(item["thumb_url"])
    from PIL import Image

    assert max(Image.open(io.BytesIO(thumb.data)).size) == 320
    assert Image.open(io.BytesIO(full.data)).size == (800, 600)
    # the chunks are gone from the storage once the upload is complete
    assert _store(app).keys(f"uploads/{location.rsplit('/', 1)[1]}") == []


def test_resume_after_a_cut_half_way_stores_every_byte_once(cadre, app):
    vid = push_visit(cadre)
    data = jpeg(1000, 700, seed=3)
    r = create(cadre, data, vid)
    location = r.headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    quarter = len(data) // 4
    assert patch(cadre, location, 0, data[:quarter]).status_code == 204
    # the connection drops half-way through the second chunk: Content-Length promises
    # the whole chunk, the body ends early
    cut = cadre.client.patch(
        location,
        input_stream=io.BytesIO(data[quarter : 2 * quarter]),
        headers={
            **cadre.headers,
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(quarter),
        },
        environ_overrides={"CONTENT_LENGTH": str(len(data) - quarter)},
    )
    assert cut.status_code == 400 and cut.json["error"]["code"] == "incomplete_body"
    h = head(cadre, location)
    assert h.headers["Upload-Offset"] == str(quarter)  # nothing of the cut chunk counts
    offset = int(h.headers["Upload-Offset"])
    r = patch(cadre, location, offset, data[offset:])
    assert r.status_code == 204, r.json
    row = _upload_row(upload_id)
    assert row.completed_at is not None
    assert row.bytes_received == len(data)  # every byte stored once
    from server.extensions import db
    from server.models_attachments import AttachmentBlob

    blob = db.session.get(AttachmentBlob, sha(data))
    assert blob.original_size == len(data)
    from PIL import Image

    stored = Image.open(io.BytesIO(_store(app).get(blob.full_key)))
    original = Image.open(io.BytesIO(data))
    assert stored.size == original.size


def test_wrong_offset_is_409_with_the_servers_offset(cadre):
    vid = push_visit(cadre)
    data = jpeg()
    location = create(cadre, data, vid).headers["Location"]
    assert patch(cadre, location, 0, data[:1000]).status_code == 204
    for wrong in (0, 500, 2000):
        r = patch(cadre, location, wrong, data[wrong : wrong + 100])
        assert r.status_code == 409
        assert r.json["error"]["code"] == "offset_mismatch"
        assert r.headers["Upload-Offset"] == "1000"
    assert head(cadre, location).headers["Upload-Offset"] == "1000"


def test_patch_needs_the_offset_content_type_and_bounded_chunks(cadre, app):
    vid = push_visit(cadre)
    data = jpeg()
    location = create(cadre, data, vid).headers["Location"]
    r = cadre.client.patch(
        location,
        data=data[:10],
        headers={**cadre.headers, "Upload-Offset": "0", "Content-Type": "application/json"},
    )
    assert r.status_code == 415
    r = patch(cadre, location, 0, data + b"x")
    assert r.status_code == 400 and r.json["error"]["code"] == "beyond_length"
    app.config["FV"].values["UPLOAD_CHUNK_MAX"] = 1000
    r = patch(cadre, location, 0, data[:1001])
    assert r.status_code == 413
    assert patch(cadre, location, 0, data[:1000]).status_code == 204
    r = cadre.client.patch(
        location,
        data=b"",
        headers={**cadre.headers, "Content-Type": "application/offset+octet-stream"},
    )
    assert r.status_code == 400 and r.json["error"]["field"] == "Upload-Offset"


def test_other_tus_version_is_412(cadre):
    r = cadre.client.options("/api/uploads", headers={"Tus-Resumable": "0.2.2"})
    assert r.status_code == 204  # OPTIONS is how a client finds the version out
    vid = push_visit(cadre)
    data = jpeg()
    r = cadre.client.post(
        "/api/uploads",
        headers={
            **cadre.headers,
            "Tus-Resumable": "0.2.2",
            "Upload-Length": str(len(data)),
            "Upload-Metadata": meta_for(data, vid),
        },
    )
    assert r.status_code == 412 and r.json["error"]["code"] == "tus_version_unsupported"
    assert r.headers["Tus-Resumable"] == "1.0.0"


def test_checksum_mismatch_resets_the_upload(cadre):
    vid = push_visit(cadre)
    data = jpeg()
    location = create(cadre, data, vid).headers["Location"]
    spoiled = data[:-10] + bytes(10)
    assert patch(cadre, location, 0, spoiled[:2000]).status_code == 204
    r = patch(cadre, location, 2000, spoiled[2000:])
    assert r.status_code == 422 and r.json["error"]["code"] == "checksum_mismatch"
    assert head(cadre, location).headers["Upload-Offset"] == "0"
    r = patch(cadre, location, 0, data)
    assert r.status_code == 204 and r.headers["Upload-Offset"] == str(len(data))


def test_not_an_image_and_wrong_mime_are_refused(cadre):
    vid = push_visit(cadre)
    junk = b"this is not a photo at all" * 100
    r = upload(cadre, junk, vid)
    assert r.status_code == 422 and r.json["error"]["code"] == "not_an_image"
    truncated = jpeg(seed=5)[:3000]
    r = upload(cadre, truncated, vid)
    assert r.status_code == 422 and r.json["error"]["code"] == "not_an_image"
    r = upload(cadre, png(), vid)  # declared image/jpeg
    assert r.status_code == 422 and r.json["error"]["code"] == "mime_mismatch"
    listed = cadre.get(f"/api/attachments?record_type=visit&record_id={vid}")
    assert listed.json["attachments"] == []


def test_decompression_bomb_is_refused_before_decoding(cadre, app):
    from PIL import Image

    vid = push_visit(cadre)
    # 20000 x 20000 of one colour: a few hundred kilobytes, 400 megapixels decoded
    out = io.BytesIO()
    Image.new("L", (20000, 20000)).save(out, "PNG", optimize=True)
    bomb = out.getvalue()
    assert len(bomb) < 2 * 1024 * 1024
    app.config["FV"].values["UPLOAD_CHUNK_MAX"] = 2 * 1024 * 1024
    r = upload(cadre, bomb, vid, mime="image/png", chunk=2 * 1024 * 1024)
    assert r.status_code == 422 and r.json["error"]["code"] == "image_too_large"
    # under the setting's own limit too
    app.config["FV"].values["ATTACHMENT_MAX_PIXELS"] = 100_000
    r = upload(cadre, jpeg(400, 300), vid)
    assert r.status_code == 422 and r.json["error"]["code"] == "image_too_large"


def test_exif_gps_serial_xmp_icc_are_stripped(cadre, app):
    from PIL import Image

    vid = push_visit(cadre)
    data = jpeg(900, 600, exif=True)
    original = Image.open(io.BytesIO(data))
    assert original.getexif().get_ifd(0x8825)  # GPS is there to begin with
    assert b"SERIAL-123456" in data and b"GPSLatitude" in data
    r = upload(cadre, data, vid)
    assert r.status_code == 204, r.json
    item = cadre.get(f"/api/attachments?record_type=visit&record_id={vid}").json["attachments"][0]
    for url in (item["full_url"], item["thumb_url"]):
        stored = cadre.get(url).data
        img = Image.open(io.BytesIO(stored))
        assert not img.getexif(), url
        assert "exif" not in img.info and "icc_profile" not in img.info and "xmp" not in img.info
        assert b"SERIAL-123456" not in stored and b"ACME" not in stored
        assert b"GPSLatitude" not in stored and b"Exif" not in stored


def test_signature_png_keeps_transparency(cadre):
    from PIL import Image

    vid = push_visit(cadre)
    data = png()
    r = upload(cadre, data, vid, kind="signature", mime="image/png")
    assert r.status_code == 204, r.json
    item = cadre.get(f"/api/attachments?record_type=visit&record_id={vid}").json["attachments"][0]
    assert item["kind"] == "signature" and item["mime"] == "image/png"
    full = Image.open(io.BytesIO(cadre.get(item["full_url"]).data))
    assert full.mode == "RGBA" and full.getpixel((0, 0))[3] == 0


def test_record_must_be_synced_first(cadre):
    data = jpeg()
    r = create(cadre, data, str(uuid.uuid4()))
    assert r.status_code == 409 and r.json["error"]["code"] == "record_not_synced"
    assert r.json["error"]["field"] == "record_id"


def test_record_deleted_between_create_and_last_chunk(cadre):
    vid = push_visit(cadre)
    data = jpeg()
    location = create(cadre, data, vid).headers["Location"]
    assert patch(cadre, location, 0, data[:1000]).status_code == 204
    cadre.push([cadre.mutation("delete", "visit", vid)])
    r = patch(cadre, location, 1000, data[1000:])
    assert r.status_code == 409 and r.json["error"]["code"] == "record_deleted"
    assert head(cadre, location).status_code == 404


def test_scope_of_writes(client, cadre):
    create_user("other", "field_cadre", OTHER, "WG02")
    create_user("super", "supervisor")
    other, supervisor = Phone(client, "other"), Phone(client, "super")
    vid = push_visit(cadre)
    data = jpeg()
    r = create(other, data, vid)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    r = create(supervisor, data, vid)
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    # another user's upload is not there for them
    location = create(cadre, data, vid).headers["Location"]
    assert head(other, location).status_code == 404
    assert patch(other, location, 0, data).status_code == 404
    assert client.head(location).status_code == 401


def test_scope_of_reads(client, cadre):
    create_user("other", "field_cadre", OTHER, "WG02")
    create_user("super", "supervisor")
    create_user("head", "district_head", OWN)
    vid = push_visit(cadre)
    assert upload(cadre, jpeg(), vid).status_code == 204
    url = f"/api/attachments?record_type=visit&record_id={vid}"
    (item,) = cadre.get(url).json["attachments"]
    other = Phone(client, "other")
    assert other.get(url).status_code == 404
    assert other.get(item["thumb_url"]).status_code == 404
    assert other.get(item["full_url"]).status_code == 404
    for name in ("super", "head"):
        reader = Phone(client, name)
        assert reader.get(url).json["attachments"][0]["id"] == item["id"], name
        assert reader.get(item["full_url"]).status_code == 200, name
    assert client.get(item["thumb_url"]).status_code == 401
    # a deleted record's photos are gone for everybody at once
    cadre.push([cadre.mutation("delete", "visit", vid)])
    assert cadre.get(item["thumb_url"]).status_code == 404
    assert cadre.get(url).status_code == 404


def test_home_visit_photos_only_for_roles_that_see_its_personal_data(client, cadre):
    create_user("coord", "city_coordinator")
    create_user("super", "supervisor")
    create_user("head", "district_head", OWN)
    hid = push_home_visit(cadre)
    r = upload(cadre, jpeg(seed=9), hid, "home_visit", kind="photo")
    assert r.status_code == 204, r.json
    url = f"/api/attachments?record_type=home_visit&record_id={hid}"
    (item,) = cadre.get(url).json["attachments"]
    assert cadre.get(item["full_url"]).headers["Cache-Control"] == "private, no-store"
    head_phone = Phone(client, "head")
    assert head_phone.get(item["thumb_url"]).status_code == 200
    for name in ("coord", "super"):
        city = Phone(client, name)
        assert city.get(url).status_code == 404, name
        assert city.get(item["thumb_url"]).status_code == 404, name
        assert city.get(item["full_url"]).status_code == 404, name


def test_same_photo_twice_is_stored_once(client, cadre, app):
    from sqlalchemy import func, select

    from server.extensions import db
    from server.models_attachments import Attachment, AttachmentBlob

    vid, vid2 = push_visit(cadre), push_visit(cadre)
    data = jpeg(seed=11)
    assert upload(cadre, data, vid).status_code == 204
    # the same photo for the same record again (a retried queue): nothing to send
    again = create(cadre, data, vid)
    assert again.status_code == 201 and again.headers["Upload-Offset"] == str(len(data))
    assert head(cadre, again.headers["Location"]).headers["Upload-Offset"] == str(len(data))
    # the same bytes on another record: sent (proof of having them), stored once
    assert upload(cadre, data, vid2).status_code == 204
    assert db.session.scalar(select(func.count()).select_from(AttachmentBlob)) == 1
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 2
    blob_keys = _store(app).keys("blobs")
    assert len(blob_keys) == 2  # one full, one thumbnail
    # a second create of an unfinished upload resumes it
    data3 = jpeg(seed=12)
    first = create(cadre, data3, vid)
    assert patch(cadre, first.headers["Location"], 0, data3[:500]).status_code == 204
    second = create(cadre, data3, vid)
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Upload-Offset"] == "500"


@pytest.mark.parametrize(
    "header,field",
    [
        (None, "Upload-Metadata"),
        ("", "Upload-Metadata"),
        ("sha256 !!!", "sha256"),
        ("sha256 YQ==,sha256 YQ==", "sha256"),
        ("bad key YQ==", "Upload-Metadata"),
    ],
)
def test_malformed_metadata_headers(cadre, header, field):
    headers = {**cadre.headers, **TUS, "Upload-Length": "100"}
    if header is not None:
        headers["Upload-Metadata"] = header
    r = cadre.client.post("/api/uploads", headers=headers)
    assert r.status_code == 400 and r.json["error"]["field"] == field, r.json


@pytest.mark.parametrize(
    "change,field",
    [
        ({"sha256": "abc"}, "sha256"),
        ({"record_type": "enterprise"}, "record_type"),
        ({"record_id": "not-a-uuid"}, "record_id"),
        ({"kind": "video"}, "kind"),
        ({"mime": "image/gif"}, "mime"),
        ({"captured_at": "2026-03-05T10:25:00"}, "captured_at"),
        ({"captured_at": "yesterday"}, "captured_at"),
        ({"device_time": None}, "device_time"),
        ({"lat": "91"}, "lat"),
        ({"lng": "nan"}, "lng"),
        ({"lat": None}, "lat"),
        ({"accuracy": "-1"}, "accuracy"),
    ],
)
def test_invalid_metadata_values(cadre, change, field):
    vid = push_visit(cadre)
    change = dict(change)
    r = create(cadre, jpeg(), change.pop("record_id", vid), **change)
    assert r.status_code == 400 and r.json["error"]["field"] == field, r.json


def test_upload_length_limits(cadre, app):
    vid = push_visit(cadre)
    data = jpeg()
    for length, status in (
        ("0", 400),
        ("-5", 400),
        ("abc", 400),
        ("²", 400),
        (str(10 * 1024 * 1024 + 1), 413),
    ):
        r = cadre.client.post(
            "/api/uploads",
            headers={
                **cadre.headers,
                **TUS,
                "Upload-Length": length,
                "Upload-Metadata": meta_for(data, vid),
            },
        )
        assert r.status_code == status, (length, r.json)


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    values=st.dictionaries(
        st.sampled_from(
            [
                "sha256",
                "record_type",
                "record_id",
                "kind",
                "mime",
                "captured_at",
                "device_time",
                "lat",
                "lng",
                "accuracy",
                "filename",
            ]
        ),
        _text,
    ),
    raw=st.one_of(
        st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200)
    ),
    length=st.one_of(
        st.integers(-10, 2**40).map(str),
        st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=20),
    ),
)
def test_hostile_metadata_never_breaks_the_server(cadre, values, raw, length):
    header = raw if raw is not None else metadata(**values)
    r = cadre.client.post(
        "/api/uploads",
        headers={
            **cadre.headers,
            **TUS,
            "Upload-Length": length.replace("\n", "").replace("\r", ""),
            "Upload-Metadata": header,
        },
    )
    assert r.status_code in (400, 404, 409, 413), (r.status_code, r.json)
    assert set(r.json["error"]) >= {"code", "message"}
    assert r.headers["Tus-Resumable"] == "1.0.0"


def test_a_real_connection_cut_mid_chunk_stores_nothing_of_it(cadre, app):
    """Over TCP to a real server: headers and half of a chunk, then the socket closes."""
    import http.client
    import socket
    import threading

    from werkzeug.serving import make_server

    vid = push_visit(cadre)
    data = jpeg(900, 700, seed=41)
    location = create(cadre, data, vid).headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    third = len(data) // 3
    assert patch(cadre, location, 0, data[:third]).status_code == 204
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_port
        rest = data[third:]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            head_lines = [
                f"PATCH {location} HTTP/1.1",
                f"Host: 127.0.0.1:{port}",
                f"Authorization: {cadre.headers['Authorization']}",
                "Tus-Resumable: 1.0.0",
                "Content-Type: application/offset+octet-stream",
                f"Upload-Offset: {third}",
                f"Content-Length: {len(rest)}",
            ]
            sock.sendall(("\r\n".join(head_lines) + "\r\n\r\n").encode())
            sock.sendall(rest[: len(rest) // 2])
            sock.shutdown(socket.SHUT_WR)  # the link drops: no more bytes will come
            sock.recv(4096)  # whatever the server says (or nothing) before it closes
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("HEAD", location, headers={**cadre.headers, **TUS})
        answer = conn.getresponse()
        assert answer.status == 200
        offset = int(answer.getheader("Upload-Offset"))
        assert offset == third  # nothing of the cut chunk was kept
        conn.close()
    finally:
        server.shutdown()
        thread.join(5)
    r = patch(cadre, location, offset, data[offset:])
    assert r.status_code == 204, r.json
    row = _upload_row(upload_id)
    assert row.completed_at is not None and row.bytes_received == len(data)


def test_a_raced_chunk_at_the_same_offset_is_refused_and_not_counted(cadre, app):
    """Two requests at one offset: the second's stale view loses on the guarded update."""
    from sqlalchemy.orm import Session

    from server.attachments import Limits, append_chunk
    from server.extensions import db
    from server.models import User
    from server.models_attachments import Upload
    from server.scope import scope_of

    vid = push_visit(cadre)
    data = jpeg(seed=51)
    location = create(cadre, data, vid).headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    # A second request's own session read the upload at offset 0 ...
    other = Session(db.engine)
    stale = other.get(Upload, upload_id)
    other.expunge(stale)
    other.commit()
    assert stale.received == 0
    # ... then the first request stored its chunk at that offset
    assert patch(cadre, location, 0, data[:1000]).status_code == 204
    user = db.session.get(User, stale.user_id)
    result = append_chunk(
        other,
        _store(app),
        upload=stale,
        scope=scope_of(user),
        offset=0,
        data=data[:1500],
        limits=Limits(),
    )
    assert result.error is not None and result.error.code == "offset_mismatch"
    assert result.error.extra["upload_offset"] == 1000
    other.commit()
    other.close()
    for key in result.garbage:  # its stored chunk is listed for deletion
        _store(app).delete(key)
    row = _upload_row(upload_id)
    assert (row.received, row.bytes_received) == (1000, 1000)
    assert head(cadre, location).headers["Upload-Offset"] == "1000"
    assert patch(cadre, location, 1000, data[1000:]).status_code == 204
