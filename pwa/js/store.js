// The phone's copy of records, the outbox and drafts, on a db.js backend. A save writes
// the record, its outbox mutation and the counter (mid) in ONE transaction.

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

/** A visit the cadre recorded, was listed on, or made on this phone. */
export function isMine(rec, u) {
  const by = rec.data?.created_by;
  return !!rec.mine || (!!u && ((rec.data?.participants || []).includes(u.username) || (by != null && (by === u.id || by === u.username))));
}

// The fields of db.js's INDEXES, set at every write: `st` unless synced, `my` on the
// cadre's visits (`user` undefined: kept as it was).
export function indexed(rec, user) {
  const s = recordState(rec);
  if (s === 'synced') delete rec.st; else rec.st = s === 'error' || s === 'conflict' ? 0 : 1;
  if (!rec.deleted && (user !== undefined ? rec.entity === 'visit' && isMine(rec, user) : rec.my != null)) rec.my = String(rec.data?.visited_at || '');
  else delete rec.my;
  return rec;
}
const ofEntity = (e) => (e ? { lo: `${e}:`, hi: `${e}:\uffff` } : {});

const OPEN_STAGES = new Set(['enterprise', 'government', 'source']);

// Drop the copies that left the phone's window (docs/sync-protocol.md, "What a phone
// holds"); anything pending, failed or unconfirmed stays. Once per window start day.
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
    backend.derive = indexed; // db.js's upgrade to version 3
  }

  /** Writes of records carry their indexed fields (`t.user`: see indexed). */
  tx(names, mode, fn) {
    return this.b.tx(names, mode, (t) => {
      const w = { ...t, put: (s, v) => t.put(s, s === 'records' ? indexed(v, w.user) : v) };
      return fn(w);
    });
  }

  // ---- meta -------------------------------------------------------------
  async getMeta(k, dflt = null) {
    const row = await this.tx(['meta'], 'readonly', (t) => t.get('meta', k));
    return row ? row.v : dflt;
  }

  setMeta(k, v) {
    return this.tx(['meta'], 'readwrite', (t) => t.put('meta', { k, v }));
  }

  // ---- records ----------------------------------------------------------
  get(entity, id) {
    return this.tx(['records'], 'readonly', (t) => t.get('records', rkey(entity, id)));
  }

  async list(entity) {
    return (await this.tx(['records'], 'readonly', (t) => t.all('records', ofEntity(entity)))).filter((r) => !r.deleted);
  }

  /** Records of one of db.js's INDEXES, `q` as t.all's: {lo, hi, dir, limit}. */
  rows(index, q = {}) {
    return this.tx(['records'], 'readonly', (t) => t.all('records', { ...q, index }));
  }

  /** The problems and home visit of a visit. */
  async kids(id) {
    return (await this.rows('kid', { lo: id, hi: id })).filter((r) => !r.deleted);
  }

  /** Ids of visits with a record unsynced (their own or a child's; `rank` 0: needing attention). */
  async unsynced(rank) {
    const rows = await this.rows('st', rank == null ? {} : { lo: rank, hi: rank });
    return [...new Set(rows.map((r) => (r.entity === 'visit' ? r.id : r.entity === 'problem' || r.entity === 'home_visit' ? r.data.visit_id : null)))]
      .filter(Boolean);
  }

  // The entries of these visits (records or ids) as shown, in one transaction: a merged
  // visit as its canonical (not held: left out), its enterprise (`ref`: not held), its
  // children unless `lean(v, ent)`.
  entries(visits, { ref = () => null, user, lean = () => false } = {}) {
    return this.tx(['records'], 'readonly', async (t) => {
      const get = async (e, id) => {
        const r = id ? await t.get('records', rkey(e, id)) : null;
        return r && !r.deleted ? r : null;
      };
      const look = async (id) => (await get('enterprise', id))?.data || (id ? ref(id) : null);
      const out = await Promise.all(visits.map(async (x) => {
        let v = typeof x === 'string' ? await get('visit', x) : x;
        if (!v || v.deleted || (user !== undefined && !isMine(v, user))) return null;
        for (let i = 0; i < 5 && v.data.canonical_id; i++) v = (await get('visit', v.data.canonical_id)) || v;
        if (v.data.canonical_id) return null;
        let ent = await look(v.data.enterprise_id);
        for (let i = 0; i < 5 && ent?.canonical_id; i++) ent = (await look(ent.canonical_id)) || ent;
        const kids = lean(v, ent) ? [] : await t.all('records', { index: 'kid', lo: v.id, hi: v.id });
        return { v, kids: kids.filter((k) => !k.deleted), ent };
      }));
      const seen = new Set();
      return out.filter((x) => x && !seen.has(x.v.id) && seen.add(x.v.id));
    });
  }

  // Save atomically [{entity, id, data, del?}] ({entity: 'visit', id, join: username}
  // adds a participant), dropping drafts. Returns the mids written.
  save(changes, { dropDrafts = [], photos = [] } = {}) {
    return this.tx(['records', 'outbox', 'meta', 'drafts', 'photos', 'photo_data'], 'readwrite', async (t) => {
      t.user = (await t.get('meta', 'user'))?.v ?? null;
      const counter = await t.get('meta', 'next_mid');
      let mid = counter ? counter.v : 1;
      const mids = [];
      // One entry's mutations carry the visit's id as `entry`: accepted or refused together.
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
    return this.tx(['outbox'], 'readonly', (t) => t.count('outbox'));
  }

  /** Entries waiting (a save's mutations share `entry`; older queues: a child with its visit). */
  async pendingEntries() {
    return (await this.waiting()).pending;
  }

  /** Entries waiting and the oldest one's save time (what the phone reports to the server). */
  async waiting() {
    const all = await this.tx(['outbox'], 'readonly', (t) => t.all('outbox'));
    const keys = new Set(all.map((e) => e.entry || (e.fields?.visit_id ? e.fields.visit_id : e.id)));
    const oldest = all.reduce((min, e) => (e.saved_at && (!min || e.saved_at < min) ? e.saved_at : min), null);
    return { pending: keys.size, oldest_pending_at: oldest };
  }

  async outboxAll() {
    return this.tx(['outbox'], 'readonly', (t) => t.all('outbox'));
  }

  // The next batch in wire form, marked sending/sent/in flight (under the sync lock).
  nextBatch(opts, deviceId = null) {
    return this.tx(['outbox', 'records', 'meta'], 'readwrite', async (t) => {
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

  // After a failed round; `landed`: the engine's push is over, the flight ends too.
  clearSending({ landed = false } = {}) {
    return this.tx(['records', 'outbox', 'meta'], 'readwrite', async (t) => {
      for (const rec of await t.all('records')) if (rec.sending) await t.put('records', { ...rec, sending: false });
      if (landed) await this._settle(t, null);
    });
  }

  /** Apply a push answer. Returns {done, rejected, conflict, retry, reused, renumbered} counts. */
  applyPush(sent, answer) {
    return this.tx(['outbox', 'records', 'meta'], 'readwrite', async (t) => {
      const counts = { done: 0, rejected: 0, conflict: 0, retry: 0, reused: 0, renumbered: 0 };
      const byMid = new Map(sent.map((m) => [m.mid, m]));
      let gap = false;
      // Read at once, changed in memory, written once each (docs/pwa.md: every await costs).
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
        // mid_reused: nothing applied; the entry is numbered again below.
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
      for (const [key, rec] of recs) {
        if (removed.has(key)) writes.push(t.del('records', key));
        else if (rec) writes.push(t.put('records', { ...rec, sending: false }));
      }
      await Promise.all(writes);
      if (answer.last_mid != null) await t.put('meta', { k: 'server_last_mid', v: answer.last_mid });
      // A gap (server behind) or a reused mid (ahead): the queue is numbered from last_mid + 1.
      const own = (gap || counts.reused) && answer.last_mid != null ? { base: answer.last_mid, all: true } : null;
      counts.renumbered = await this._settle(t, own);
      return counts;
    });
  }

  // Sign-in in ONE transaction: token, device, user, the queue fitted to `last_mid`
  // (docs/sync-protocol.md, "Sign-in and devices"). Returns {deferred, renumbered}.
  signedIn({ token, device_id: deviceId, user, last_mid: lastMid = 0 }) {
    return this.tx(['outbox', 'records', 'meta'], 'readwrite', async (t) => {
      const prev = (await t.get('meta', 'device_id'))?.v ?? null;
      const sameDevice = prev === deviceId;
      // Another cadre on this phone: index my changes.
      if ((await t.get('meta', 'user'))?.v?.id !== user?.id) {
        t.user = user ?? null;
        await Promise.all((await t.all('records', ofEntity('visit'))).map((r) => t.put('records', r)));
        t.user = undefined;
      }
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

  // End of a flight: renumber as held back and as the answer asks (`own`).
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

  // Number the queue after `base` in order (`all`; else the never sent, if the server
  // used the first one's mid; `forget`: none counts as sent). Returns how many moved.
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
    return this.tx(['records', 'outbox', 'meta'], 'readwrite', async (t) => {
      t.user = (await t.get('meta', 'user'))?.v ?? null;
      const lastMid = page.last_mid ?? 0;
      if (page.reset) {
        // Drop the copy of server records, never the outbox or unsent work.
        for (const rec of await t.all('records')) {
          if (!rec.pending?.length && !rec.error) await t.del('records', rec.key);
        }
      }
      // Read at once, pending edits laid over in memory, each record written once.
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
    return this.tx(['drafts'], 'readwrite', (t) => t.put('drafts', { ...draft, saved_at: this.now() }));
  }

  getDraft(id) {
    return this.tx(['drafts'], 'readonly', (t) => t.get('drafts', id));
  }

  listDrafts() {
    return this.tx(['drafts'], 'readonly', (t) => t.all('drafts'));
  }

  delDraft(id) {
    return this.tx(['drafts'], 'readwrite', (t) => t.del('drafts', id));
  }

  // ---- last resort: export and import of unsent work (the records the server has not confirmed)
  async exportUnsent() {
    const all = await this.tx(['records'], 'readonly', (t) => t.all('records'));
    const records = all
      .filter((r) => r.pending?.length || r.error || !r.known)
      .map((r) => ({ entity: r.entity, id: r.id, deleted: !!r.deleted, data: r.data }));
    return { format: 'fieldvisit-unsent', format_version: 1, exported_at: this.now(), records };
  }

  // Queue an export file's records as creates with their ids (no duplicates: a create of
  // an existing id is an update), parents first.
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
    return this.tx(['records', 'outbox', 'meta', 'drafts'], 'readwrite', async (t) => {
      for (const ch of changes) {
        const key = rkey(ch.entity, ch.id);
        const rec = await t.get('records', key);
        if (rec && !ch.del) await t.put('records', { ...rec, known: false });
      }
    }).then(() => this.save(changes.map(({ fresh, ...c }) => c)));
  }
}
