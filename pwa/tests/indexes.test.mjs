// The records' indexes (js/db.js INDEXES) and the store's queries on them, which the home
// screen and 我的记录 read instead of every record (docs/pwa.md, "Indexes").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend } from './memory-backend.mjs';
import { Store, indexed } from '../js/store.js';

const ME = { id: 7, username: 'demo' };
const id = (n) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
let version = 0;
const change = (entity, n, data) => ({ entity, id: id(n), version: ++version, deleted: false, data: { id: id(n), ...data } });
const visit = (n, day, by = ME.id, extra = {}) =>
  change('visit', n, { method: 'interview', visited_at: `2026-11-${String(day).padStart(2, '0')}T10:00:00+08:00`, created_by: by, participants: [], ...extra });
const pull = (store, changes) => store.applyPull({ changes, cursor: `c${version}`, last_mid: 0, has_more: true });

async function phone() {
  const store = new Store(new MemoryBackend(), { now: () => '2026-12-03T02:00:00.000Z' });
  await store.setMeta('user', ME);
  return store;
}

test('index my holds the cadre\'s own visits, newest first, a page at a time', async () => {
  const store = await phone();
  await pull(store, [
    visit(1, 1), visit(2, 5), visit(3, 3, 99), visit(4, 9, 99, { participants: ['demo'] }), visit(5, 7, 'demo'),
    change('enterprise', 6, { name: '华兴电子' }), change('problem', 7, { visit_id: id(2), stage: 'enterprise' }),
  ]);
  const rows = await store.rows('my', { dir: 'prev' });
  assert.deepEqual(rows.map((r) => r.id), [id(4), id(5), id(2), id(1)]); // 3 is another cadre's
  const first = await store.rows('my', { dir: 'prev', limit: 2 });
  assert.deepEqual(first.map((r) => r.id), [id(4), id(5)]);
  const next = await store.rows('my', { dir: 'prev', hi: first.at(-1).my, limit: 3 });
  assert.deepEqual(next.map((r) => r.id), [id(5), id(2), id(1)]); // from the last date on, inclusive
  assert.equal(await store.b.tx(['records'], 'readonly', (t) => t.count('records', { index: 'my' })), 4);
  // A day's range, as the home screen asks it.
  assert.deepEqual((await store.rows('my', { lo: '2026-11-05', hi: '2026-11-06' })).map((r) => r.id), [id(2)]);
  // list(entity) reads only that entity's keys.
  assert.deepEqual((await store.list('enterprise')).map((r) => r.id), [id(6)]);
  assert.equal((await store.list()).length, 7);
  assert.deepEqual((await store.kids(id(2))).map((r) => r.id), [id(7)]);
  // A tombstone takes the visit out of the index.
  await pull(store, [{ entity: 'visit', id: id(1), version: ++version, deleted: true }]);
  assert.deepEqual((await store.rows('my', { dir: 'prev' })).map((r) => r.id), [id(4), id(5), id(2)]);
});

test('index st holds what is not synced: entries saved on the phone, then the refused ones first', async () => {
  const store = await phone();
  await pull(store, [visit(1, 1), change('problem', 2, { visit_id: id(1), stage: 'enterprise' })]);
  assert.deepEqual(await store.unsynced(), []);
  // A new entry, and a change to a pulled visit's problem: both visits have something unsynced.
  await store.save([{ entity: 'visit', id: id(10), data: { method: 'interview', visited_at: '2026-12-03T09:00:00+08:00' } },
    { entity: 'problem', id: id(11), data: { visit_id: id(10), category: 'wages', description: 'x' } }]);
  await store.save([{ entity: 'problem', id: id(2), data: { description: 'changed' } }]);
  assert.deepEqual((await store.unsynced()).sort(), [id(1), id(10)]);
  assert.deepEqual(await store.unsynced(0), []);
  assert.deepEqual((await store.rows('cl', { lo: '2026-12-03' })).map((r) => r.id).sort(), [id(10), id(11)]);
  assert.equal((await store.rows('my', { dir: 'prev' }))[0].id, id(10)); // made here: mine
  const batch = await store.nextBatch({ maxCount: 10 });
  const [mNew, mProb, mOld] = batch;
  await store.applyPush(batch, { results: [
    { mid: mNew.mid, status: 'applied', version: 50 },
    { mid: mProb.mid, status: 'rejected', code: 'invalid', field: 'description', message: 'bad' },
    { mid: mOld.mid, status: 'applied', version: 51 },
  ], last_mid: mOld.mid });
  assert.deepEqual(await store.unsynced(), [id(10)]);
  assert.deepEqual(await store.unsynced(0), [id(10)]);
  const [entry] = await store.entries(await store.unsynced(0));
  assert.equal(entry.v.id, id(10));
  assert.ok(entry.kids.find((k) => k.id === id(11)).error);
});

test('entries: a merged visit shows as its canonical one, its enterprise followed too, children only where they show', async () => {
  const store = await phone();
  await pull(store, [
    change('enterprise', 1, { name: '旧名', canonical_id: id(2) }), change('enterprise', 2, { name: '华兴电子' }),
    visit(3, 2, ME.id, { enterprise_id: id(1), canonical_id: id(4) }), visit(4, 2, 99, { enterprise_id: id(1) }),
    visit(5, 1, ME.id, { enterprise_id: id(9) }), visit(6, 1, ME.id, { canonical_id: id(77) }),
    change('problem', 7, { visit_id: id(4), stage: 'closed' }),
  ]);
  const ref = (x) => (x === id(9) ? { id: x, name: '参考企业' } : null);
  const got = await store.entries([id(3), id(4), id(5), id(6)], { ref });
  assert.deepEqual(got.map((x) => x.v.id), [id(4), id(5)]); // 3 shows as 4, once; 6's canonical is not held
  assert.equal(got[0].ent.name, '华兴电子');
  assert.equal(got[1].ent.name, '参考企业');
  assert.deepEqual(got[0].kids.map((k) => k.id), [id(7)]);
  const mine = await store.entries([id(4), id(3)], { user: ME });
  assert.deepEqual(mine.map((x) => x.v.id), [id(4)]); // 4 is another cadre's, but 3 (mine) shows as it
  const lean = await store.entries([id(4)], { lean: (v, e) => !!e?.name });
  assert.deepEqual(lean[0].kids, []);
});

test('another cadre signing in on the phone changes whose visits are "mine"', async () => {
  const store = await phone();
  await store.signedIn({ token: 't', device_id: 'd1', user: ME, last_mid: 0 });
  await pull(store, [visit(1, 1), visit(2, 2, 8)]);
  assert.deepEqual((await store.rows('my')).map((r) => r.id), [id(1)]);
  await store.signedIn({ token: 't2', device_id: 'd2', user: { id: 8, username: 'li' }, last_mid: 0 });
  assert.deepEqual((await store.rows('my')).map((r) => r.id), [id(2)]);
});

test('an upgraded phone\'s stored records get their indexed fields, nothing else changes', () => {
  const rec = { key: `visit:${id(1)}`, entity: 'visit', id: id(1), known: false, mine: true, pending: [3], data: { visited_at: '2026-11-02T10:00:00+08:00', notes: 'keep' } };
  const out = indexed(structuredClone(rec), null);
  assert.deepEqual(out, { ...rec, st: 1, my: rec.data.visited_at });
  const synced = indexed({ ...rec, known: true, pending: [], mine: false, data: { ...rec.data, created_by: 8 } }, ME);
  assert.equal(synced.st, undefined);
  assert.equal(synced.my, undefined);
});
