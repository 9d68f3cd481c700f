import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend } from './memory-backend.mjs';
import { Store, recordState, uuid } from '../js/store.js';
import { SyncEngine } from '../js/sync.js';
import { FakeServer } from './fake-server.mjs';

const DEV = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';

async function setup() {
  const server = new FakeServer();
  const store = new Store(new MemoryBackend());
  await store.setMeta('token', 'tok');
  await store.setMeta('device_id', DEV);
  const timers = [];
  const engine = new SyncEngine({ store, fetch: server.fetch, lock: (f) => f(), random: () => 0.5,
    setTimer: (f, ms) => { timers.push({ f, ms }); return timers.length; }, clearTimer: () => {} });
  return { server, store, engine, timers };
}

const visit = (notes = 'ok') => ({ method: 'interview', visited_at: '2026-03-05T10:00:00+08:00', district_code: '510104', notes });

test('the outbox drains in small batches and records become synced', async () => {
  const { server, store, engine } = await setup();
  const ids = [];
  for (let i = 0; i < 120; i++) { const id = uuid(); ids.push(id); await store.save([{ entity: 'visit', id, data: visit() }]); }
  const r = await engine.sync();
  assert.equal(r.ok, true);
  assert.equal(server.count('visit'), 120);
  assert.equal(await store.outboxCount(), 0);
  assert.ok(server.pushes.length >= 2, 'more than one batch');
  assert.ok(server.pushes[0].mutations.length <= 100);
  for (const id of ids) assert.equal(recordState(await store.get('visit', id)), 'synced');
});

test('a connection cut after the server committed loses and doubles nothing', async () => {
  const { server, store, engine, timers } = await setup();
  for (let i = 0; i < 30; i++) await store.save([{ entity: 'visit', id: uuid(), data: visit() }]);
  server.failNext = 'after-commit';
  const r1 = await engine.sync();
  assert.equal(r1.ok, false);
  assert.equal(await store.outboxCount(), 30, 'nothing dropped while the answer was lost');
  assert.equal(timers.length, 1, 'a retry is scheduled');
  const r2 = await engine.sync();
  assert.equal(r2.ok, true);
  assert.equal(server.count('visit'), 30);
  assert.equal(await store.outboxCount(), 0);
  assert.ok(server.pushes[1].mutations.every((m) => m.mid <= 30));
});

test('an auth failure keeps the queue; after sign-in it goes', async () => {
  const { server, store, engine, timers } = await setup();
  await store.save([{ entity: 'visit', id: uuid(), data: visit() }]);
  server.token = 'new';
  const r = await engine.sync();
  assert.equal(r.ok, false);
  assert.equal(engine.status.authNeeded, true);
  assert.equal(timers.length, 0, 'no pointless retries while signed out');
  assert.equal(await store.outboxCount(), 1);
  await store.setMeta('token', 'new');
  assert.equal((await engine.sync()).ok, true);
  assert.equal(server.count('visit'), 1);
});

test('a rejected entry is shown, does not block the others, and can be fixed', async () => {
  const { server, store, engine } = await setup();
  const bad = uuid();
  const good = uuid();
  await store.save([{ entity: 'visit', id: bad, data: visit('BAD') }]);
  await store.save([{ entity: 'visit', id: good, data: visit() }]);
  await engine.sync();
  assert.equal(recordState(await store.get('visit', good)), 'synced');
  const rec = await store.get('visit', bad);
  assert.equal(recordState(rec), 'error');
  assert.equal(rec.error.field, 'notes');
  await store.save([{ entity: 'visit', id: bad, data: { notes: 'fixed' } }]);
  await engine.sync();
  assert.equal(recordState(await store.get('visit', bad)), 'synced');
  assert.equal(server.rows.get(`visit:${bad}`).data.notes, 'fixed');
  assert.equal(server.count('visit'), 2);
});

test('entries saved during a sync go in the next round', async () => {
  const { server, store, engine } = await setup();
  await store.save([{ entity: 'visit', id: uuid(), data: visit() }]);
  const late = uuid();
  const orig = server.fetch;
  let once = true;
  server.fetch = async (url, init) => {
    if (once && url.includes('push')) { once = false; await store.save([{ entity: 'visit', id: late, data: visit() }]); }
    return orig(url, init);
  };
  engine.fetch = server.fetch;
  await engine.sync();
  assert.equal(server.pushes.length, 2);
  assert.equal(server.pushes[0].mutations.length, 1);
  assert.equal(server.pushes[1].mutations[0].id, late);
  assert.equal(recordState(await store.get('visit', late)), 'synced');
});

test('a gap after a server restore renumbers the queue', async () => {
  const { server, store, engine } = await setup();
  await store.setMeta('next_mid', 41);
  await store.save([{ entity: 'visit', id: uuid(), data: visit() }]);
  await engine.sync();
  assert.equal(server.count('visit'), 1);
  assert.equal(await store.outboxCount(), 0);
  assert.equal(await store.getMeta('next_mid'), 2);
});

test('pull keeps pending local edits over server data', async () => {
  const { server, store, engine } = await setup();
  const id = uuid();
  await store.save([{ entity: 'visit', id, data: visit('one') }]);
  await engine.sync();
  // Someone else changes workers_met; we change notes offline.
  server.version += 1;
  const row = server.rows.get(`visit:${id}`);
  row.data.workers_met = 9; row.version = server.version;
  await store.save([{ entity: 'visit', id, data: { notes: 'two' } }]);
  await engine.pullAll();
  const rec = await store.get('visit', id);
  assert.equal(rec.data.workers_met, 9);
  assert.equal(rec.data.notes, 'two');
  assert.equal(recordState(rec), 'local');
  await engine.sync();
  assert.equal(server.rows.get(`visit:${id}`).data.notes, 'two');
});

