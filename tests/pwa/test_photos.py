"""Photo evidence on the phone (issue 18), end to end in Chromium at 360x740 against the
real server: photos chosen offline survive a reload and a browser restart, go up after
their record, resume after a cut half-way with every byte sent once, carry a visible
stamp and no EXIF; the recipient signs on the screen with a finger or the mouse."""

from __future__ import annotations

import io
import json
import time
import urllib.request
from pathlib import Path

import pytest

from tests.pwa.conftest import SCREENSHOTS
from tests.pwa.photo_util import exif_of, phone_jpeg
from tests.pwa.test_field_app import open_app, sign_in

pytestmark = pytest.mark.browser

PLACE = {"latitude": 30.6598, "longitude": 104.0633, "accuracy": 15}

PHOTOS = """() => window.fieldvisit.backend.tx(['photos', 'photo_data'], 'readonly', async (t) => {
  const data = new Set((await t.all('photo_data')).map((d) => d.id));
  return (await t.all('photos')).map((p) => ({
    id: p.id, state: p.state, size: p.size, offset: p.offset,
    record_type: p.record_type, record_id: p.record_id, kind: p.kind, mime: p.mime,
    thumb: p.thumb?.byteLength || 0,
    sha256: p.sha256, lat: p.lat, lng: p.lng, accuracy: p.accuracy, captured_at: p.captured_at,
    width: p.width, height: p.height, has_bytes: data.has(p.id) }));
})"""


@pytest.fixture(scope="module")
def camera_photo(tmp_path_factory) -> Path:  # noqa: ANN001
    return phone_jpeg(tmp_path_factory.mktemp("camera") / "IMG_20260305_102000.jpg")


def photos(page) -> list[dict]:  # noqa: ANN001
    return page.evaluate(PHOTOS)


