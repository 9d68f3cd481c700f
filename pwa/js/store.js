// The phone's copy of records, the outbox and drafts, on top of a db.js backend.
// Every save writes the record and its outbox mutation in ONE transaction, with the
// mutation counter (mid) advanced in that same transaction.

import { joinMutation, mutationFor, readResult, overlay, cutBatch, wireMutation, withParticipants } from './outbox.js';

const rkey = (entity, id) => `${entity}:${id}`;

export const uuid = () =>
  globalThis.crypto?.randomUUID
    ? crypto.randomUUID()
    : 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
      const r = (Math.random() * 16) | 0;
      return (c === 'x' ? r : (r & 3) | 8).toString(16);
    });

/** Display state of a record: local | sending | synced | error | conflict. */
export function recordState(rec) {
  if (!rec) return 'local';
  if (rec.pending?.length) return rec.sending ? 'sending' : 'local';
  if (rec.error) return 'error';
  if (rec.conflict) return 'conflict';
  return rec.known ? 'synced' : 'local';
}

const OPEN_STAGES = new Set(['enterprise', 'government', 'source']);

/**
 * Drop the copies of records that left the phone's window (docs/sync-protocol.md, "What
 * a phone holds"): visits and home visits dated before `start` that hold no open problem,
 * and closed problems of visits no longer held. Anything pending, failed or never
 * confirmed by the server stays. Runs once per window start day, at the end of a pull.
 */
async function pruneBefore(t, start, { force = false } = {}) {
  const day = String(start).slice(0, 10);
  const done = await t.get('meta', 'pruned_for');
  if (!force && done?.v === day) return 0;
  const cut = Date.parse(start);
  const all = await t.all('records');
  const keep = (rec) => rec.pending?.length || rec.error || !rec.known;
  const openVisits = new Set(all
    .filter((r) => r.entity === 'problem' && !r.deleted && OPEN_STAGES.has(r.data?.stage || 'enterprise'))
    .map((r) => r.data?.visit_id));
  const old = (rec) => Date.parse(rec.data?.visited_at) < cut;
  const dropped = new Set();
  for (const rec of all) {
    if (keep(rec)) continue;
    if ((rec.entity === 'visit' && old(rec) && !openVisits.has(rec.id))
        || (rec.entity === 'home_visit' && old(rec))) dropped.add(rec.key);
  }
  const held = new Set(all.filter((r) => r.entity === 'visit' && !dropped.has(r.key)).map((r) => r.id));
  for (const rec of all) {
    if (rec.entity === 'problem' && !keep(rec) && !OPEN_STAGES.has(rec.data?.stage || 'enterprise')
        && !held.has(rec.data?.visit_id)) dropped.add(rec.key);
  }
  await Promise.all([...dropped].map((key) => t.del('records', key)));
  await t.put('meta', { k: 'pruned_for', v: day });
  return dropped.size;
}

export class Store {
  constructor(backend, { now = () => new Date().toISOString() } = {}) {
    this.b = backend;
    this.now = now;
  }

  // ---- meta -------------------------------------------------------------
  async getMeta(k, dflt = null) {
    const row = await this.b.tx(['meta'], 'readonly', (t) => t.get('meta', k));
    return row ? row.v : dflt;
  }

  setMeta(k, v) {
    return this.b.tx(['meta'], 'readwrite', (t) => t.put('meta', { k, v }));
  }

  // ---- records ----------------------------------------------------------
  get(entity, id) {
    return this.b.tx(['records'], 'readonly', (t) => t.get('records', rkey(entity, id)));
  }

  async list(entity) {
    const all = await this.b.tx(['records'], 'readonly', (t) => t.all('records'));
    return all.filter((r) => (!entity || r.entity === entity) && !r.deleted);
  }

