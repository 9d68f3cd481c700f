// A small key-value store with atomic multi-store transactions.
// Two backends share one interface so the same store/sync logic runs in the
// browser (IndexedDB) and in node's test runner (memory):
//   backend.tx(storeNames, mode, async (t) => { await t.get(s, k); await t.put(s, v);
//                                              await t.del(s, k); await t.all(s, {limit}) })
// Inside a transaction only await t.* calls: IndexedDB commits as soon as no request
// is pending, so awaiting fetch() or a timer there would end the transaction.

export const STORES = {
  records: 'key', // `${entity}:${id}` -> local copy of a record
  outbox: 'mid', // pending mutations, in the sync protocol's format
  drafts: 'id', // unsaved forms, autosaved while typing
  meta: 'k', // device, auth, cursor, counters, reference data
  photos: 'id', // photo and signature metadata, upload state and thumbnail (issue 18)
  photo_data: 'id', // the photo's bytes until the server has them all, then dropped
};
// 2: photos and photo_data. Upgrades only add stores: an install with queued entries
// keeps every row (tests/pwa/test_photos.py opens a version-1 database with data).
const DB_VERSION = 2;

const reqP = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

/** IndexedDB backend that reopens itself when the browser closes the connection. */
export class IdbBackend {
  constructor(name = 'fieldvisit') {
    this.name = name;
    this.conn = null;
    this.reopens = 0;
  }

  open() {
    if (this.conn) return this.conn;
    this.conn = new Promise((resolve, reject) => {
      const req = this.anyVersion ? indexedDB.open(this.name) : indexedDB.open(this.name, DB_VERSION);
      // Only additive upgrades: an app update must never lose queued entries.
      req.onupgradeneeded = () => {
        const db = req.result;
        for (const [store, keyPath] of Object.entries(STORES)) {
          if (!db.objectStoreNames.contains(store)) db.createObjectStore(store, { keyPath });
        }
      };
      req.onsuccess = () => {
        const db = req.result;
        // Closed by the browser (memory pressure, storage cleared) or by a newer
        // version of the app in another tab: forget it, the next call reopens.
        db.onclose = () => { if (this.conn) this.conn = null; };
        db.onversionchange = () => { db.close(); this.conn = null; };
        resolve(db);
      };
      req.onerror = () => {
        this.conn = null;
        // An older copy of the app (a tab left open across an update) meets a newer
        // database: open whatever version is there rather than fail every save.
        if (req.error?.name === 'VersionError' && !this.anyVersion) { this.anyVersion = true; resolve(this.open()); return; }
        reject(req.error);
      };
      req.onblocked = () => {}; // another tab holds the old version; it closes on versionchange
    });
    return this.conn;
  }

  async tx(names, mode, fn, retry = true) {
    let db;
    let trans;
    try {
      db = await this.open();
      trans = db.transaction(names, mode);
    } catch (err) {
      // InvalidStateError: the connection was closing. Reopen once and retry.
      this.conn = null;
      if (retry) { this.reopens++; return this.tx(names, mode, fn, false); }
      throw err;
    }
    const done = new Promise((resolve, reject) => {
      trans.oncomplete = resolve;
      trans.onabort = () => reject(trans.error || new DOMException('aborted', 'AbortError'));
      trans.onerror = () => {};
    });
    const t = {
      get: (s, k) => reqP(trans.objectStore(s).get(k)),
      put: (s, v) => reqP(trans.objectStore(s).put(v)),
      del: (s, k) => reqP(trans.objectStore(s).delete(k)),
      all: (s, opts = {}) => reqP(trans.objectStore(s).getAll(null, opts.limit || undefined)),
      count: (s) => reqP(trans.objectStore(s).count()),
    };
    let result;
    try {
      result = await fn(t);
    } catch (err) {
      try { trans.abort(); } catch { /* already finished */ }
      await done.catch(() => {});
      throw err;
    }
    await done;
    return result;
  }
}

/** Memory backend for tests: same semantics, all-or-nothing commit, serialised. */
export class MemoryBackend {
  constructor() {
    this.data = Object.fromEntries(Object.keys(STORES).map((s) => [s, new Map()]));
    this.queue = Promise.resolve();
    this.failNext = null; // tests set an Error to make the next commit fail
  }

  tx(names, mode, fn) {
    const run = async () => {
      const log = new Map();
      const key = (s, v) => v[STORES[s]];
      const view = (s) => {
        const m = new Map(this.data[s]);
        for (const [[st, k], v] of log) if (st === s) (v === undefined ? m.delete(k) : m.set(k, v));
        return m;
      };
      const find = (s, k) => {
        for (const [[st, kk], v] of log) if (st === s && kk === k) return { hit: true, v };
        return { hit: false };
      };
      const entries = new Map(); // composite keys need identity: index them by string
      const lk = (s, k) => {
        const id = `${s}\u0000${k}`;
        if (!entries.has(id)) entries.set(id, [s, k]);
        return entries.get(id);
      };
      const t = {
        get: async (s, k) => {
          const f = find(s, k);
          const v = f.hit ? f.v : this.data[s].get(k);
          return v === undefined ? undefined : structuredClone(v);
        },
        put: async (s, v) => {
          if (mode !== 'readwrite') throw new Error('read-only transaction');
          log.set(lk(s, key(s, v)), structuredClone(v));
        },
        del: async (s, k) => {
          if (mode !== 'readwrite') throw new Error('read-only transaction');
          log.set(lk(s, k), undefined);
        },
        all: async (s, opts = {}) => {
          const vals = [...view(s).entries()]
            .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
            .map((e) => structuredClone(e[1]));
          return opts.limit ? vals.slice(0, opts.limit) : vals;
        },
        count: async (s) => view(s).size,
      };
      const result = await fn(t);
      if (this.failNext) { const e = this.failNext; this.failNext = null; throw e; }
      for (const [[s, k], v] of log) (v === undefined ? this.data[s].delete(k) : this.data[s].set(k, v));
      return result;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }
}
