// Joining a visit another cadre recorded: the outbox carries an addition to its
// participants (never a full list), and pulls laid over the queued join keep it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend } from './memory-backend.mjs';
import { Store, uuid } from '../js/store.js';
import { joinMutation, overlay, wireMutation, withParticipants } from '../js/outbox.js';

const pulled = (id, version, participants) => ({
  cursor: 'c1', last_mid: 0, has_more: false,
  changes: [{ entity: 'visit', id, version, deleted: false,
    data: { id, method: 'symposium', visited_at: '2026-12-02T10:00:00+08:00', enterprise_id: 'e1', participants, notes: 'A' } }],
});

test('a join is an update of participants_add based on the pulled version', () => {
  const m = joinMutation('v1', { version: 7 }, 'demo2');
  assert.deepEqual(m, { op: 'update', entity: 'visit', id: 'v1', fields: { participants_add: ['demo2'] }, base_version: 7 });
  assert.deepEqual(wireMutation({ ...m, mid: 3, entry: 'v1' }),
    { mid: 3, op: 'update', entity: 'visit', id: 'v1', fields: { participants_add: ['demo2'] }, base_version: 7, entry: 'v1' });
  assert.deepEqual(withParticipants(['demo', 'demo2'], ['demo2', 'demo3']), ['demo', 'demo2', 'demo3']);
});

test('overlay adds queued joins to what the server sent, and never writes participants_add', () => {
  const { data } = overlay({ participants: ['demo'], notes: 'A' }, [
    { op: 'update', fields: { participants_add: ['demo2'] } },
    { op: 'update', fields: { notes: 'B' } },
  ]);
  assert.deepEqual(data, { participants: ['demo', 'demo2'], notes: 'B' });
});

test('joining saves the join and the problems on the joined visit in one entry; a pull keeps the join', async () => {
  const store = new Store(new MemoryBackend());
  const vid = uuid();
  await store.applyPull(pulled(vid, 5, ['demo']));
  const pid = uuid();
  await store.save([
    { entity: 'visit', id: vid, join: 'demo2' },
    { entity: 'problem', id: pid, data: { visit_id: vid, category: 'wages', description: '欠薪' } },
  ]);
  const out = await store.outboxAll();
  assert.deepEqual(out.map((e) => [e.op, e.entity, e.entry]), [['update', 'visit', vid], ['create', 'problem', vid]]);
  assert.deepEqual(out[0].fields, { participants_add: ['demo2'] });
  assert.equal(out[0].base_version, 5);
  assert.equal(await store.pendingEntries(), 1);
  let rec = await store.get('visit', vid);
  assert.deepEqual(rec.data.participants, ['demo', 'demo2']);
  assert.equal(rec.data.notes, 'A'); // the joined visit's content is the other cadre's
  // Another cadre joined meanwhile: the server's list has them, the queued join stays on top.
  await store.applyPull(pulled(vid, 6, ['demo', 'demo3']));
  rec = await store.get('visit', vid);
  assert.deepEqual(rec.data.participants, ['demo', 'demo3', 'demo2']);
  assert.equal(rec.data.participants_add, undefined);
});