  /**
   * Save changes atomically: [{entity, id, data, del?}] plus draft ids to drop.
   * `{entity: 'visit', id, join: username}` adds the user to that visit's participants.
   * Returns the mids written. Nothing is written if any part fails.
   */
  save(changes, { dropDrafts = [], photos = [] } = {}) {
    return this.b.tx(['records', 'outbox', 'meta', 'drafts', 'photos', 'photo_data'], 'readwrite', async (t) => {
      const counter = await t.get('meta', 'next_mid');
      let mid = counter ? counter.v : 1;
      const mids = [];
      // The records of one entry (a visit with its new enterprise, problems and home
      // visit) carry the visit's id as `entry`: the server accepts or rejects them together.
      const entry = changes.length > 1 ? (changes.find((c) => c.entity === 'visit') || changes[0]).id : null;
      for (const ch of changes) {
        const key = rkey(ch.entity, ch.id);
        const rec = await t.get('records', key);
        const m = ch.join ? joinMutation(ch.id, rec, ch.join) : mutationFor(ch.entity, ch.id, rec, ch.data || {}, { del: !!ch.del });
        const next = rec ? { ...rec } : {
          key, entity: ch.entity, id: ch.id, data: {}, version: null, known: false,
          mine: true, pending: [], created_local: this.now(),
        };
        if (ch.data) next.data = { ...next.data, ...ch.data };
        if (ch.join) next.data = { ...next.data, participants: withParticipants(next.data.participants, [ch.join]) };
        if (ch.del) next.deleted = true;
        next.updated_local = this.now();
        if (m) {
          const queued = { ...m, mid, saved_at: this.now() };
          if (entry) queued.entry = entry;
          await t.put('outbox', queued);
          next.pending = [...(next.pending || []), mid];
          next.error = null; // a new save is the cadre's fix; the server judges it again
          next.conflict = null;
          mids.push(mid);
          mid += 1;
        }
        await t.put('records', next);
      }
      await t.put('meta', { k: 'next_mid', v: mid });
      for (const d of dropDrafts) await t.del('drafts', d);
      // Photos go in with their entry: both are on the phone, or neither (js/uploads.js).
      for (const { bytes, ...meta } of photos) {
        await t.put('photos', meta);
        await t.put('photo_data', { id: meta.id, bytes });
      }
      return mids;
    });
  }

  // ---- outbox -----------------------------------------------------------
  outboxCount() {
    return this.b.tx(['outbox'], 'readonly', (t) => t.count('outbox'));
  }

  /**
   * How many entries wait to be sent (what the cadre counts): the mutations of one save
   * share an `entry`; older queues without it count a child with its visit.
   */
  async pendingEntries() {
    const all = await this.b.tx(['outbox'], 'readonly', (t) => t.all('outbox'));
    const keys = new Set(all.map((e) => e.entry || (e.fields?.visit_id ? e.fields.visit_id : e.id)));
    return keys.size;
  }

  /** Entries waiting and the oldest one's save time (what the phone reports to the server). */
  async waiting() {
    const all = await this.b.tx(['outbox'], 'readonly', (t) => t.all('outbox'));
    const keys = new Set(all.map((e) => e.entry || (e.fields?.visit_id ? e.fields.visit_id : e.id)));
    const oldest = all.reduce((min, e) => (e.saved_at && (!min || e.saved_at < min) ? e.saved_at : min), null);
    return { pending: keys.size, oldest_pending_at: oldest };
  }

  async outboxAll() {
    return this.b.tx(['outbox'], 'readonly', (t) => t.all('outbox'));
  }

  /**
   * The next batch in wire form, marking its records as "sending" and its entries as
   * sent and in flight (for `deviceId`). Runs under the sync lock, so an earlier flight
   * that never landed (a killed page) is over: a renumbering it held back is done first.
   */
  nextBatch(opts, deviceId = null) {
    return this.b.tx(['outbox', 'records', 'meta'], 'readwrite', async (t) => {
      await this._settle(t, null);
      // A few past the limit: an entry that straddles it is finished in this batch.
      const head = await t.all('outbox', { limit: (opts.maxCount || 100) + 50 });
      const batch = cutBatch(head, opts);
      // Requests issued together, not one awaited at a time (see applyPush).
      const keys = [...new Set(batch.map((e) => rkey(e.entity, e.id)))];
      const recs = await Promise.all(keys.map((key) => t.get('records', key)));
      await Promise.all([
        ...recs.filter(Boolean).map((rec) => t.put('records', { ...rec, sending: true })),
        ...batch.filter((e) => !e.sent).map((e) => t.put('outbox', { ...e, sent: true })),
      ]);
      if (batch.length) await t.put('meta', { k: 'inflight', v: { mids: batch.map((e) => e.mid), device_id: deviceId } });
      return batch.map(wireMutation);
    });
  }

  /**
   * After a failed round: nothing is "sending" any more. With `landed` (the engine's own
   * push is over, it holds the sync lock) the flight ends too and a held-back
   * renumbering is done; the page's start-up call leaves the flight alone, as a service
   * worker may be pushing.
   */
  clearSending({ landed = false } = {}) {
    return this.b.tx(['records', 'outbox', 'meta'], 'readwrite', async (t) => {
      for (const rec of await t.all('records')) if (rec.sending) await t.put('records', { ...rec, sending: false });
      if (landed) await this._settle(t, null);
    });
  }

