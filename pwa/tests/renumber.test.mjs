// Renumbering the outbox after the server's counter: on sign-in (last_mid), on a
// `mid_reused` answer, and for a new device after a revoke; never under a push in flight.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend } from './memory-backend.mjs';
import { Store, uuid } from '../js/store.js';
import { SyncEngine } from '../js/sync.js';
import { readResult } from '../js/outbox.js';
import { FakeServer } from './fake-server.mjs';

const DEV = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const visit = (notes) => ({ method: 'interview', visited_at: '2026-03-05T10:00:00+08:00', district_code: '510104', notes });
const USER = { id: 1, username: 'demo' };

async function setup({ signIn = true } = {}) {
  const server = new FakeServer();
  const store = new Store(new MemoryBackend());
  if (signIn) {
    const r = server.login({ device_id: DEV });
    await store.signedIn(r);
  } else {
    await store.setMeta('token', 'tok');
    await store.setMeta('device_id', DEV);
  }
  const engine = new SyncEngine({ store, fetch: server.fetch, lock: (f) => f(), random: () => 0.5,
    setTimer: () => 0, clearTimer: () => {} });
  return { server, store, engine };
}

async function queue(store, n, tag = 'n') {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const id = uuid();
    ids.push(id);
    await store.save([{ entity: 'visit', id, data: visit(`${tag}${i}`) }]);
  }
  return ids;
}

/** The outbox as [mid, id] in mid order, and every record's pending list points at it. */
async function box(store) {
  const all = await store.outboxAll();
  for (const e of all) {
    const rec = await store.get(e.entity, e.id);
    assert.ok(rec.pending.includes(e.mid), `record ${e.id} lists mid ${e.mid}`);
  }
  return all.map((e) => [e.mid, e.id]);
}

/** Another install of DEV already used mids 1..n on the server for other records. */
function oldInstall(server, n) {
  const mutations = Array.from({ length: n }, (_, i) => ({ mid: i + 1, op: 'create', entity: 'visit', id: uuid(), fields: visit(`old${i}`) }));
  server.push({ device_id: DEV, mutations });
}

test('mid_reused is read as "number again", not as a rejection', () => {
  assert.equal(readResult({ mid: 3, status: 'rejected', code: 'mid_reused', message: 'x' }).outcome, 'reused');
  assert.equal(readResult({ mid: 3, status: 'rejected', code: 'invalid' }).outcome, 'rejected');
});

test('sign-in moves unsent entries after the server\'s last_mid, in order, idempotently', async () => {
  const { store } = await setup();
  const ids = await queue(store, 3);
  assert.deepEqual((await box(store)).map((x) => x[0]), [1, 2, 3]);
  const r = await store.signedIn({ token: 't2', device_id: DEV, user: USER, last_mid: 7 });
  assert.deepEqual(r, { deferred: false, renumbered: 3 });
  assert.deepEqual(await box(store), [[8, ids[0]], [9, ids[1]], [10, ids[2]]]);
  assert.equal(await store.getMeta('next_mid'), 11);
  assert.equal(await store.getMeta('token'), 't2');
  // Again with the same answer: nothing moves.
  assert.deepEqual(await store.signedIn({ token: 't3', device_id: DEV, user: USER, last_mid: 7 }), { deferred: false, renumbered: 0 });
  assert.deepEqual(await box(store), [[8, ids[0]], [9, ids[1]], [10, ids[2]]]);
  // A new save continues after them.
  const [late] = await queue(store, 1);
  assert.deepEqual((await box(store)).at(-1), [11, late]);
});

test('sign-in with an empty queue moves the counter past last_mid; a lower last_mid changes nothing', async () => {
  const { store } = await setup();
  await store.signedIn({ token: 't', device_id: DEV, user: USER, last_mid: 41 });
  assert.equal(await store.getMeta('next_mid'), 42);
  await queue(store, 2);
  await store.signedIn({ token: 't', device_id: DEV, user: USER, last_mid: 5 });
  assert.deepEqual((await box(store)).map((x) => x[0]), [42, 43]);
});

test('entries already sent keep their mids on sign-in (the server may hold them)', async () => {
  const { store } = await setup();
  const ids = await queue(store, 4);
  await store.nextBatch({ maxCount: 2 }, DEV); // 1 and 2 went out; the answer was lost
  await store.clearSending({ landed: true });
  // The server applied them: its counter is 2. Nothing of ours collides.
  await store.signedIn({ token: 't', device_id: DEV, user: USER, last_mid: 2 });
  assert.deepEqual(await box(store), ids.map((id, i) => [i + 1, id]));
  // A counter at 3 collides with the never-sent entry 3: 3 and 4 move, 1 and 2 stay.
  await store.signedIn({ token: 't', device_id: DEV, user: USER, last_mid: 3 });
  assert.deepEqual(await box(store), [[1, ids[0]], [2, ids[1]], [4, ids[2]], [5, ids[3]]]);
});

test('a reinstall that kept the device id: mid_reused answers renumber and everything is stored once', async () => {
  const { server, store, engine } = await setup({ signIn: false }); // an app that never read last_mid
  oldInstall(server, 5);
  const ids = await queue(store, 3);
  const r = await engine.sync();
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.equal(await store.outboxCount(), 0);
  assert.equal(server.count('visit'), 8);
  assert.deepEqual(server.pushes[0].mutations.map((m) => m.mid), [1, 2, 3]);
  const mine = server.applied.filter((a) => ids.includes(a.id));
  assert.deepEqual(mine.map((a) => [a.mid, a.id]), [[6, ids[0]], [7, ids[1]], [8, ids[2]]]);
  for (const id of ids) assert.equal((await store.get('visit', id)).known, true);
});

