import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend } from './memory-backend.mjs';
import { Store, recordState } from '../js/store.js';
import { mutationFor, changedFields, cutBatch, readResult, backoffDelay, overlay } from '../js/outbox.js';

const V = '11111111-1111-4111-8111-111111111111';

test('a new record is queued as a create with non-empty writable fields', () => {
  const m = mutationFor('visit', V, undefined, { method: 'interview', notes: '', workers_met: 3, foo: 1 });
  assert.deepEqual(m, { op: 'create', entity: 'visit', id: V, fields: { method: 'interview', workers_met: 3 } });
});

test('a known record sends only changed fields with base_version', () => {
  const rec = { known: true, version: 7, data: { method: 'interview', workers_met: 3, notes: 'a' } };
  const m = mutationFor('visit', V, rec, { method: 'interview', workers_met: 5, notes: 'a' });
  assert.deepEqual(m, { op: 'update', entity: 'visit', id: V, fields: { workers_met: 5 }, base_version: 7 });
  assert.equal(mutationFor('visit', V, rec, { workers_met: 3 }), null);
  assert.deepEqual(changedFields('visit', { notes: 'a' }, { notes: '' }), { notes: null });
});

test('a rejected record is sent whole again after the fix', () => {
  const rec = { known: false, error: { code: 'invalid' }, data: { method: 'interview', notes: 'BAD' } };
  const m = mutationFor('visit', V, rec, { notes: 'good' });
  assert.equal(m.op, 'create');
  assert.deepEqual(m.fields, { method: 'interview', notes: 'good' });
});

test('batches are cut by count and bytes, at least one', () => {
  const e = Array.from({ length: 10 }, (_, i) => ({ mid: i + 1, fields: { notes: 'x'.repeat(100) } }));
  assert.equal(cutBatch(e, { maxCount: 4 }).length, 4);
  assert.equal(cutBatch(e, { maxCount: 100, maxBytes: 300 }).length, 2);
  assert.equal(cutBatch(e, { maxCount: 100, maxBytes: 10 }).length, 1);
});

test('duplicate results echo the original', () => {
  assert.equal(readResult({ mid: 1, status: 'duplicate', original: { status: 'applied', version: 4 } }).outcome, 'done');
  assert.equal(readResult({ mid: 1, status: 'duplicate', original: { status: 'rejected', code: 'x' } }).outcome, 'rejected');
  assert.equal(readResult({ mid: 1, status: 'duplicate', original: 'conflict' }).outcome, 'conflict');
  assert.equal(readResult({ mid: 1, status: 'skipped', code: 'gap' }).code, 'gap');
});

test('backoff grows exponentially, is capped and jittered', () => {
  assert.equal(backoffDelay(0, { random: () => 0 }), 2500);
  assert.equal(backoffDelay(0, { random: () => 1 }), 5000);
  assert.equal(backoffDelay(3, { random: () => 1 }), 40000);
  assert.equal(backoffDelay(30, { random: () => 1 }), 600000);
  const a = backoffDelay(4, { random: () => 0.3 });
  assert.ok(a >= 40000 && a <= 80000);
});

test('overlay puts pending edits over server data', () => {
  const r = overlay({ a: 1, b: 2 }, [{ op: 'update', fields: { b: 3 } }]);
  assert.deepEqual(r, { data: { a: 1, b: 3 }, deleted: false });
});

test('save writes record, outbox entry and counter in one transaction', async () => {
  const b = new MemoryBackend();
  const s = new Store(b);
  await s.putDraft({ id: V, form: { notes: 'typing' } });
  const mids = await s.save([{ entity: 'visit', id: V, data: { method: 'report', visited_at: '2026-03-05T10:00:00+08:00' } }], { dropDrafts: [V] });
  assert.deepEqual(mids, [1]);
  assert.equal(await s.outboxCount(), 1);
  assert.equal(await s.getMeta('next_mid'), 2);
  assert.equal(await s.getDraft(V), undefined);
  assert.equal(recordState(await s.get('visit', V)), 'local');
  // A failing commit leaves nothing behind: no record, no mutation, no counter move.
  b.failNext = new Error('QuotaExceededError');
  const W = '22222222-2222-4222-8222-222222222222';
  await assert.rejects(s.save([{ entity: 'visit', id: W, data: { method: 'report' } }]));
  assert.equal(await s.get('visit', W), undefined);
  assert.equal(await s.outboxCount(), 1);
  assert.equal(await s.getMeta('next_mid'), 2);
});

