import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { MemoryBackend } from './memory-backend.mjs';
import { Store, uuid } from '../js/store.js';
import { SyncEngine } from '../js/sync.js';
import { captureTimes, clockWatch, photoBytes, photoList, photosOf, photosWaiting, PhotoUploader, uploadAfterSync } from '../js/uploads.js';
import { FakeServer } from './fake-server.mjs';
import { FakeTus } from './fake-tus.mjs';

const DEV = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const visit = () => ({ method: 'interview', visited_at: '2026-03-05T10:00:00+08:00', district_code: '510104', notes: 'x' });

function photoRow(recordType, recordId, n = 150 * 1024) {
  const bytes = new Uint8Array(randomBytes(n));
  return { id: uuid(), record_type: recordType, record_id: recordId, kind: 'photo', mime: 'image/jpeg', bytes,
    thumb: new Uint8Array([1, 2, 3]), size: n, sha256: createHash('sha256').update(bytes).digest('hex'),
    captured_at: '2026-03-05T10:01:00+08:00', lat: 30.66, lng: 104.06, accuracy: 12, state: 'pending', offset: 0,
    upload_url: null, created_local: new Date().toISOString() };
}

async function setup() {
  const sync = new FakeServer();
  const tus = new FakeTus();
  const log = [];
  // One origin: the records API and the uploads API, in the order the phone called them.
  const fetch = async (url, init = {}) => {
    const path = new URL(url, 'http://x').pathname;
    log.push(`${init.method || 'GET'} ${path.replace(/\/\d+$/, '/:id')}`);
    return path.startsWith('/api/uploads') ? tus.fetch(url, init) : sync.fetch(url, init);
  };
  const store = new Store(new MemoryBackend());
  await store.setMeta('token', 'tok');
  await store.setMeta('device_id', DEV);
  const engine = new SyncEngine({ store, fetch, lock: (f) => f(), random: () => 0.5, setTimer: () => 0, clearTimer: () => {} });
  const timers = [];
  const uploader = new PhotoUploader({ store, fetch, base: 'http://phone.test', lock: (f) => f(), random: () => 0.5,
    setTimer: (f, ms) => { timers.push({ f, ms }); return timers.length; }, clearTimer: () => {} });
  return { sync, tus, log, store, engine, uploader, timers };
}

test('a photo is stored in the same transaction as its entry: both or neither', async () => {
  const { store } = await setup();
  const id = uuid();
  store.b.failNext = new Error('QuotaExceededError');
  await assert.rejects(store.save([{ entity: 'visit', id, data: visit() }], { photos: [photoRow('visit', id)] }));
  assert.equal(await store.get('visit', id), undefined);
  assert.deepEqual(await photoList(store), []);
  const p = photoRow('visit', id);
  await store.save([{ entity: 'visit', id, data: visit() }], { photos: [p] });
  assert.ok(await store.get('visit', id));
  const [row] = await photosOf(store, [id]);
  assert.equal(row.id, p.id);
  assert.equal(row.bytes, undefined, 'the metadata row holds no bytes');
  assert.deepEqual(new Uint8Array(await photoBytes(store, p.id)), p.bytes);
});

test('records go first; the photo follows after their sync, and only a thumbnail stays', async () => {
  const { tus, log, store, engine, uploader } = await setup();
  uploadAfterSync(uploader, engine);
  const ids = [];
  const photos = [];
  for (let i = 0; i < 5; i++) {
    const id = uuid();
    ids.push(id);
    const p = photoRow('visit', id);
    photos.push(p);
    await store.save([{ entity: 'visit', id, data: visit() }], { photos: [p] });
  }
  // Before the records are on the server, nothing is uploaded.
  assert.deepEqual(await uploader.kick(), { ok: true, done: 0, left: 0, error: null });
  assert.equal(log.length, 0);
  await engine.sync();
  await uploader.running;
  const firstUpload = log.findIndex((l) => l.includes('/api/uploads'));
  assert.ok(firstUpload > 0);
  assert.ok(log.slice(0, firstUpload).some((l) => l === 'POST /api/sync/push'), 'the push went first');
  assert.ok(!log.slice(firstUpload).includes('POST /api/sync/push'));
  for (const p of photos) {
    assert.deepEqual(new Uint8Array(tus.stored.get(`${p.record_id}:${p.sha256}`)), p.bytes);
    assert.equal(await photoBytes(store, p.id), null, 'the photo itself left the phone');
  }
  const rows = await photoList(store);
  assert.ok(rows.every((r) => r.state === 'uploaded' && r.thumb?.length === 3));
  assert.deepEqual(await photosWaiting(store), { count: 0, bytes: 0 });
  assert.equal(tus.received, photos.reduce((n, p) => n + p.size, 0));
});