test('a reinstall that signs in first never sends a colliding mid', async () => {
  const server = new FakeServer();
  oldInstall(server, 5);
  const store = new Store(new MemoryBackend());
  const ids = await queue(store, 3); // saved before the first sign-in: mids 1..3
  await store.signedIn(server.login({ device_id: DEV }));
  const engine = new SyncEngine({ store, fetch: server.fetch, lock: (f) => f(), setTimer: () => 0, clearTimer: () => {} });
  assert.equal((await engine.sync()).ok, true);
  assert.deepEqual(server.pushes[0].mutations.map((m) => m.mid), [6, 7, 8]);
  assert.deepEqual(server.applied.filter((a) => ids.includes(a.id)).map((a) => a.id), ids);
});

test('a revoked device: the queue stays, sign-in makes a new device, all is sent from 1 once', async () => {
  const { server, store, engine } = await setup();
  const first = await queue(store, 2, 'sent');
  assert.equal((await engine.sync()).ok, true);
  const ids = await queue(store, 4, 'offline');
  server.revoked.add(DEV);
  const r = await engine.sync();
  assert.equal(r.ok, false);
  assert.equal(r.error.code, 'device_revoked');
  assert.equal(engine.status.authNeeded, true);
  assert.equal(await store.getMeta('auth_needed'), 'device_revoked');
  assert.equal(await store.getMeta('revoked_device'), DEV);
  assert.equal(await store.outboxCount(), 4);
  assert.equal(server.login({ device_id: DEV }).status, 403);
  const again = server.login({}); // without the old device id
  assert.notEqual(again.device_id, DEV);
  assert.equal((await store.signedIn(again)).renumbered, 4);
  assert.deepEqual(await box(store), ids.map((id, i) => [i + 1, id]));
  assert.equal(await store.getMeta('revoked_device'), null);
  assert.equal((await engine.sync()).ok, true);
  assert.equal(await store.outboxCount(), 0);
  const onNew = server.applied.filter((a) => a.device_id === again.device_id);
  assert.deepEqual(onNew.map((a) => [a.mid, a.id]), ids.map((id, i) => [i + 1, id]));
  // Exactly once each; the two acknowledged before the revoke were not sent again.
  const count = (id) => server.applied.filter((a) => a.id === id).length;
  for (const id of [...first, ...ids]) assert.equal(count(id), 1);
});

test('a push in flight keeps its mids; the renumbering waits until it lands', async () => {
  const { server, store, engine } = await setup();
  const ids = await queue(store, 5);
  engine.batchSize = 3;
  let release;
  server.hold = new Promise((resolve) => { release = resolve; });
  const round = engine.sync();
  while (server.pushes.length < 1) await new Promise((resolve) => setTimeout(resolve, 1));
  // The server has applied mids 1..3 of DEV; the answer is on its way. Now the device is
  // revoked and the cadre signs in again as a new device (last_mid 0).
  server.revoked.add(DEV);
  const again = server.login({});
  const r = await store.signedIn(again);
  assert.deepEqual(r, { deferred: true, renumbered: 0 });
  assert.deepEqual((await box(store)).map((x) => x[0]), [1, 2, 3, 4, 5], 'nothing renumbered under the flight');
  // An entry saved meanwhile queues after them and is renumbered with them.
  const [late] = await queue(store, 1, 'late');
  server.hold = null;
  release();
  assert.equal((await round).ok, true);
  assert.equal(await store.outboxCount(), 0);
  const seen = server.applied.map((a) => [a.device_id === DEV ? 'old' : 'new', a.mid, a.id]);
  assert.deepEqual(seen, [
    ['old', 1, ids[0]], ['old', 2, ids[1]], ['old', 3, ids[2]],
    ['new', 1, ids[3]], ['new', 2, ids[4]], ['new', 3, late]]);
});

test('a renumbering held back by a flight that never landed is done by the next round', async () => {
  const { store } = await setup();
  const ids = await queue(store, 3);
  await store.nextBatch({ maxCount: 2 }, DEV); // the page dies with this batch in flight
  const r = await store.signedIn({ token: 't', device_id: 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', user: USER, last_mid: 0 });
  assert.equal(r.deferred, true);
  await store.clearSending(); // page start-up: a service worker might still be pushing
  assert.deepEqual((await box(store)).map((x) => x[0]), [1, 2, 3]);
  await store.nextBatch({ maxCount: 1 }, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'); // under the sync lock
  assert.deepEqual(await box(store), ids.map((id, i) => [i + 1, id]));
  assert.ok((await store.outboxAll()).slice(1).every((e) => !e.sent), 'a new device has seen none of them');
});

test('renumbering many times loses nothing and keeps the order', async () => {
  const { store } = await setup();
  const ids = await queue(store, 40);
  let base = 0;
  for (const step of [12, 3, 90, 90, 0, 7]) {
    base = step;
    await store.signedIn({ token: 't', device_id: `cccccccc-cccc-4ccc-8ccc-${String(step).padStart(12, '0')}`, user: USER, last_mid: base });
    const b = await box(store);
    assert.deepEqual(b.map((x) => x[1]), ids);
    assert.deepEqual(b.map((x) => x[0]), ids.map((_, i) => base + 1 + i));
    assert.equal(await store.getMeta('next_mid'), base + 41);
  }
});