test('export and import keep ids so a second device makes no duplicate', async () => {
  const a = new Store(new MemoryBackend());
  await a.save([{ entity: 'visit', id: V, data: { method: 'report', notes: 'n' } }]);
  const file = JSON.parse(JSON.stringify(await a.exportUnsent()));
  assert.equal(file.records.length, 1);
  const b = new Store(new MemoryBackend());
  await b.importUnsent(file);
  await b.importUnsent(file);
  const box = await b.outboxAll();
  assert.equal(box.length, 2);
  assert.ok(box.every((m) => m.op === 'create' && m.id === V));
  assert.equal((await b.list('visit')).length, 1);
});

test("an entry's mutations are never split across batches, and carry their entry key", () => {
  const E = '22222222-2222-4222-8222-222222222222';
  const e = [{ mid: 1 }, { mid: 2, entry: E }, { mid: 3, entry: E }, { mid: 4, entry: E }, { mid: 5 }];
  assert.deepEqual(cutBatch(e, { maxCount: 2 }).map((x) => x.mid), [1, 2, 3, 4]);
  assert.deepEqual(cutBatch(e, { maxCount: 1 }).map((x) => x.mid), [1]);
  assert.deepEqual(cutBatch(e.slice(1), { maxCount: 1 }).map((x) => x.mid), [2, 3, 4]);
});

test('a save of several records tags them with the visit id; entry_rejected keeps its cause', async () => {
  const s = new Store(new MemoryBackend());
  const ENT = '33333333-3333-4333-8333-333333333333';
  await s.save([
    { entity: 'enterprise', id: ENT, data: { name: '示例', uscc: '915101' } },
    { entity: 'visit', id: V, data: { method: 'interview', enterprise_id: ENT } },
  ]);
  await s.save([{ entity: 'visit', id: '44444444-4444-4444-8444-444444444444', data: { method: 'report' } }]);
  const queued = await s.outboxAll();
  assert.deepEqual(queued.map((q) => q.entry ?? null), [V, V, null]);
  const sent = await s.nextBatch({ maxCount: 1 });
  assert.deepEqual(sent.map((m) => [m.mid, m.entry]), [[1, V], [2, V]]);
  const cause = { mid: 1, entity: 'enterprise', id: ENT, code: 'invalid', field: 'uscc', message: 'uscc: bad' };
  await s.applyPush(sent, { last_mid: 2, results: [
    { mid: 1, status: 'rejected', code: 'invalid', field: 'uscc', message: 'uscc: bad' },
    { mid: 2, status: 'rejected', code: 'entry_rejected', field: null, message: 'x', cause },
  ] });
  const v = await s.get('visit', V);
  assert.equal(recordState(v), 'error');
  assert.deepEqual(v.error.cause, cause);
  assert.equal((await s.get('enterprise', ENT)).error.field, 'uscc');
  // The fix resends both records whole, as one entry again.
  await s.save([
    { entity: 'enterprise', id: ENT, data: { uscc: '91510100MA61R8XXXX' } },
    { entity: 'visit', id: V, data: { method: 'interview', enterprise_id: ENT } },
  ]);
  const again = (await s.outboxAll()).filter((q) => q.mid > 3);
  assert.deepEqual(again.map((q) => [q.op, q.entity, q.entry]), [['create', 'enterprise', V], ['create', 'visit', V]]);
  assert.equal(again[0].fields.name, '示例');
});

test('the waiting count is of entries, not mutations', async () => {
  const s = new Store(new MemoryBackend());
  const ids = Array.from({ length: 6 }, (_, i) => `5555555${i}-5555-4555-8555-555555555555`);
  await s.save([
    { entity: 'enterprise', id: ids[0], data: { name: '示例' } },
    { entity: 'visit', id: ids[1], data: { method: 'symposium', enterprise_id: ids[0] } },
    { entity: 'problem', id: ids[2], data: { visit_id: ids[1], description: 'x' } },
  ]);
  await s.save([{ entity: 'visit', id: ids[3], data: { method: 'report' } }]);
  await s.save([{ entity: 'problem', id: ids[4], data: { visit_id: ids[3], description: 'y' } }]); // an older-style child
  assert.equal(await s.outboxCount(), 5);
  assert.equal(await s.pendingEntries(), 2);
  // An unsent problem edited again is still part of its entry.
  await s.save([{ entity: 'problem', id: ids[2], data: { stage: 'government' } }]);
  assert.equal(await s.outboxCount(), 6);
  assert.equal(await s.pendingEntries(), 2);
});
