"""The attachment storage behind one interface: the folder and S3, the latter against a
real S3-compatible HTTP server started here (moto's ThreadedMotoServer from PyPI, on a
free port of 127.0.0.1: it speaks the S3 REST API; it is not MinIO, which
docker-compose.yml runs). Under CI=true a server that cannot start fails the tests.
Also the retention sweep that removes a deleted record's photos."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import IN_CI, Phone, create_user, service_missing
from tests.server.attachment_util import jpeg, meta_for, push_visit, sha, upload

BUCKET = "fieldvisit-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    """An S3 API server on a free local port, for the module."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        if IN_CI:
            pytest.fail("moto[s3] (the S3 test server) is required under CI=true")
        service_missing("moto's S3 server (pip install 'moto[s3]' flask-cors)")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - whatever stops it, CI must hear of it
        service_missing(f"moto's S3 server ({type(exc).__name__})")
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _s3(endpoint: str, bucket: str = BUCKET):
    from server.attachments_store import S3Store

    return S3Store(
        bucket,
        endpoint_url=endpoint,
        access_key="test",
        secret_key="test",
        create_bucket=True,
    )


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    from server.attachments_store import LocalStore

    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return _s3(request.getfixturevalue("s3_endpoint"), f"b{uuid.uuid4().hex[:12]}")


def test_put_get_exists_delete_keys(store):
    assert store.keys("uploads") == []
    store.put("uploads/u1/000000000000-aa", b"first", "application/octet-stream")
    store.put("uploads/u1/000000001000-bb", b"second", "application/octet-stream")
    store.put("blobs/ab/abc/full.jpg", b"\xff\xd8image", "image/jpeg")
    assert store.get("uploads/u1/000000000000-aa") == b"first"
    assert store.exists("blobs/ab/abc/full.jpg") and not store.exists("blobs/ab/abc/thumb.jpg")
    assert store.keys("uploads") == ["uploads/u1/000000000000-aa", "uploads/u1/000000001000-bb"]
    assert store.keys("uploads/u1") == store.keys("uploads")
    store.put("uploads/u1/000000000000-aa", b"replaced", "application/octet-stream")
    assert store.get("uploads/u1/000000000000-aa") == b"replaced"
    store.delete("uploads/u1/000000000000-aa")
    store.delete("uploads/u1/000000000000-aa")  # deleting twice is fine
    with pytest.raises(KeyError):
        store.get("uploads/u1/000000000000-aa")
    assert store.keys("uploads") == ["uploads/u1/000000001000-bb"]


@pytest.mark.parametrize("key", ["../etc/passwd", "a/../../b", "/abs", "a//b", "a b", ""])
def test_hostile_keys_are_refused(store, key):
    with pytest.raises(ValueError):
        store.put(key, b"x", "application/octet-stream")


def test_local_store_leaves_no_temporary_files(tmp_path):
    from server.attachments_store import LocalStore

    store = LocalStore(tmp_path / "s")
    for i in range(5):
        store.put("blobs/aa/x/full.jpg", bytes([i]) * 1000, "image/jpeg")
    assert [p.name for p in (tmp_path / "s/blobs/aa/x").iterdir()] == ["full.jpg"]
    store.delete("blobs/aa/x/full.jpg")
    assert list((tmp_path / "s").iterdir()) == []  # empty folders go too


def test_settings_choose_the_backend(tmp_path):
    from config.settings import SettingsError, load_settings
    from server.attachments_store import LocalStore, S3Store, store_from_settings

    local = load_settings({}, DATA_DIR=str(tmp_path))
    assert isinstance(store_from_settings(local), LocalStore)
    assert store_from_settings(local).root == tmp_path / "attachments"
    s3 = load_settings(
        {"ATTACHMENTS_STORAGE": "s3", "S3_ENDPOINT_URL": "http://127.0.0.1:9"},
        DATA_DIR=str(tmp_path),
    )
    assert isinstance(store_from_settings(s3), S3Store)
    with pytest.raises(SettingsError, match="ATTACHMENTS_STORAGE"):
        load_settings({"ATTACHMENTS_STORAGE": "ftp"})
    with pytest.raises(SettingsError, match="UPLOAD_CHUNK_MAX"):
        load_settings({"UPLOAD_CHUNK_MAX": str(10 * 1024 * 1024)})


def test_unreachable_s3_is_a_503_not_a_500(client, app, tmp_path):
    create_user("cadre", "field_cadre", "510104", "WG01")
    phone = Phone(client, "cadre")
    vid = push_visit(phone)
    from server.attachments_store import S3Store

    # a port nothing listens on: connection refused
    app.extensions["fieldvisit.attachments"] = S3Store(
        BUCKET, endpoint_url="http://127.0.0.1:9", access_key="x", secret_key="y"
    )
    r = upload(phone, jpeg(), vid)
    assert r.status_code == 503 and r.json["error"]["code"] == "storage_unavailable"