test('a cut mid-photo: the next run resumes from the server offset, every byte once', async () => {
  const { tus, store, engine, uploader, timers } = await setup();
  const id = uuid();
  const p = photoRow('visit', id, 300 * 1024);
  await store.save([{ entity: 'visit', id, data: visit() }], { photos: [p] });
  await engine.sync();
  let n = 0;
  const real = tus.fetch;
  tus.fetch = async (url, init) => { if (init.method === 'PATCH' && ++n === 3) tus.cut = { after: 20000, keep: true }; return real(url, init); };
  const r1 = await uploader.kick();
  assert.equal(r1.ok, false);
  assert.equal(r1.error, 'network');
  assert.equal(timers.length, 1, 'a retry is scheduled');
  const [half] = await photoList(store);
  assert.equal(half.state, 'uploading');
  assert.equal(half.offset, 128 * 1024);
  assert.ok(half.upload_url);
  const r2 = await uploader.kick();
  assert.equal(r2.ok, true);
  assert.deepEqual(new Uint8Array(tus.stored.get(`${id}:${p.sha256}`)), p.bytes);
  assert.equal(tus.received, p.size, 'every byte once');
  assert.equal(tus.requests.filter((q) => q.method === 'POST').length, 1, 'resumed, not started again');
});

test('a photo waits while its record is unsent or refused, and goes once it is fixed', async () => {
  const { sync, tus, store, engine, uploader } = await setup();
  const id = uuid();
  const p = photoRow('visit', id);
  await store.save([{ entity: 'visit', id, data: { ...visit(), notes: 'BAD' } }], { photos: [p] });
  await engine.sync();
  assert.ok((await store.get('visit', id)).error, 'refused');
  await uploader.kick();
  assert.equal(tus.requests.length, 0);
  await store.save([{ entity: 'visit', id, data: visit() }]);
  await engine.sync();
  assert.equal(sync.count('visit'), 1);
  await uploader.kick();
  assert.equal((await photoList(store))[0].state, 'uploaded');
});

test('record_not_synced from the server: the photo waits for the next round, others go on', async () => {
  const { tus, store, engine, uploader } = await setup();
  const a = uuid();
  const b = uuid();
  await store.save([{ entity: 'visit', id: a, data: visit() }], { photos: [photoRow('visit', a)] });
  await store.save([{ entity: 'visit', id: b, data: visit() }], { photos: [photoRow('visit', b)] });
  await engine.sync();
  tus.synced = new Set([b]);
  const r = await uploader.kick();
  assert.equal(r.ok, true);
  const st = Object.fromEntries((await photoList(store)).map((x) => [x.record_id, x.state]));
  assert.deepEqual(st, { [a]: 'pending', [b]: 'uploaded' });
  tus.synced = null;
  await uploader.kick();
  assert.ok((await photoList(store)).every((x) => x.state === 'uploaded'));
});

test('refused for good (bad metadata) is shown as failed and retried only when asked', async () => {
  const { tus, store, engine, uploader } = await setup();
  const id = uuid();
  await store.save([{ entity: 'visit', id, data: visit() }], { photos: [{ ...photoRow('visit', id), sha256: 'nothex' }] });
  await engine.sync();
  await uploader.kick();
  const [row] = await photoList(store);
  assert.equal(row.state, 'failed');
  assert.equal(row.error, 'invalid');
  const before = tus.requests.length;
  await uploader.kick();
  assert.equal(tus.requests.length, before, 'not retried by itself');
  await uploader.kick({ retryFailed: true });
  assert.equal(tus.requests.length, before + 1);
});