def wait_photos(page, pred, timeout: float = 60, what: str = "photos") -> list[dict]:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        rows = photos(page)
        if pred(rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {rows}")
        page.wait_for_timeout(250)


def get_bytes(fv_server, path: str, token: str) -> bytes:  # noqa: ANN001
    req = urllib.request.Request(fv_server.url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as res:  # noqa: S310 - the local test server
        return res.read()


def server_attachments(fv_server, record_type: str, record_id: str) -> list[dict]:  # noqa: ANN001
    token = fv_server.login()
    q = f"/api/attachments?record_type={record_type}&record_id={record_id}"
    return fv_server.call("GET", q, token=token)["attachments"]


def new_visit(page, method: str, note: str) -> str:  # noqa: ANN001
    page.click("[data-testid=new-visit]")
    page.click(f"[data-m={method}]")
    page.wait_for_selector("#vf")
    page.fill("[data-f=notes]", note)
    return page.evaluate("location.hash.split('/')[2]")


def add_photo(page, path: Path, slot: str = "visit") -> None:  # noqa: ANN001
    before = page.locator(f"[data-photos={slot}] [data-testid=photo]").count()
    page.locator(f"[data-photos={slot}] [data-testid=photo-gallery]").set_input_files(str(path))
    page.wait_for_function(
        f"document.querySelectorAll('[data-photos={slot}] [data-testid=photo]').length > {before}",
        timeout=60000,
    )


def test_photos_taken_offline_survive_restart_follow_their_record_stamped_without_exif(
    fv_server, launch, shot, marker, camera_photo
):  # noqa: ANN001
    ctx = launch("photos", geolocation=PLACE, permissions=["geolocation"])
    page = open_app(ctx, fv_server.url)
    sign_in(page)
    ctx.set_offline(True)
    page.wait_for_selector(".syncbar.off")
    vid = new_visit(page, "symposium", f"{marker} 现场照片")
    page.fill("[data-testid=ent-search]", "cdtf")
    page.click("#entres button >> nth=0")
    ent_name = page.inner_text("[data-testid=chosen-ent]")
    add_photo(page, camera_photo)
    # The unsaved form keeps its photo in the draft: a reload does not lose it.
    page.wait_for_timeout(800)
    page.reload()
    page.wait_for_selector("body[data-ready]")
    page.goto(f"{fv_server.url}/#/visit/{vid}")
    page.wait_for_selector("[data-photos=visit] [data-testid=photo][data-state=unsaved]")
    page.click("#addprob")
    page.fill(".prob textarea", "车间通风差")
    add_photo(page, camera_photo, slot="problem")
    fig = page.locator("[data-photos=visit] [data-testid=photo]").first
    assert fig.get_attribute("data-state") == "unsaved"
    assert "保存后上传" in fig.inner_text()
    fig.scroll_into_view_if_needed()
    shot(page, "photos-01-form-offline")
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=new-visit]")

    rows = photos(page)
    assert len(rows) == 2 and all(r["state"] == "pending" and r["has_bytes"] for r in rows)
    visit_photo = next(r for r in rows if r["record_type"] == "visit")
    assert visit_photo["record_id"] == vid
    assert max(visit_photo["width"], visit_photo["height"]) == 1600
    assert visit_photo["size"] <= 250 * 1024 and visit_photo["thumb"] > 0
    assert abs(visit_photo["lat"] - PLACE["latitude"]) < 1e-6 and visit_photo["accuracy"] == 15
    assert visit_photo["captured_at"][-6:] == "+08:00"  # the phone's clock, with its offset
    # The bytes the phone keeps and sends: re-encoded, no EXIF of the camera at all.
    sent = bytes(
        page.evaluate(
            "async (id) => Array.from(new Uint8Array(await window.fieldvisit.backend.tx("
            "['photo_data'], 'readonly', async (t) => (await t.get('photo_data', id)).bytes)))",
            visit_photo["id"],
        )
    )
    assert len(sent) == visit_photo["size"] and sent[:2] == b"\xff\xd8"
    assert exif_of(sent) == {} and b"Exif" not in sent[:4096] and b"SERIAL-0042" not in sent

    # Reload offline, then the phone kills the browser and it comes back, still offline.
    page.reload()
    page.wait_for_selector("body[data-ready]")
    assert len(photos(page)) == 2
    ctx.close()
    ctx = launch("photos", offline=True, geolocation=PLACE, permissions=["geolocation"])
    page = open_app(ctx, fv_server.url)
    page.goto(f"{fv_server.url}/#/visit/{vid}")
    page.wait_for_selector("[data-photos=visit] [data-testid=photo][data-state=pending]")
    assert "待上传" in page.inner_text("[data-photos=visit] [data-testid=photo]")
    assert "2 张照片待上传" in page.inner_text("[data-testid=syncbar]")
    page.locator("[data-photos=visit]").scroll_into_view_if_needed()
    shot(page, "photos-02-entry-waiting")

    calls: list[str] = []
    page.on(
        "request",
        lambda r: (
            "/api/" in r.url and calls.append(f"{r.method} {r.url.split('/api/')[1].split('?')[0]}")
        ),
    )
    ctx.set_offline(False)
    rows = wait_photos(page, lambda rs: all(r["state"] == "uploaded" for r in rs), what="uploaded")
    # The record first, then its photos; once uploaded only the thumbnail stays.
    push = calls.index("POST sync/push")
    first_upload = calls.index("POST uploads")
    assert push < first_upload, calls
    assert all(not r["has_bytes"] and r["thumb"] > 0 for r in rows)
    page.wait_for_selector("[data-photos=visit] [data-testid=photo][data-state=uploaded]")
    assert "已上传" in page.inner_text("[data-photos=visit] [data-testid=photo]")
    page.locator("[data-photos=visit]").scroll_into_view_if_needed()
    shot(page, "photos-03-entry-uploaded")

    atts = server_attachments(fv_server, "visit", vid)
    assert len(atts) == 1, atts
    full = get_bytes(fv_server, f"/attachments/{atts[0]['id']}/full", fv_server.login())
    from PIL import Image

    img = Image.open(io.BytesIO(full))
    assert max(img.size) == 1600
    # Nothing of the camera's EXIF (serial, GPS, time) is left, on the phone nor the server.
    assert exif_of(full) == {}, exif_of(full)
    assert b"SERIAL-0042" not in full and b"ACME" not in full
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    img.save(SCREENSHOTS / "photos-04-stored-on-server.png")
    # The stamp is in the bottom-left corner: look at it up close.
    w, h = img.size
    img.crop((0, int(h * 0.72), int(w * 0.6), h)).save(SCREENSHOTS / "photos-05-stamp-crop.png")
    # A dark band behind light text where the stamp is, in a scene that is light there.
    band = img.convert("L").crop((int(w * 0.02), int(h * 0.85), int(w * 0.2), int(h * 0.97)))
    hist = band.histogram()
    dark = sum(hist[:80]) / sum(hist)
    light = sum(hist[200:]) / sum(hist)
    assert dark > 0.3 and light > 0.02, (dark, light)
    assert ent_name  # named in the stamp; what it says is checked by eye (docs/pwa.md)

    # The full view on the phone: the thumbnail is all that is left, shown on a tap.
    page.click("[data-photos=visit] [data-testid=photo] img")
    page.wait_for_selector("[data-testid=photo-full]")
    shot(page, "photos-06-full-view-after-upload")


def test_upload_cut_half_way_resumes_and_the_server_gets_every_byte_once(
    fv_server, launch, marker, camera_photo
):  # noqa: ANN001
    # Playwright's routing sees a page's requests only without a service worker.
    ctx = launch("photos-cut", service_workers="block")
    page = open_app(ctx, fv_server.url)
    sign_in_no_sw(page)
    page.evaluate("window.fieldvisit.store.setMeta('photo_settings', { chunk_kb: 32 })")
    patches: list[dict] = []
    state = {"cut": False, "chunks": None}

    def handle(route, request) -> None:  # noqa: ANN001
        if request.method == "PATCH":
            body = request.post_data_buffer or b""
            ok = [p for p in patches if p["ok"]]
            if not state["cut"] and state["chunks"] and len(ok) == state["chunks"] // 2:
                state["cut"] = True
                patches.append(
                    {
                        "offset": int(request.headers["upload-offset"]),
                        "size": len(body),
                        "ok": False,
                    }
                )
                route.abort("connectionreset")
                return
            patches.append(
                {"offset": int(request.headers["upload-offset"]), "size": len(body), "ok": True}
            )
        route.continue_()

    methods: list[str] = []
    page.on("request", lambda r: "/api/uploads" in r.url and methods.append(r.method))
    page.route("**/api/uploads**", handle)
    vid = new_visit(page, "interview", f"{marker} 断点续传")
    add_photo(page, camera_photo)
    size = page.evaluate("window.fieldvisit.S.form.photos[0].size")
    state["chunks"] = -(-size // (32 * 1024))
    assert state["chunks"] >= 4
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=new-visit]")
    (row,) = wait_photos(page, lambda rs: rs[0]["state"] == "uploaded", what="resumed upload")
    assert state["cut"], patches
    sent_ok = [p for p in patches if p["ok"]]
    # Cut at half the photo; afterwards the phone asked the server and went on from there.
    half = (state["chunks"] // 2) * 32 * 1024
    cut_at = next(i for i, p in enumerate(patches) if not p["ok"])
    assert patches[cut_at]["offset"] == half
    assert "HEAD" in methods[methods.index("PATCH") :]
    assert patches[cut_at + 1]["offset"] == half
    # The server received each byte once, in order, and holds the photo whole (its
    # SHA-256 is checked against the phone's when the last byte arrives).
    assert sum(p["size"] for p in sent_ok) == row["size"]
    assert [p["offset"] for p in sent_ok] == list(range(0, row["size"], 32 * 1024))
    atts = server_attachments(fv_server, "visit", vid)
    assert len(atts) == 1 and atts[0]["original_size"] == row["size"], atts


def sign_in_no_sw(page) -> None:  # noqa: ANN001
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "demo-2012")
    page.click("#loginf button[type=submit]")
    page.wait_for_selector("[data-testid=new-visit]")
    page.wait_for_function(
        "document.querySelector('[data-testid=lastsync]')?.textContent.match(/\\d\\d:\\d\\d/)"
    )


def draw(page, box: dict, touch: bool) -> None:  # noqa: ANN001
    """A signature-like stroke across the pad: by touch (CDP touch events) or the mouse."""
    pts = [
        (
            box["x"] + box["width"] * (0.1 + 0.8 * i / 20),
            box["y"] + box["height"] * (0.5 + 0.3 * ((-1) ** i) * (i % 3) / 2),
        )
        for i in range(21)
    ]
    if touch:
        cdp = page.context.new_cdp_session(page)
        for i, (x, y) in enumerate(pts):
            kind = "touchStart" if i == 0 else "touchMove"
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    else:
        page.mouse.move(*pts[0])
        page.mouse.down()
        for x, y in pts[1:]:
            page.mouse.move(x, y, steps=2)
        page.mouse.up()


def test_recipient_signs_with_finger_or_mouse_and_the_signature_goes_with_the_home_visit(
    fv_server, launch, shot, marker
):  # noqa: ANN001
    ctx = launch("photos-sign", has_touch=True)
    page = open_app(ctx, fv_server.url)
    sign_in(page)
    ctx.set_offline(True)
    new_visit(page, "home_visit", f"{marker} 签收")
    page.fill("[data-f='home.worker_name']", "李某")
    page.fill("[data-f='home.amount']", "800")
    hid = page.evaluate("window.fieldvisit.S.form.home.id")
    for i, touch in enumerate((True, False)):
        page.click("[data-testid=photo-sign]")
        pad = page.wait_for_selector("[data-testid=sig-canvas]")
        if i == 0:
            page.click("[data-testid=sig-ok]")  # nothing drawn yet: not a signature
            assert "请先签名" in page.inner_text(".sigbox")
        draw(page, pad.bounding_box(), touch)
        if i == 0:
            shot(page, "photos-07-signature-pad-touch")
        page.click("[data-testid=sig-ok]")
        page.wait_for_function(
            "document.querySelectorAll('[data-photos=home_visit] [data-testid=photo]').length"
            f" === {i + 1}"
        )
    page.locator("[data-photos=home_visit]").scroll_into_view_if_needed()
    shot(page, "photos-08-signatures-in-form")
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=new-visit]")
    rows = photos(page)
    assert [r["kind"] for r in rows] == ["signature", "signature"]
    assert all(
        r["record_type"] == "home_visit" and r["record_id"] == hid and r["mime"] == "image/png"
        for r in rows
    )
    ctx.set_offline(False)
    wait_photos(page, lambda rs: all(r["state"] == "uploaded" for r in rs), what="signatures")
    atts = server_attachments(fv_server, "home_visit", hid)
    assert sorted(a["kind"] for a in atts) == ["signature", "signature"], atts
    png = get_bytes(fv_server, f"/attachments/{atts[0]['id']}/full", fv_server.login())
    from PIL import Image

    sig = Image.open(io.BytesIO(png)).convert("L")
    sig.save(SCREENSHOTS / "photos-09-signature-on-server.png")
    # Ink on white: the stroke was drawn into the saved image.
    hist = sig.histogram()
    assert sum(hist[:100]) > 200 and sum(hist[240:]) > 0.8 * sum(hist)


