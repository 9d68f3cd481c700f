// What a phone holds: records that left the pull window are dropped, nothing pending is;
// a first sync cut mid-way resumes from the last page it stored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend } from './memory-backend.mjs';
import { Store, uuid } from '../js/store.js';
import { SyncEngine } from '../js/sync.js';
import { FakeServer } from './fake-server.mjs';

const DEV = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const change = (entity, id, version, data) => ({ entity, id, version, deleted: false, data });

test('records dated before the window start leave the phone; open problems, their visits and pending work stay', async () => {
  const store = new Store(new MemoryBackend());
  const [oldV, oldOpenV, newV, oldHv, newHv, closedP, openP, ent, pendingV] = Array.from({ length: 9 }, uuid);
  await store.applyPull({
    cursor: 'c1', last_mid: 0, has_more: false, window_start: null,
    changes: [
      change('enterprise', ent, 1, { name: '老企业' }),
      change('visit', oldV, 2, { visited_at: '2025-01-05T10:00:00+08:00' }),
      change('visit', oldOpenV, 3, { visited_at: '2025-01-06T10:00:00+08:00' }),
      change('visit', newV, 4, { visited_at: '2026-11-20T10:00:00+08:00' }),
      change('home_visit', oldHv, 5, { visited_at: '2025-02-01T10:00:00+08:00' }),
      change('home_visit', newHv, 6, { visited_at: '2026-11-21T10:00:00+08:00' }),
      change('problem', closedP, 7, { visit_id: oldV, stage: 'resolved' }),
      change('problem', openP, 8, { visit_id: oldOpenV, stage: 'government' }),
      change('visit', pendingV, 9, { visited_at: '2025-01-07T10:00:00+08:00' }),
    ],
  });
  // an edit made on the phone and not yet sent keeps its old visit
  await store.save([{ entity: 'visit', id: pendingV, data: { notes: '补充' } }]);
  assert.ok(await store.get('visit', oldV), 'no window yet: everything is held');
  await store.applyPull({ cursor: 'c2', last_mid: 0, has_more: false, window_start: '2026-06-06T00:00:00+00:00', changes: [] });
  const held = async (entity, id) => Boolean(await store.get(entity, id));
  assert.equal(await held('visit', oldV), false, 'old visit without an open problem');
  assert.equal(await held('problem', closedP), false, 'closed problem of a dropped visit');
  assert.equal(await held('home_visit', oldHv), false, 'old home visit');
  assert.equal(await held('visit', oldOpenV), true, 'old visit holding an open problem');
  assert.equal(await held('problem', openP), true, 'open problem');
  assert.equal(await held('visit', newV), true);
  assert.equal(await held('home_visit', newHv), true);
  assert.equal(await held('enterprise', ent), true, 'enterprises stay for search');
  assert.equal(await held('visit', pendingV), true, 'pending work is never dropped');
  assert.equal(await store.outboxCount(), 1);
});

test('a page that is not the last one drops nothing', async () => {
  const store = new Store(new MemoryBackend());
  const v = uuid();
  await store.applyPull({ cursor: 'c1', last_mid: 0, has_more: false, changes: [change('visit', v, 1, { visited_at: '2025-01-05T10:00:00+08:00' })] });
  await store.applyPull({ cursor: 'c2', last_mid: 0, has_more: true, window_start: '2026-06-06T00:00:00+00:00', changes: [] });
  assert.ok(await store.get('visit', v));
});

test('a first sync cut after two pages resumes at the third, never from zero', async () => {
  const server = new FakeServer();
  for (let i = 0; i < 3500; i++) {
    server.version += 1;
    const id = uuid();
    server.rows.set(`enterprise:${id}`, { entity: 'enterprise', id, version: server.version, data: { name: `企业${i}` } });
  }
  const store = new Store(new MemoryBackend());
  await store.setMeta('token', 'tok');
  await store.setMeta('device_id', DEV);
  const cursors = [];
  let pulls = 0;
  const fetch = async (url, init) => {
    if (String(url).includes('/api/sync/pull')) {
      pulls += 1;
      cursors.push(new URL(url, 'http://x').searchParams.get('cursor'));
      if (pulls === 3) throw new TypeError('Failed to fetch'); // the link drops mid-way
    }
    return server.fetch(url, init);
  };
  const engine = new SyncEngine({ store, fetch, lock: (f) => f(), random: () => 0.5, setTimer: () => 1, clearTimer: () => {} });
  const first = await engine.sync();
  assert.equal(first.ok, false);
  assert.equal((await store.list('enterprise')).length, 2000, 'the two pages before the cut are stored');
  const second = await engine.sync();
  assert.equal(second.ok, true);
  assert.equal((await store.list('enterprise')).length, 3500);
  assert.deepEqual(cursors, [null, '1000', '2000', '2000', '3000'], 'resumed from the last stored page');
});