test('photos of a deleted entry are dropped, never uploaded', async () => {
  const { tus, store, engine, uploader } = await setup();
  const id = uuid();
  await store.save([{ entity: 'visit', id, data: visit() }], { photos: [photoRow('visit', id)] });
  await store.save([{ entity: 'visit', id, del: true }]);
  await engine.sync();
  await uploader.kick();
  assert.equal(tus.requests.length, 0);
  assert.deepEqual(await photoList(store), []);
});

test('between chunks the uploader waits while the records sync', async () => {
  const { tus, store, engine, uploader } = await setup();
  const id = uuid();
  await store.save([{ entity: 'visit', id, data: visit() }], { photos: [photoRow('visit', id, 200 * 1024)] });
  await engine.sync();
  let busy = true;
  uploader.isBusy = () => busy;
  const run = uploader.kick();
  await new Promise((r) => setTimeout(r, 450));
  assert.deepEqual(tus.requests.map((q) => q.method), ['POST'], 'no chunk while busy');
  busy = false;
  await run;
  assert.equal((await photoList(store))[0].state, 'uploaded');
});

test('the clock watch learns how far the phone is off; a photo records both clocks', async () => {
  const store = new Store(new MemoryBackend());
  let phone = Date.parse('2026-03-05T02:00:00Z');
  const serverAhead = 10 * 60 * 1000; // the phone is 10 minutes behind
  const fetch = async () => { phone += 300; return new Response('{}', { headers: { Date: new Date(phone + serverAhead).toUTCString() } }); };
  const watched = clockWatch(fetch, store, { now: () => phone });
  await watched('/api/sync/pull');
  const skew = (await store.getMeta('clock_skew')).ms;
  assert.ok(Math.abs(skew - serverAhead) <= 1000, `skew ${skew}`);
  const t = await captureTimes(store, Date.parse('2026-03-05T02:30:00Z'));
  assert.equal(new Date(t.device_time).toISOString(), '2026-03-05T02:30:00.000Z');
  assert.ok(Math.abs(Date.parse(t.captured_at) - Date.parse('2026-03-05T02:40:00Z')) <= 1000, t.captured_at);
  assert.match(t.device_time, /[+-]\d\d:\d\d$/);
  // A phone within a few seconds of the server is taken as right.
  await store.setMeta('clock_skew', { ms: 1200 });
  const same = await captureTimes(store, Date.parse('2026-03-05T02:30:00Z'));
  assert.equal(same.captured_at, same.device_time);
});

test('metadata carries the capture times of the photo, not of the upload', async () => {
  const { tus, store, engine, uploader } = await setup();
  const id = uuid();
  const p = { ...photoRow('visit', id), captured_at: '2026-03-05T10:11:00+08:00', device_time: '2026-03-05T10:01:00+08:00' };
  await store.save([{ entity: 'visit', id, data: visit() }], { photos: [p] });
  await engine.sync();
  await uploader.kick();
  const [up] = tus.uploads.values();
  assert.equal(up.meta.captured_at, '2026-03-05T10:11:00+08:00');
  assert.equal(up.meta.device_time, '2026-03-05T10:01:00+08:00');
  assert.equal(up.meta.lat, '30.66');
  assert.equal(up.meta.record_type, 'visit');
});

test('a record deleted on the server (record_deleted, at creation or mid-upload): the photo is dropped', async () => {
  const { tus, store, engine, uploader } = await setup();
  const a = uuid();
  const b = uuid();
  await store.save([{ entity: 'visit', id: a, data: visit() }], { photos: [photoRow('visit', a, 40 * 1024)] });
  await store.save([{ entity: 'visit', id: b, data: visit() }], { photos: [photoRow('visit', b, 300 * 1024)] });
  await engine.sync();
  tus.deleted.add(a);
  let n = 0;
  const real = tus.fetch;
  // b is deleted by someone else after its second chunk.
  tus.fetch = async (url, init) => { if (init.method === 'PATCH' && ++n === 2) tus.deleted.add(b); return real(url, init); };
  const r = await uploader.kick();
  assert.equal(r.ok, true);
  assert.deepEqual(await photoList(store), []);
  assert.ok(tus.requests.length < 20, 'no loop on a refused chunk');
});