UPGRADE = """async () => {
  // What version 1 of the app left on a phone: its four stores, an entry queued, a draft.
  await new Promise((resolve, reject) => {
    const req = indexedDB.open('fieldvisit', 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      const stores = [['records', 'key'], ['outbox', 'mid'], ['drafts', 'id'], ['meta', 'k']];
      for (const [s, k] of stores) db.createObjectStore(s, { keyPath: k });
    };
    req.onsuccess = () => {
      const db = req.result;
      const t = db.transaction(['records', 'outbox', 'drafts', 'meta'], 'readwrite');
      t.objectStore('records').put({ key: 'visit:v-old', entity: 'visit', id: 'v-old',
        data: { method: 'interview', notes: 'old' }, pending: [1], mine: true });
      t.objectStore('outbox').put({ mid: 1, op: 'create', entity: 'visit', id: 'v-old',
        fields: { method: 'interview' } });
      t.objectStore('drafts').put({ id: 'd-old', form: { notes: 'draft' } });
      t.objectStore('meta').put({ k: 'next_mid', v: 2 });
      t.oncomplete = () => { db.close(); resolve(); };
      t.onerror = () => reject(t.error);
    };
    req.onerror = () => reject(req.error);
  });
}"""


def test_an_existing_install_upgrades_to_the_photo_stores_keeping_its_data(fv_server, launch):  # noqa: ANN001
    ctx = launch("photos-upgrade")
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    page.goto(fv_server.url + "/offline.html")
    page.evaluate(UPGRADE)
    page.goto(fv_server.url + "/")
    page.wait_for_selector("body[data-ready]")
    got = page.evaluate(
        """async () => {
      const b = window.fieldvisit.backend;
      const db = await b.open();
      return { version: db.version, stores: [...db.objectStoreNames].sort(),
        outbox: await window.fieldvisit.store.outboxCount(),
        rec: (await window.fieldvisit.store.get('visit', 'v-old'))?.data,
        draft: (await window.fieldvisit.store.getDraft('d-old'))?.form,
        photos: await b.tx(['photos'], 'readonly', (t) => t.count('photos')) };
    }"""
    )
    assert got == {
        "version": 3,  # 3: the records' indexes (tests/pwa/test_phone_indexes.py)
        "stores": ["drafts", "meta", "outbox", "photo_data", "photos", "records"],
        "outbox": 1,
        "rec": {"method": "interview", "notes": "old"},
        "draft": {"notes": "draft"},
        "photos": 0,
    }, json.dumps(got)
