"""Server-side photo ingest benchmark (issue 18): tus upload throughput and image
processing speed for 12-megapixel JPEGs made with Pillow.

On a fresh SQLite database and the folder storage (a temporary DATA_DIR):

- `process_*`: server/attachments.process_image on each photo (decode with the pixel
  limit, EXIF orientation, re-encode from bare pixels at ATTACHMENT_FULL_MAX_PX, 320 px
  thumbnail) — the CPU work of the last chunk; photos per second, one core;
- `thumb_only`: decode + 320 px thumbnail alone (what "thumbnails per second" means if
  the full image were not re-encoded);
- `ingest_*`: whole uploads (POST, then PATCH chunks of --chunk bytes, the last one
  completing the upload) through the Flask test client (`ingest_test_client`, no
  network) and over HTTP to a threaded werkzeug server on 127.0.0.1 (`ingest_http`):
  MB/s of file bytes, with the share of time spent completing (checksum, decode,
  re-encode, thumbnail, storage).

Also the same for phone-sized photos (1600 x 1200, about 250 KB: what the field app
sends after compressing), which is the everyday case. Prints JSON.

    .venv/bin/python bench/photo_ingest_bench.py [--photos 6] [--chunk 262144]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import io
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PASSWORD = "bench-pass-1"


def photo(width: int, height: int, seed: int, quality: int = 90) -> bytes:
    """A photo-like JPEG: smooth noise scaled up (textures, no flat areas), with EXIF."""
    from PIL import Image, ImageFilter

    small = Image.merge(
        "RGB",
        [Image.effect_noise((width // 10, height // 10), 60 + seed + i) for i in range(3)],
    )
    img = small.resize((width, height), Image.Resampling.BICUBIC)
    img = img.filter(ImageFilter.UnsharpMask(radius=2, percent=80))
    exif = Image.Exif()
    exif[0x010F] = "Bench"
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, exif=exif)
    return out.getvalue()


def _meta(data: bytes, record_id: str) -> str:
    values = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "record_type": "visit",
        "record_id": record_id,
        "kind": "photo",
        "mime": "image/jpeg",
        "captured_at": "2026-03-05T10:25:00+08:00",
        "device_time": "2026-03-05T10:25:30+08:00",
        "lat": "30.66",
        "lng": "104.06",
    }
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def time_processing(photos: list[bytes]) -> dict:
    from PIL import Image

    from server.attachments import Limits, process_image

    limits = Limits()
    start = time.perf_counter()
    for data in photos:
        process_image(data, "image/jpeg", limits)
    full = time.perf_counter() - start
    start = time.perf_counter()
    for data in photos:
        img = Image.open(io.BytesIO(data))
        img.draft("RGB", (320, 320))
        img.thumbnail((320, 320))
        img.convert("RGB").save(io.BytesIO(), "JPEG", quality=75)
    thumbs = time.perf_counter() - start
    return {
        "photos": len(photos),
        "mean_bytes": round(sum(map(len, photos)) / len(photos)),
        "process_per_s": round(len(photos) / full, 2),
        "process_ms_each": round(full / len(photos) * 1000, 1),
        "thumb_only_per_s": round(len(photos) / thumbs, 2),
    }


class TestClientUploader:
    """tus through the Flask test client (in process)."""

    def __init__(self, client, token: str) -> None:  # noqa: ANN001
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def create(self, data: bytes, record_id: str) -> str:
        r = self.client.post(
            "/api/uploads",
            headers={
                **self.headers,
                "Tus-Resumable": "1.0.0",
                "Upload-Length": str(len(data)),
                "Upload-Metadata": _meta(data, record_id),
            },
        )
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.headers["Location"]

    def patch(self, location: str, offset: int, chunk: bytes) -> int:
        r = self.client.patch(
            location,
            data=chunk,
            headers={
                **self.headers,
                "Tus-Resumable": "1.0.0",
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset),
            },
        )
        assert r.status_code == 204, r.get_data(as_text=True)
        return int(r.headers["Upload-Offset"])


class HttpUploader:
    """tus over HTTP/1.1 to a server on 127.0.0.1 (one kept-alive connection)."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}

    def _send(self, method: str, path: str, body: bytes | None, headers: dict) -> tuple:
        self.conn.request(method, path, body=body, headers={**self.headers, **headers})
        r = self.conn.getresponse()
        text = r.read()
        return r.status, dict(r.getheaders()), text

    def create(self, data: bytes, record_id: str) -> str:
        status, headers, text = self._send(
            "POST",
            "/api/uploads",
            b"",
            {"Upload-Length": str(len(data)), "Upload-Metadata": _meta(data, record_id)},
        )
        assert status == 201, text
        return headers["Location"]

    def patch(self, location: str, offset: int, chunk: bytes) -> int:
        status, headers, text = self._send(
            "PATCH",
            location,
            chunk,
            {"Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)},
        )
        assert status == 204, text
        return int(headers["Upload-Offset"])


def time_ingest(uploader, photos: list[bytes], record_id: str, chunk: int) -> dict:  # noqa: ANN001
    total = transfer = complete = 0.0
    for data in photos:
        start = time.perf_counter()
        location = uploader.create(data, record_id)
        offset = 0
        while offset < len(data):
            piece = data[offset : offset + chunk]
            last = offset + len(piece) == len(data)
            t0 = time.perf_counter()
            offset = uploader.patch(location, offset, piece)
            if last:
                complete += time.perf_counter() - t0
        total += time.perf_counter() - start
    transfer = total - complete
    mb = sum(map(len, photos)) / 1e6
    return {
        "photos": len(photos),
        "megabytes": round(mb, 2),
        "chunk_bytes": chunk,
        "mb_per_s": round(mb / total, 2),
        "mb_per_s_before_completion": round(mb / transfer, 2) if transfer else None,
        "completion_share": round(complete / total, 2),
        "photos_per_s": round(len(photos) / total, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--chunk", type=int, default=256 * 1024)
    args = parser.parse_args()
    big = [photo(4000, 3000, seed) for seed in range(args.photos)]
    small = [photo(1600, 1200, seed, quality=80) for seed in range(args.photos * 4)]
    result: dict = {
        "cpu_count": os.cpu_count(),
        "processing_12mp": time_processing(big),
        "processing_1600px": time_processing(small),
    }
    with tempfile.TemporaryDirectory() as tmp:
        from werkzeug.serving import make_server

        from server.app import create_app

        app = create_app(
            DATABASE_URL=f"sqlite:///{tmp}/bench.db",
            DATA_DIR=tmp,
            LOG_LEVEL="WARNING",
            LOG_JSON=False,
        )
        with app.app_context():
            from server.auth import hash_password
            from server.cli import upgrade_database
            from server.extensions import db
            from server.models import User

            upgrade_database()
            db.session.add(
                User(
                    username="bench",
                    display_name="bench",
                    role="admin",
                    password_hash=hash_password(PASSWORD),
                )
            )
            db.session.commit()
        client = app.test_client()
        login = client.post("/api/auth/login", json={"username": "bench", "password": PASSWORD})
        token, device_id = login.json["token"], login.json["device_id"]
        headers = {"Authorization": f"Bearer {token}"}
        visits = []
        for n in range(4):
            vid = str(uuid.uuid4())
            body = {
                "protocol": 1,
                "device_id": device_id,
                "mutations": [
                    {
                        "mid": n + 1,
                        "op": "create",
                        "entity": "visit",
                        "id": vid,
                        "fields": {
                            "method": "symposium",
                            "visited_at": "2026-03-05T10:20:00+08:00",
                            "district_code": "510104",
                            "workers_met": 5,
                        },
                    }
                ],
            }
            r = client.post("/api/sync/push", json=body, headers=headers)
            assert r.json["results"][0]["status"] == "applied", r.json
            visits.append(vid)
        tc = TestClientUploader(client, token)
        result["ingest_test_client_12mp"] = time_ingest(tc, big, visits[0], args.chunk)
        result["ingest_test_client_1600px"] = time_ingest(tc, small, visits[1], 64 * 1024)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            # other bytes than above: the same photo on a record twice is not sent again
            big2 = [photo(4000, 3000, 100 + s) for s in range(args.photos)]
            small2 = [photo(1600, 1200, 100 + s, quality=80) for s in range(args.photos * 4)]
            hu = HttpUploader(server.server_port, token)
            result["ingest_http_12mp"] = time_ingest(hu, big2, visits[2], args.chunk)
            result["ingest_http_1600px"] = time_ingest(hu, small2, visits[3], 64 * 1024)
        finally:
            server.shutdown()
            thread.join(5)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
