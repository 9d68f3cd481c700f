import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { encodeMetadata, tusUpload, UploadError } from '../js/tus.js';
import { FakeTus } from './fake-tus.mjs';

const ENDPOINT = 'http://phone.test/api/uploads';
const H = { Authorization: 'Bearer tok' };
const sha = (b) => createHash('sha256').update(b).digest('hex');

function photo(n = 300 * 1024) {
  const bytes = new Uint8Array(randomBytes(n));
  return { bytes, meta: { sha256: sha(bytes), record_type: 'visit', record_id: 'v-1', kind: 'photo', mime: 'image/jpeg' } };
}

/** Upload like the app does: resume from what was reported through onState until done. */
async function untilDone(server, p, { chunkSize = 64 * 1024, tries = 50 } = {}) {
  let state = {};
  const errors = [];
  for (let i = 0; i < tries; i++) {
    try {
      const r = await tusUpload({ fetch: server.fetch, endpoint: ENDPOINT, headers: H, bytes: p.bytes, metadata: p.meta,
        chunkSize, state, onState: async (s) => { state = s; } });
      return { ...r, errors };
    } catch (err) {
      assert.ok(err instanceof UploadError, String(err));
      errors.push(err.code);
    }
  }
  throw new Error('never finished');
}

const stored = (server, p) => server.stored.get(`${p.meta.record_id}:${p.meta.sha256}`);

test('metadata is tus base64 pairs, UTF-8, empty values left out', () => {
  const h = encodeMetadata({ sha256: 'ab', record_id: '企业', lat: null, kind: 'photo', note: '' });
  assert.equal(h, `sha256 ${Buffer.from('ab').toString('base64')},record_id ${Buffer.from('企业').toString('base64')},kind cGhvdG8=`);
});

test('an upload goes in chunks the server confirms, every byte once', async () => {
  const server = new FakeTus();
  const p = photo(300 * 1024 + 5);
  const reported = [];
  const r = await tusUpload({ fetch: server.fetch, endpoint: ENDPOINT, headers: H, bytes: p.bytes, metadata: p.meta,
    chunkSize: 64 * 1024, onState: async (s) => { reported.push(s.offset); } });
  assert.deepEqual(Buffer.from(stored(server, p)), Buffer.from(p.bytes));
  assert.equal(server.received, p.bytes.length);
  assert.deepEqual(server.requests.map((q) => q.method), ['POST', 'PATCH', 'PATCH', 'PATCH', 'PATCH', 'PATCH']);
  assert.ok(server.requests.slice(1).every((q) => q.size <= 64 * 1024));
  assert.deepEqual(reported, [0, 65536, 131072, 196608, 262144, 307205]);
  assert.equal(r.offset, p.bytes.length);
  assert.equal(r.sent, p.bytes.length);
});

test('a cut in the middle of a chunk resumes from the offset the server kept', async () => {
  for (const keep of [true, false]) {
    const server = new FakeTus();
    const p = photo(256 * 1024);
    // Cut half-way through the photo: the third chunk, 10 000 bytes into it.
    let n = 0;
    const cutting = async (url, init) => {
      if (init.method === 'PATCH' && ++n === 3) server.cut = { after: 10000, keep };
      return server.fetch(url, init);
    };
    let state = {};
    await assert.rejects(tusUpload({ fetch: cutting, endpoint: ENDPOINT, headers: H, bytes: p.bytes, metadata: p.meta,
      chunkSize: 64 * 1024, onState: async (s) => { state = s; } }), (e) => e.code === 'network');
    assert.equal(state.offset, 128 * 1024, 'two chunks confirmed');
    const before = server.requests.length;
    await tusUpload({ fetch: server.fetch, endpoint: ENDPOINT, headers: H, bytes: p.bytes, metadata: p.meta, chunkSize: 64 * 1024, state });
    const resumed = server.requests.slice(before);
    assert.equal(resumed[0].method, 'HEAD', 'asks the server first');
    assert.equal(Number(resumed[1].offset), 128 * 1024 + (keep ? 10000 : 0), 'continues where the server is');
    assert.deepEqual(Buffer.from(stored(server, p)), Buffer.from(p.bytes));
    assert.equal(server.received, p.bytes.length, `every byte arrived once (keep=${keep})`);
  }
});

test('cuts again and again: the photo still arrives whole, nothing appended twice', async () => {
  const server = new FakeTus();
  server.cutEvery = 2;
  const p = photo(700 * 1024);
  const r = await untilDone(server, p, { chunkSize: 64 * 1024 });
  assert.ok(r.errors.length >= 5, `cut ${r.errors.length} times`);
  assert.deepEqual(Buffer.from(stored(server, p)), Buffer.from(p.bytes));
  assert.equal(server.received, p.bytes.length);
  // Sent again: only the unconfirmed rest of each cut chunk (the server kept its first half).
  const sent = server.requests.filter((q) => q.method === 'PATCH').reduce((n, q) => n + q.size, 0);
  assert.equal(sent - p.bytes.length, server.dropped);
  assert.ok(server.dropped <= r.errors.length * 32 * 1024);
});