test('a 503 keeps everything and schedules a retry with backoff', async () => {
  const { server, store, engine, timers } = await setup();
  await store.save([{ entity: 'visit', id: uuid(), data: visit() }]);
  server.failNext = 503;
  await engine.sync();
  server.failNext = 503;
  await engine.sync();
  assert.equal(timers.length, 2);
  assert.ok(timers[1].ms > timers[0].ms);
  assert.equal(await store.outboxCount(), 1);
});

test('a tombstone removes a synced record but never a queued edit', async () => {
  const { server, store, engine } = await setup();
  const a = uuid();
  const b = uuid();
  await store.save([{ entity: 'visit', id: a, data: visit('a') }, { entity: 'visit', id: b, data: visit('b') }]);
  await engine.sync();
  for (const id of [a, b]) {
    server.version += 1;
    Object.assign(server.rows.get(`visit:${id}`), { deleted: true, version: server.version });
  }
  await store.save([{ entity: 'visit', id: b, data: { notes: 'edited offline' } }]);
  await engine.pullAll();
  assert.equal(await store.get('visit', a), undefined);
  const kept = await store.get('visit', b);
  assert.equal(kept.data.notes, 'edited offline');
  assert.equal(kept.remote_deleted, true);
});

test('a reset pull drops server copies, keeps the outbox and unsent work', async () => {
  const { store } = await setup();
  const synced = uuid();
  const unsent = uuid();
  await store.applyPull({ cursor: '5', last_mid: 0, changes: [{ entity: 'enterprise', id: synced, version: 5, deleted: false, data: { name: '旧' } }] });
  await store.save([{ entity: 'visit', id: unsent, data: visit() }]);
  await store.applyPull({ reset: true, cursor: '1', last_mid: 0, changes: [] });
  assert.equal(await store.get('enterprise', synced), undefined);
  assert.ok(await store.get('visit', unsent));
  assert.equal(await store.outboxCount(), 1);
  assert.equal(await store.getMeta('cursor'), '1');
});

test('a stage change carries base_version and a conflict is kept on the record', async () => {
  const { server, store, engine } = await setup();
  const p = uuid();
  await store.applyPull({ cursor: '9', last_mid: 0, changes: [{ entity: 'problem', id: p, version: 9, deleted: false,
    data: { visit_id: uuid(), category: 'wages', description: 'x', stage: 'enterprise' } }] });
  server.rows.set(`problem:${p}`, { entity: 'problem', id: p, version: 9, data: { stage: 'enterprise' } });
  const orig = server.push.bind(server);
  server.push = (body) => {
    assert.equal(body.mutations[0].base_version, 9);
    assert.deepEqual(body.mutations[0].fields, { stage: 'government', stage_note: '报政府' });
    const out = orig(body);
    out.results[0] = { mid: out.results[0].mid, status: 'conflict', code: 'stage_conflict', field: 'stage', server_value: 'source', version: 12 };
    return out;
  };
  await store.save([{ entity: 'problem', id: p, data: { stage: 'government', stage_note: '报政府' } }]);
  await engine.pushAll();
  const rec = await store.get('problem', p);
  assert.equal(recordState(rec), 'conflict');
  assert.equal(rec.conflict.server_value, 'source');
  assert.equal(await store.outboxCount(), 0);
});

test('every push and the first pull page report the device state, never the content', async () => {
  const server = new FakeServer();
  const store = new Store(new MemoryBackend());
  await store.setMeta('token', 'tok');
  await store.setMeta('device_id', DEV);
  const pulls = [];
  const fetch = (url, init = {}) => {
    if (String(url).includes('/api/sync/pull')) pulls.push(init.headers['X-Device-State']);
    return server.fetch(url, init);
  };
  const storage = { estimate: async () => ({ usage: 1234, quota: 99999 }), persisted: async () => true };
  const engine = new SyncEngine({ store, fetch, lock: (f) => f(), random: () => 0.5, appVersion: '2026.03.15',
    storage, setTimer: () => 1, clearTimer: () => {} });
  for (let i = 0; i < 3; i++) await store.save([{ entity: 'visit', id: uuid(), data: visit('秘密内容') }]);
  // the last round failed: the next push says so, the pull after it says it is over
  await store.setMeta('last_error', { code: 'Network', message: 'x' });
  const r = await engine.sync();
  assert.equal(r.ok, true);
  const state = server.pushes[0].device_state;
  assert.equal(state.pending, 3);
  assert.match(state.oldest_pending_at, /^\d{4}-\d\d-\d\dT/);
  assert.equal(state.last_error, 'network');
  assert.deepEqual([state.app_version, state.storage_used, state.storage_quota, state.persisted],
    ['2026.03.15', 1234, 99999, true]);
  assert.ok(!JSON.stringify(state).includes('秘密'), 'no content in the report');
  assert.equal(pulls.length >= 1, true);
  const pulled = JSON.parse(pulls[0]);
  assert.equal(pulled.pending, 0);
  assert.equal(pulled.last_error, null);
  assert.equal(pulled.oldest_pending_at, null);
});
