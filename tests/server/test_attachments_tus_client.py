"""The field app's own tus client (pwa/js/tus.js, run by node) against this server over
real TCP, through a proxy that cuts the connection once in the middle of a chunk: the
phone resumes from the server's offset, the server stores every byte once, and the
stored photo has no EXIF. Under CI=true a missing node fails the test."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import Phone, create_user, service_missing
from tests.server.attachment_util import CAPTURED, DEVICE_TIME, jpeg, push_visit, sha

REPO = Path(__file__).resolve().parents[2]
TUS_JS = REPO / "pwa" / "js" / "tus.js"

SCRIPT = """
import { readFileSync } from 'node:fs';
const [, , tusPath, endpoint, token, file, metaJson] = process.argv;
const { tusUpload } = await import(tusPath);
const bytes = new Uint8Array(readFileSync(file));
const metadata = JSON.parse(metaJson);
let state = {};
const errors = [];
for (let i = 0; i < 20; i++) {
  try {
    const r = await tusUpload({ fetch, endpoint, headers: { Authorization: `Bearer ${token}` },
      bytes, metadata, chunkSize: 32 * 1024, state, timeoutMs: 15000,
      onState: async (s) => { state = s; } });
    console.log(JSON.stringify({ ok: true, url: r.url, offset: r.offset, errors }));
    process.exit(0);
  } catch (err) {
    errors.push(err.code || String(err));
  }
}
console.log(JSON.stringify({ ok: false, errors }));
process.exit(1);
"""


class CuttingProxy:
    """A TCP relay that closes both sides once, after `cut_after` bytes from the client."""

    def __init__(self, upstream: int, cut_after: int) -> None:
        self.upstream, self.cut_after = upstream, cut_after
        self.sent = 0
        self.cuts = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.open += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        try:
            while True:
                data = src.recv(8192)
                if not data:
                    break
                if upward:
                    with self.lock:
                        room = self.cut_after - self.sent if not self.cuts else len(data)
                        self.sent += len(data)
                        if not self.cuts and room < len(data):
                            # the link drops in the middle of what the phone is sending
                            dst.sendall(data[: max(room, 0)])
                            self.cuts += 1
                            for s in (src, dst):
                                s.close()
                            return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        for s in self.open:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture(autouse=True)
def _own_storage(app, tmp_path):
    app.config["FV"].values["ATTACHMENTS_DIR"] = str(tmp_path / "attachments")
    app.extensions.pop("fieldvisit.attachments", None)


def test_the_field_apps_tus_client_resumes_after_a_cut(client, app, tmp_path):
    import io

    from PIL import Image
    from werkzeug.serving import make_server

    node = shutil.which("node")
    if node is None:
        service_missing("node (apt-get install nodejs)")
    create_user("cadre", "field_cadre", "510104", "WG01")
    phone = Phone(client, "cadre")
    vid = push_visit(phone)
    data = jpeg(1000, 800, exif=True, seed=61)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(data)
    meta = {
        "sha256": sha(data),
        "record_type": "visit",
        "record_id": vid,
        "kind": "photo",
        "mime": "image/jpeg",
        "captured_at": CAPTURED,
        "device_time": DEVICE_TIME,
        "lat": "30.66",
        "lng": "104.06",
    }
    script = tmp_path / "upload.mjs"
    script.write_text(SCRIPT)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy = CuttingProxy(server.server_port, cut_after=len(data) // 2)
    try:
        run = subprocess.run(
            [
                node,
                str(script),
                TUS_JS.as_uri(),
                f"http://127.0.0.1:{proxy.port}/api/uploads",
                phone.token,
                str(photo),
                json.dumps(meta),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        proxy.close()
        server.shutdown()
        thread.join(5)
    assert run.returncode == 0, (run.stdout, run.stderr)
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["ok"] and answer["offset"] == len(data)
    assert proxy.cuts == 1 and answer["errors"], answer  # it was cut, and it went on
    from server.extensions import db
    from server.models_attachments import Attachment, Upload

    db.session.expire_all()
    (row,) = db.session.query(Upload).all()
    assert row.completed_at is not None
    assert row.bytes_received == len(data)  # the server stored every byte once
    (att,) = db.session.query(Attachment).all()
    full = phone.get(f"/attachments/{att.id}/full")
    img = Image.open(io.BytesIO(full.data))
    assert img.size == (1000, 800) and not img.getexif()
    assert b"SERIAL-123456" not in full.data
