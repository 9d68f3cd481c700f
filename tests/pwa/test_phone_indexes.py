"""A phone with a lot on it (issue 15, item 4): database version 3 adds indexes to the
records (docs/pwa.md, "Indexes"). A phone left at version 2 with entries queued, one of
them refused, upgrades in place: nothing is lost, 我的记录 shows the refused entry first
and the queued one next, the home screen counts the refused one, the form opens them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

CN = timezone(timedelta(hours=8))

VERSION_2 = """async ([today, old]) => {
  // What version 2 of the app left on a phone: six stores, the cadre's entries (one queued
  // today, one refused, one synced), another cadre's visit, a problem queued on the
  // synced one, the outbox and a draft.
  await new Promise((resolve, reject) => {
    const req = indexedDB.open('fieldvisit', 2);
    req.onupgradeneeded = () => {
      const db = req.result;
      const stores = [['records', 'key'], ['outbox', 'mid'], ['drafts', 'id'], ['meta', 'k'],
        ['photos', 'id'], ['photo_data', 'id']];
      for (const [s, k] of stores) db.createObjectStore(s, { keyPath: k });
    };
    req.onsuccess = () => {
      const db = req.result;
      const t = db.transaction(['records', 'outbox', 'drafts', 'meta'], 'readwrite');
      const r = t.objectStore('records');
      const v = (id, at, extra) => r.put({ key: 'visit:' + id, entity: 'visit', id,
        data: { method: 'interview', visited_at: at, notes: id, workers_met: 3 },
        pending: [], ...extra });
      v('v-queued', today,
        { mine: true, known: false, pending: [1], created_local: new Date().toISOString() });
      v('v-refused', old, { mine: true, known: false,
        error: { code: 'invalid', field: 'workers_met', message: 'x' } });
      r.put({ key: 'visit:v-synced', entity: 'visit', id: 'v-synced', known: true, version: 4,
        mine: false, pending: [],
        data: { method: 'symposium', visited_at: old, created_by: 'demo', notes: 'synced' } });
      v('v-other', today, { mine: false, known: true, version: 5,
        data: { method: 'interview', visited_at: today, created_by: 99, notes: 'v-other' } });
      r.put({ key: 'problem:p-1', entity: 'problem', id: 'p-1', known: true, version: 6,
        pending: [2], mine: false,
        data: { visit_id: 'v-synced', category: 'wages', description: 'changed here' } });
      const o = t.objectStore('outbox');
      o.put({ mid: 1, op: 'create', entity: 'visit', id: 'v-queued',
        fields: { method: 'interview' } });
      o.put({ mid: 2, op: 'update', entity: 'problem', id: 'p-1',
        fields: { description: 'changed here' }, base_version: 6 });
      t.objectStore('drafts').put({ id: 'd-old', form: { notes: 'draft' } });
      const user = { id: 1, username: 'demo', role: 'field_cadre' };
      for (const [k, val] of [['next_mid', 3], ['user', user], ['username', 'demo'],
        ['token', 'stale'], ['device_id', 'dev-old']]) t.objectStore('meta').put({ k, v: val });
      t.oncomplete = () => { db.close(); resolve(); };
      t.onerror = () => reject(t.error);
    };
    req.onerror = () => reject(req.error);
  });
}"""

STATE = """async () => {
  const { backend, store } = window.fieldvisit;
  const db = await backend.open();
  const all = await store.list();
  const names = db.transaction('records').objectStore('records').indexNames;
  return { version: db.version, indexes: [...names].sort(), records: all.length,
    outbox: await store.outboxCount(), draft: (await store.getDraft('d-old'))?.form,
    my: (await store.rows('my', { dir: 'prev' })).map((r) => r.id),
    unsynced: (await store.unsynced()).sort(), refused: await store.unsynced(0),
    notes: Object.fromEntries(all.map((r) => [r.id, r.data.notes || r.data.description])) };
}"""


def test_a_version_2_phone_upgrades_to_the_indexes_keeping_every_entry(fv_server, launch):  # noqa: ANN001
    now = datetime.now(CN).replace(microsecond=0)
    today = now.replace(hour=9, minute=0, second=0).isoformat()
    old = (now - timedelta(days=40)).isoformat()
    ctx = launch("indexes-upgrade")
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    page.goto(fv_server.url + "/offline.html")
    page.evaluate(VERSION_2, [today, old])
    # No sync reaches the server (its stale token): the phone's own data only.
    ctx.route("**/api/**", lambda route: route.abort())
    page.goto(fv_server.url + "/")
    page.wait_for_selector("body[data-ready]")
    got = page.evaluate(STATE)
    assert got == {
        "version": 3,
        "indexes": ["cl", "kid", "my", "st"],
        "records": 5,
        "outbox": 2,
        "draft": {"notes": "draft"},
        # the cadre's: made on this phone, or created_by their username; v-other is not
        "my": ["v-queued", "v-synced", "v-refused"],
        "unsynced": ["v-queued", "v-refused", "v-synced"],
        "refused": ["v-refused"],
        "notes": {
            "v-queued": "v-queued",
            "v-refused": "v-refused",
            "v-synced": "synced",
            "v-other": "v-other",
            "p-1": "changed here",
        },
    }, json.dumps(got, ensure_ascii=False)
    # 我的记录: the refused entry first, then the ones still on the phone.
    page.evaluate("location.hash = '#/entries'")
    page.wait_for_selector("#main [data-testid=entry]")
    rows = page.eval_on_selector_all(
        "#main [data-testid=entry]", "els => els.map((e) => [e.dataset.id, e.dataset.state])"
    )
    assert rows[0] == ["v-refused", "error"], rows
    assert sorted(rows[1:]) == [["v-queued", "local"], ["v-synced", "local"]], rows
    # The home screen: today's queued entry, and the count of those needing attention.
    page.evaluate("location.hash = '#/home'")
    page.wait_for_selector("[data-testid=attention]")
    assert page.inner_text("[data-testid=attention] b") == "1"
    today_rows = page.eval_on_selector_all(
        "#main [data-testid=entry]", "els => els.map((e) => e.dataset.id)"
    )
    assert today_rows == ["v-queued"], today_rows
    # The form of the synced visit finds its problem through index kid.
    page.evaluate("location.hash = '#/visit/v-synced'")
    page.wait_for_selector("#probs textarea")
    assert page.input_value("#probs textarea") == "changed here"


MANY = """async ([n]) => {
  // A phone at version 3 holding n of the cadre's synced visits, one a day, and a refused one.
  const { store } = window.fieldvisit;
  await store.setMeta('user', { id: 1, username: 'demo', role: 'field_cadre' });
  const day = (i) => new Date(Date.UTC(2026, 10, 30 - i, 2)).toISOString();
  await store.tx(['records', 'meta'], 'readwrite', (t) => {
    t.user = { id: 1, username: 'demo' };
    const put = (id, at, extra) => t.put('records', { key: 'visit:' + id, entity: 'visit', id,
      data: { method: 'interview', visited_at: at, created_by: 1 }, pending: [], known: true,
      ...extra });
    return Promise.all([...Array.from({ length: n }, (_, i) => put('v' + i, day(i), {})),
      put('v-refused', day(n + 5), { known: false, error: { code: 'invalid', message: 'x' } })]);
  });
}"""


def test_my_entries_come_a_page_at_a_time_the_refused_one_first(fv_server, launch):  # noqa: ANN001
    ctx = launch("indexes-pages")
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    ctx.route("**/api/**", lambda route: route.abort())
    page.goto(fv_server.url + "/")
    page.wait_for_selector("body[data-ready]")
    page.evaluate(MANY, [30])
    page.reload()  # the app starts signed in as that cadre
    page.wait_for_selector("body[data-ready]")
    page.evaluate("location.hash = '#/entries'")
    page.wait_for_selector("#main[data-screen=entries] [data-testid=entry]")
    ids = "els => els.map((e) => e.dataset.id)"
    rows = page.eval_on_selector_all("#main [data-testid=entry]", ids)
    # The refused entry (the oldest) first, then the newest twelve.
    assert rows == ["v-refused"] + [f"v{i}" for i in range(12)], rows
    for shown in (24, 30):
        page.click("[data-testid=more]")
        page.wait_for_function(
            f"document.querySelectorAll('#main [data-testid=entry]').length === {shown + 1}"
        )
    rows = page.eval_on_selector_all("#main [data-testid=entry]", ids)
    assert rows == ["v-refused"] + [f"v{i}" for i in range(30)], rows
    assert page.is_hidden("[data-testid=more]")