  /** Apply a push answer. Returns {done, rejected, conflict, retry, reused, renumbered} counts. */
  applyPush(sent, answer) {
    return this.b.tx(['outbox', 'records', 'meta'], 'readwrite', async (t) => {
      const counts = { done: 0, rejected: 0, conflict: 0, retry: 0, reused: 0, renumbered: 0 };
      const byMid = new Map(sent.map((m) => [m.mid, m]));
      let gap = false;
      // The batch's records are read at once, changed in memory and written once each: a
      // few rounds of requests instead of three awaited ones per mutation (on a slow phone
      // every await costs; 500 entries took ~5 s at CPU x4 here alone).
      const keys = [...new Set(sent.map((m) => rkey(m.entity, m.id)))];
      const found = await Promise.all(keys.map((k) => t.get('records', k)));
      const recs = new Map(keys.map((k, i) => [k, found[i] || null]));
      const removed = new Set();
      const writes = [];
      for (const r of answer.results || []) {
        const m = byMid.get(r.mid);
        if (!m) continue;
        const res = readResult(r);
        counts[res.outcome] += 1;
        // mid_reused: the server holds another change under this mid and applied nothing;
        // the entry stays and is numbered again after the server's counter below.
        if (res.outcome === 'reused') continue;
        if (res.outcome === 'retry') { if (res.code === 'gap') gap = true; continue; }
        writes.push(t.del('outbox', r.mid));
        const key = rkey(m.entity, m.id);
        const rec = recs.get(key);
        if (!rec) continue;
        rec.pending = (rec.pending || []).filter((x) => x !== r.mid);
        if (m.op === 'delete') {
          if (!rec.pending.length) { recs.set(key, null); removed.add(key); }
          continue;
        }
        if (res.outcome === 'done' || res.outcome === 'conflict') {
          rec.known = true;
          if (res.version != null) rec.version = res.version;
          // The ID number is write-only: once the server has it, the phone forgets it.
          if (m.entity === 'home_visit' && !rec.pending.length && rec.data.id_number) {
            const n = String(rec.data.id_number);
            rec.data = { ...rec.data, id_last4: n.slice(-4) };
            delete rec.data.id_number;
          }
        }
        if (res.outcome === 'rejected') rec.error = { ...res.error, mid: r.mid, op: m.op, at: this.now() };
        if (res.outcome === 'conflict') rec.conflict = res.conflict;
      }
      // Nothing of this batch is in flight any more, answered or still queued.
      for (const [key, rec] of recs) {
        if (removed.has(key)) writes.push(t.del('records', key));
        else if (rec) writes.push(t.put('records', { ...rec, sending: false }));
      }
      await Promise.all(writes);
      if (answer.last_mid != null) await t.put('meta', { k: 'server_last_mid', v: answer.last_mid });
      // A gap (the server's counter is behind the queue: a restored server, a lost batch)
      // or a reused mid (it is ahead: a reinstall that kept the device id): either way
      // the queue is numbered again from the server's last_mid + 1, in its order.
      const own = (gap || counts.reused) && answer.last_mid != null ? { base: answer.last_mid, all: true } : null;
      counts.renumbered = await this._settle(t, own);
      return counts;
    });
  }