def test_whole_upload_through_the_api_on_s3(client, app, s3_endpoint):
    create_user("cadre", "field_cadre", "510104", "WG01")
    phone = Phone(client, "cadre")
    vid = push_visit(phone)
    s3 = _s3(s3_endpoint, f"b{uuid.uuid4().hex[:12]}")
    app.extensions["fieldvisit.attachments"] = s3
    data = jpeg(1200, 900, exif=True)
    r = upload(phone, data, vid, chunk=20_000)
    assert r.status_code == 204, r.json
    item = phone.get(f"/api/attachments?record_type=visit&record_id={vid}").json["attachments"][0]
    full = phone.get(item["full_url"])
    assert full.status_code == 200 and b"SERIAL-123456" not in full.data
    assert s3.keys("uploads") == []  # the chunks were deleted once the file was whole
    digest = sha(data)
    assert s3.keys("blobs") == [
        f"blobs/{digest[:2]}/{digest}/full.jpg",
        f"blobs/{digest[:2]}/{digest}/thumb.jpg",
    ]
    assert s3.get(f"blobs/{digest[:2]}/{digest}/full.jpg") == full.data


@pytest.fixture
def local_store(app, tmp_path):
    app.config["FV"].values["ATTACHMENTS_DIR"] = str(tmp_path / "attachments")
    app.extensions.pop("fieldvisit.attachments", None)
    from server.api.uploads import attachment_store

    with app.test_request_context():
        return attachment_store()


def _age(model, record_id: str, days: int) -> None:
    from sqlalchemy import update

    from server.extensions import db

    db.session.execute(
        update(model)
        .where(model.id == record_id)
        .values(updated_at=datetime.now(UTC) - timedelta(days=days))
    )
    db.session.commit()


def test_retention_removes_a_deleted_records_photos_but_keeps_shared_files(
    client, app, local_store
):
    from sqlalchemy import func, select

    from server.cli import erase_personal_cmd
    from server.extensions import db
    from server.models import Visit
    from server.models_attachments import Attachment, AttachmentBlob, Upload

    create_user("cadre", "field_cadre", "510104", "WG01")
    phone = Phone(client, "cadre")
    kept, doomed, recent = push_visit(phone), push_visit(phone), push_visit(phone)
    shared, own = jpeg(seed=21), jpeg(seed=22)
    for vid, data in ((kept, shared), (doomed, shared), (doomed, own), (recent, own)):
        assert upload(phone, data, vid).status_code == 204
    # an upload left half-way long ago
    r = phone.client.post(
        "/api/uploads",
        headers={
            **phone.headers,
            "Upload-Length": "5000",
            "Upload-Metadata": meta_for(jpeg(seed=23), kept),
        },
    )
    stale_id = r.headers["Location"].rsplit("/", 1)[1]
    phone.client.patch(
        r.headers["Location"],
        data=b"x" * 100,
        headers={
            **phone.headers,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
        },
    )
    assert local_store.keys(f"uploads/{stale_id}")
    phone.push(
        [phone.mutation("delete", "visit", doomed), phone.mutation("delete", "visit", recent)]
    )
    _age(Visit, doomed, 31)
    _age(Visit, recent, 5)
    db.session.execute(
        Upload.__table__.update()
        .where(Upload.id == stale_id)
        .values(updated_at=datetime.now(UTC) - timedelta(days=8))
    )
    db.session.commit()
    result = app.test_cli_runner().invoke(erase_personal_cmd, [])
    assert result.exit_code == 0, result.output
    assert "removed 2 attachments" in result.output, result.output
    db.session.expire_all()
    left = {(a.record_id, a.blob_sha256) for a in db.session.scalars(select(Attachment))}
    assert left == {(kept, sha(shared)), (recent, sha(own))}
    # both files are still used by a live or not-yet-expired record: both stay
    assert db.session.scalar(select(func.count()).select_from(AttachmentBlob)) == 2
    assert len(local_store.keys("blobs")) == 4
    assert db.session.get(Upload, stale_id) is None
    assert local_store.keys("uploads") == []
    # when the last record using a file has gone too, the file goes
    _age(Visit, recent, 40)
    result = app.test_cli_runner().invoke(erase_personal_cmd, [])
    assert "removed 1 attachments" in result.output, result.output
    assert db.session.scalar(select(func.count()).select_from(AttachmentBlob)) == 1
    digest = sha(shared)
    assert local_store.keys("blobs") == [
        f"blobs/{digest[:2]}/{digest}/full.jpg",
        f"blobs/{digest[:2]}/{digest}/thumb.jpg",
    ]
