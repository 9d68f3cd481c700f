// The phone's copy of records, the outbox and drafts, on top of a db.js backend.
// Every save writes the record and its outbox mutation in ONE transaction, with the
// mutation counter (mid) advanced in that same transaction.

import { mutationFor, readResult, overlay, cutBatch, wireMutation } from './outbox.js';

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
   * Returns the mids written. Nothing is written if any part fails.
   */
  save(changes, { dropDrafts = [] } = {}) {
    return this.b.tx(['records', 'outbox', 'meta', 'drafts'], 'readwrite', async (t) => {
      const counter = await t.get('meta', 'next_mid');
      let mid = counter ? counter.v : 1;
      const mids = [];
      for (const ch of changes) {
        const key = rkey(ch.entity, ch.id);
        const rec = await t.get('records', key);
        const m = mutationFor(ch.entity, ch.id, rec, ch.data || {}, { del: !!ch.del });
        const next = rec ? { ...rec } : {
          key, entity: ch.entity, id: ch.id, data: {}, version: null, known: false,
          mine: true, pending: [], created_local: this.now(),
        };
        if (ch.data) next.data = { ...next.data, ...ch.data };
        if (ch.del) next.deleted = true;
        next.updated_local = this.now();
        if (m) {
          const entry = { ...m, mid, saved_at: this.now() };
          await t.put('outbox', entry);
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
      return mids;
    });
  }

  // ---- outbox -----------------------------------------------------------
  outboxCount() {
    return this.b.tx(['outbox'], 'readonly', (t) => t.count('outbox'));
  }

  async outboxAll() {
    return this.b.tx(['outbox'], 'readonly', (t) => t.all('outbox'));
  }

  /** The next batch in wire form, marking its records as "sending". */
  nextBatch(opts) {
    return this.b.tx(['outbox', 'records'], 'readwrite', async (t) => {
      const head = await t.all('outbox', { limit: opts.maxCount || 100 });
      const batch = cutBatch(head, opts);
      const keys = new Set(batch.map((e) => rkey(e.entity, e.id)));
      for (const key of keys) {
        const rec = await t.get('records', key);
        if (rec) await t.put('records', { ...rec, sending: true });
      }
      return batch.map(wireMutation);
    });
  }

  /** After a failed round: nothing is "sending" any more. */
  clearSending() {
    return this.b.tx(['records'], 'readwrite', async (t) => {
      for (const rec of await t.all('records')) if (rec.sending) await t.put('records', { ...rec, sending: false });
    });
  }

  /** Apply a push answer. Returns {done, rejected, conflict, retry} counts. */
  applyPush(sent, answer) {
    return this.b.tx(['outbox', 'records', 'meta'], 'readwrite', async (t) => {
      const counts = { done: 0, rejected: 0, conflict: 0, retry: 0 };
      const byMid = new Map(sent.map((m) => [m.mid, m]));
      let gap = false;
      for (const r of answer.results || []) {
        const m = byMid.get(r.mid);
        if (!m) continue;
        const res = readResult(r);
        counts[res.outcome] += 1;
        if (res.outcome === 'retry') { if (res.code === 'gap') gap = true; continue; }
        await t.del('outbox', r.mid);
        const key = rkey(m.entity, m.id);
        const rec = await t.get('records', key);
        if (!rec) continue;
        rec.pending = (rec.pending || []).filter((x) => x !== r.mid);
        if (m.op === 'delete') {
          if (!rec.pending.length) await t.del('records', key);
          else await t.put('records', rec);
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
        if (!rec.pending.length) rec.sending = false;
        await t.put('records', rec);
      }
      for (const m of sent) {
        // Anything still queued from this batch is no longer in flight.
        const rec = await t.get('records', rkey(m.entity, m.id));
        if (rec?.sending) await t.put('records', { ...rec, sending: false });
      }
      if (answer.last_mid != null) await t.put('meta', { k: 'server_last_mid', v: answer.last_mid });
      if (gap && answer.last_mid != null) counts.renumbered = await this._renumber(t, answer.last_mid);
      return counts;
    });
  }

  // The server's counter is behind our queue (a restored server, or a lost batch the
  // server never saw): number the queue again from last_mid + 1, keeping its order.
  async _renumber(t, lastMid) {
    const all = await t.all('outbox');
    if (!all.length || all[0].mid <= lastMid + 1) return 0;
    const map = new Map();
    let mid = lastMid + 1;
    for (const e of all) { map.set(e.mid, mid); mid += 1; }
    for (const e of all) await t.del('outbox', e.mid);
    for (const e of all) await t.put('outbox', { ...e, mid: map.get(e.mid) });
    for (const rec of await t.all('records')) {
      if (rec.pending?.length) await t.put('records', { ...rec, pending: rec.pending.map((x) => map.get(x) ?? x) });
    }
    await t.put('meta', { k: 'next_mid', v: mid });
    return all.length;
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
      for (const ch of page.changes || []) {
        const key = rkey(ch.entity, ch.id);
        const rec = await t.get('records', key);
        const pending = [];
        for (const mid of rec?.pending || []) {
          if (mid <= lastMid) continue;
          const e = await t.get('outbox', mid);
          if (e) pending.push(e);
        }
        if (ch.deleted) {
          if (rec && (pending.length || rec.error)) await t.put('records', { ...rec, remote_deleted: true });
          else if (rec) await t.del('records', key);
          continue;
        }
        const { data, deleted } = overlay(ch.data || {}, pending);
        // Keep the write-only ID number while its mutation is still queued.
        if (rec?.data?.id_number && pending.length) data.id_number = rec.data.id_number;
        await t.put('records', {
          ...(rec || { key, entity: ch.entity, id: ch.id, pending: [], mine: false }),
          data, version: ch.version, known: true, deleted: deleted || false,
        });
      }
      await t.put('meta', { k: 'cursor', v: page.cursor ?? null });
      await t.put('meta', { k: 'server_last_mid', v: lastMid });
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