  /**
   * Sign-in: token, device and user are stored and the queue is numbered to fit the
   * server's counter (`last_mid`) of that device, all in ONE transaction.
   *   - the same device as before: entries never sent yet whose mid the server has
   *     already used (last_mid >= their mid, e.g. a reinstall that kept the device id
   *     and started counting at 1 again) move after last_mid, in their order; with an
   *     empty queue the counter moves past last_mid. Entries already sent keep their
   *     mids: the server may hold them (a lost answer) and answers them `duplicate`.
   *   - a new device (the old one was revoked): every pending entry is numbered again
   *     from last_mid + 1 (1 for a new device), in its order.
   * While a push is in flight its entries must keep the mids the server will answer
   * with: the renumbering is then recorded and done when that push lands (applyPush,
   * or the next batch / failed round). Returns {deferred, renumbered}.
   */
  signedIn({ token, device_id: deviceId, user, last_mid: lastMid = 0 }) {
    return this.b.tx(['outbox', 'records', 'meta'], 'readwrite', async (t) => {
      const prev = (await t.get('meta', 'device_id'))?.v ?? null;
      const sameDevice = prev === deviceId;
      for (const [k, v] of [['token', token], ['device_id', deviceId], ['user', user], ['username', user?.username],
        ['auth_needed', null], ['revoked_device', null]]) await t.put('meta', { k, v });
      // A new device has seen none of the queue: every entry counts as never sent.
      const want = { base: Number(lastMid) || 0, all: !sameDevice, forget: !sameDevice, device_id: deviceId };
      const held = (await t.get('meta', 'renumber'))?.v;
      const req = held && held.device_id === deviceId
        ? { ...want, base: Math.max(held.base, want.base), all: held.all || want.all, forget: held.forget || want.forget } : want;
      if ((await t.get('meta', 'inflight'))?.v) {
        await t.put('meta', { k: 'renumber', v: req });
        return { deferred: true, renumbered: 0 };
      }
      await t.put('meta', { k: 'renumber', v: null });
      return { deferred: false, renumbered: await this._renumber(t, req.base, req) };
    });
  }

  /**
   * End of a flight (inside a transaction): forget it, and do the renumbering it held
   * back together with the one the push answer asks for (`own`, about the device the
   * batch went to). Returns how many entries got a new mid.
   */
  async _settle(t, own) {
    const flight = (await t.get('meta', 'inflight'))?.v;
    const held = (await t.get('meta', 'renumber'))?.v;
    if (flight) await t.put('meta', { k: 'inflight', v: null });
    if (held) await t.put('meta', { k: 'renumber', v: null });
    let req = own;
    if (held) {
      // The answer's counter counts only if it is about the device the queue is now for.
      const sameDevice = !flight || flight.device_id === held.device_id;
      req = own && sameDevice ? { ...held, base: Math.max(own.base, held.base), all: true } : held;
    }
    return req ? this._renumber(t, req.base, req) : 0;
  }

  /**
   * Number the queue again after the server's counter `base`, keeping its order, in the
   * caller's transaction. `all`: every entry from base + 1. Otherwise only the entries
   * never sent, and only if the server has already used the first one's mid (entries
   * sent before keep theirs: the server may hold them). Idempotent: a second call with
   * the same base changes nothing. `forget`: the entries count as never sent (a new
   * device). Returns how many entries got a new mid.
   */
  async _renumber(t, base, { all = false, forget = false } = {}) {
    const entries = await t.all('outbox');
    const next = (await t.get('meta', 'next_mid'))?.v ?? 1;
    const from = all ? 0 : entries.findIndex((e) => !e.sent);
    const moving = from < 0 ? [] : entries.slice(from);
    if (!all && moving.length && moving[0].mid > base) return 0;
    if (!all && !moving.length) {
      if (base >= next) await t.put('meta', { k: 'next_mid', v: base + 1 });
      return 0;
    }
    const map = new Map();
    let mid = base + 1;
    for (const e of moving) { if (e.mid !== mid) map.set(e.mid, mid); mid += 1; }
    const touched = moving.filter((e) => map.has(e.mid) || (forget && e.sent));
    for (const e of touched) if (map.has(e.mid)) await t.del('outbox', e.mid);
    for (const e of touched) {
      const { sent, ...rest } = e; // a new number has never been sent
      await t.put('outbox', { ...rest, mid: map.get(e.mid) ?? e.mid });
    }
    if (map.size) {
      for (const rec of await t.all('records')) {
        if (rec.pending?.some((x) => map.has(x))) await t.put('records', { ...rec, pending: rec.pending.map((x) => map.get(x) ?? x) });
      }
    }
    // With `all` the counter follows the queue even downwards (a new device starts at 1).
    const stay = all ? 0 : next;
    await t.put('meta', { k: 'next_mid', v: Math.max(stay, mid) });
    return map.size;
  }