test('offset_mismatch (another sender moved the upload on): HEAD and continue', async () => {
  const server = new FakeTus();
  const p = photo(200 * 1024);
  let patches = 0;
  const meddling = async (url, init) => {
    if (init.method === 'PATCH' && ++patches === 2) {
      // Another tab sends the same next chunk first.
      const off = Number(new Headers(init.headers).get('Upload-Offset'));
      await server.fetch(url, { ...init, body: p.bytes.slice(off, off + 64 * 1024) });
    }
    return server.fetch(url, init);
  };
  await tusUpload({ fetch: meddling, endpoint: ENDPOINT, headers: H, bytes: p.bytes, metadata: p.meta, chunkSize: 64 * 1024 });
  const seq = server.requests.map((q) => `${q.method}:${q.offset ?? ''}`);
  assert.deepEqual(seq.slice(0, 6), ['POST:', 'PATCH:0', 'PATCH:65536', 'PATCH:65536', 'HEAD:', 'PATCH:131072']);
  assert.deepEqual(Buffer.from(stored(server, p)), Buffer.from(p.bytes));
  assert.equal(server.received, p.bytes.length);
});

test('checksum_mismatch restarts the upload; a second copy of stored content sends nothing', async () => {
  const server = new FakeTus();
  const p = photo(100 * 1024);
  server.corruptNext = true;
  const r = await tusUpload({ fetch: server.fetch, endpoint: ENDPOINT, headers: H, bytes: p.bytes, metadata: p.meta, chunkSize: 64 * 1024 });
  assert.equal(r.restarts, 1);
  assert.deepEqual(Buffer.from(stored(server, p)), Buffer.from(p.bytes));
  const before = server.requests.length;
  const again = await tusUpload({ fetch: server.fetch, endpoint: ENDPOINT, headers: H, bytes: p.bytes, metadata: p.meta });
  assert.deepEqual(server.requests.slice(before).map((q) => q.method), ['POST'], 'the server had it: skip sending');
  assert.equal(again.sent, 0);
});

test('a checksum that never matches gives up; record_not_synced and refusals are errors with their code', async () => {
  const server = new FakeTus();
  const p = photo(10 * 1024);
  const wrong = { ...p.meta, sha256: '0'.repeat(64) };
  await assert.rejects(tusUpload({ fetch: server.fetch, endpoint: ENDPOINT, headers: H, bytes: p.bytes, metadata: wrong, maxRestarts: 2 }),
    (e) => e.code === 'checksum_mismatch');
  assert.equal(server.requests.filter((q) => q.method === 'POST').length, 3);
  server.synced = new Set();
  await assert.rejects(tusUpload({ fetch: server.fetch, endpoint: ENDPOINT, headers: H, bytes: p.bytes, metadata: p.meta }),
    (e) => e.code === 'record_not_synced' && e.status === 409);
  await assert.rejects(tusUpload({ fetch: server.fetch, endpoint: ENDPOINT, headers: { Authorization: 'Bearer nope' }, bytes: p.bytes, metadata: p.meta }),
    (e) => e.code === 'auth_required' && e.status === 401);
});

test('an upload the server forgot (404 on HEAD) starts again', async () => {
  const server = new FakeTus();
  const p = photo(90 * 1024);
  let state = {};
  let n = 0;
  const cutting = async (url, init) => {
    if (init.method === 'PATCH' && ++n === 2) server.cut = { after: 0, keep: false };
    return server.fetch(url, init);
  };
  await assert.rejects(tusUpload({ fetch: cutting, endpoint: ENDPOINT, headers: H, bytes: p.bytes, metadata: p.meta,
    chunkSize: 64 * 1024, onState: async (s) => { state = s; } }));
  server.uploads.clear(); // expired on the server
  const r = await tusUpload({ fetch: server.fetch, endpoint: ENDPOINT, headers: H, bytes: p.bytes, metadata: p.meta, state });
  assert.equal(r.restarts, 1);
  assert.deepEqual(Buffer.from(stored(server, p)), Buffer.from(p.bytes));
});

test('a stalled request times out instead of hanging', async () => {
  const server = new FakeTus();
  const p = photo(20 * 1024);
  const stalling = (url, init) => (init.method === 'PATCH'
    ? new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))))
    : server.fetch(url, init));
  await assert.rejects(tusUpload({ fetch: stalling, endpoint: ENDPOINT, headers: H, bytes: p.bytes, metadata: p.meta, timeoutMs: 50 }),
    (e) => e.code === 'timeout');
});