  /** Apply one pull page; the cursor moves in the same transaction as the data. */
  applyPull(page) {
    return this.b.tx(['records', 'outbox', 'meta'], 'readwrite', async (t) => {
      const lastMid = page.last_mid ?? 0;
      if (page.reset) {
        // Drop the copy of server records, never the outbox or unsent work.
        for (const rec of await t.all('records')) {
          if (!rec.pending?.length && !rec.error) await t.del('records', rec.key);
        }
      }
      // The page's records and their pending entries are read at once, the changes laid
      // over them in memory in order, and each record written once (see applyPush).
      const changes = page.changes || [];
      const keys = [...new Set(changes.map((ch) => rkey(ch.entity, ch.id)))];
      const found = await Promise.all(keys.map((k) => t.get('records', k)));
      const recs = new Map(keys.map((k, i) => [k, found[i] || null]));
      const mids = [...new Set(found.flatMap((rec) => (rec?.pending || []).filter((mid) => mid > lastMid)))];
      const entries = await Promise.all(mids.map((mid) => t.get('outbox', mid)));
      const queued = new Map(mids.map((mid, i) => [mid, entries[i]]));
      const touched = new Set();
      for (const ch of changes) {
        const key = rkey(ch.entity, ch.id);
        const rec = recs.get(key);
        const pending = (rec?.pending || []).filter((mid) => mid > lastMid).map((mid) => queued.get(mid)).filter(Boolean);
        touched.add(key);
        if (ch.deleted) {
          if (rec && (pending.length || rec.error)) recs.set(key, { ...rec, remote_deleted: true });
          else recs.set(key, null);
          continue;
        }
        const { data, deleted } = overlay(ch.data || {}, pending);
        // Keep the write-only ID number while its mutation is still queued.
        if (rec?.data?.id_number && pending.length) data.id_number = rec.data.id_number;
        recs.set(key, {
          ...(rec || { key, entity: ch.entity, id: ch.id, pending: [], mine: false }),
          data, version: ch.version, known: true, deleted: deleted || false,
        });
      }
      await Promise.all([...touched].map((key) => {
        const rec = recs.get(key);
        return rec ? t.put('records', rec) : t.del('records', key);
      }));
      await t.put('meta', { k: 'cursor', v: page.cursor ?? null });
      await t.put('meta', { k: 'server_last_mid', v: lastMid });
      if (!page.has_more && page.window_start) await pruneBefore(t, page.window_start);
      return (page.changes || []).length;
    });
  }

  // ---- drafts -----------------------------------------------------------
  putDraft(draft) {
    return this.b.tx(['drafts'], 'readwrite', (t) => t.put('drafts', { ...draft, saved_at: this.now() }));
  }

  getDraft(id) {
    return this.b.tx(['drafts'], 'readonly', (t) => t.get('drafts', id));
  }

  listDrafts() {
    return this.b.tx(['drafts'], 'readonly', (t) => t.all('drafts'));
  }

  delDraft(id) {
    return this.b.tx(['drafts'], 'readwrite', (t) => t.del('drafts', id));
  }

  // ---- last resort: export and import of unsent work --------------------
  /** Every record whose latest local state the server has not confirmed. */
  async exportUnsent() {
    const all = await this.b.tx(['records'], 'readonly', (t) => t.all('records'));
    const records = all
      .filter((r) => r.pending?.length || r.error || !r.known)
      .map((r) => ({ entity: r.entity, id: r.id, deleted: !!r.deleted, data: r.data }));
    return { format: 'fieldvisit-unsent', format_version: 1, exported_at: this.now(), records };
  }

  /**
   * Queue every record of an export file as a create with the same id: the server applies
   * a create of an existing id as an update, so importing twice, or on two phones, never
   * makes a duplicate. Parents go first (enterprise, visit, then children).
   */
  async importUnsent(file) {
    if (!file || file.format !== 'fieldvisit-unsent' || !Array.isArray(file.records)) {
      throw new Error('not a fieldvisit export file');
    }
    const order = { enterprise: 0, visit: 1, problem: 2, home_visit: 3 };
    const recs = [...file.records].filter((r) => r.entity in order).sort((a, b) => order[a.entity] - order[b.entity]);
    const changes = [];
    for (const r of recs) {
      const cur = await this.get(r.entity, r.id);
      if (r.deleted) { if (cur) changes.push({ entity: r.entity, id: r.id, del: true }); continue; }
      changes.push({ entity: r.entity, id: r.id, data: r.data, fresh: !cur });
    }
    // An imported record is unknown to this phone's server copy: send it whole.
    return this.b.tx(['records', 'outbox', 'meta', 'drafts'], 'readwrite', async (t) => {
      for (const ch of changes) {
        const key = rkey(ch.entity, ch.id);
        const rec = await t.get('records', key);
        if (rec && !ch.del) await t.put('records', { ...rec, known: false });
      }
    }).then(() => this.save(changes.map(({ fresh, ...c }) => c)));
  }
}
