// Atomic multi-store transactions on IndexedDB (node's tests: pwa/tests/memory-backend.mjs):
//   backend.tx(stores, mode, async (t) => { t.get(s, k); t.put(s, v); t.del(s, k); t.all(s, q); t.count(s, q) })
// q: {index, lo, hi, dir: 'prev', limit}: lo..hi (inclusive) of the key or an index.
// Await only t.* inside: IndexedDB commits once no request is pending (no fetch, no timer).

export const STORES = {
  records: 'key', // `${entity}:${id}` -> local copy of a record
  outbox: 'mid', // pending mutations, in the sync protocol's format
  drafts: 'id', // unsaved forms, autosaved while typing
  meta: 'k', // device, auth, cursor, counters, reference data
  photos: 'id', // photo and signature metadata, upload state and thumbnail (issue 18)
  photo_data: 'id', // the photo's bytes until the server has them all, then dropped
};
// Indexes of `records` (docs/pwa.md, "Indexes"); Store derives my and st at every write.
export const INDEXES = { my: 'my', st: 'st', kid: 'data.visit_id', cl: 'created_local' };
// 2: photos and photo_data. 3: INDEXES. Upgrades only add: an install with queued entries
// keeps every row (tests/pwa/test_photos.py opens a version-1 database with data).
const DB_VERSION = 3;
export const path = (v, p) => p.split('.').reduce((o, k) => o?.[k], v);
const range = ({ lo, hi }) => (lo == null && hi == null ? null : lo == null ? IDBKeyRange.upperBound(hi)
  : hi == null ? IDBKeyRange.lowerBound(lo) : IDBKeyRange.bound(lo, hi));
export const cmp = (a, b) => (typeof a !== typeof b ? (typeof a === 'number' ? -1 : 1) : a < b ? -1 : a > b ? 1 : 0);

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
      req.onupgradeneeded = (ev) => {
        const db = req.result;
        for (const [store, keyPath] of Object.entries(STORES)) {
          if (!db.objectStoreNames.contains(store)) db.createObjectStore(store, { keyPath });
        }
        const rs = req.transaction.objectStore('records');
        const fresh = Object.keys(INDEXES).filter((n) => !rs.indexNames.contains(n));
        for (const n of fresh) rs.createIndex(n, INDEXES[n]);
        // Stored records get their indexed fields in place, in this transaction.
        if (fresh.length && ev.oldVersion && this.derive) {
          req.transaction.objectStore('meta').get('user').onsuccess = (e) => {
            const user = e.target.result?.v ?? null;
            rs.openCursor().onsuccess = (c) => {
              const cur = c.target.result;
              if (cur) { cur.update(this.derive(cur.value, user)); cur.continue(); }
            };
          };
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
      all: (s, q = {}) => {
        const src = q.index ? trans.objectStore(s).index(q.index) : trans.objectStore(s);
        if (q.dir !== 'prev') return reqP(src.getAll(range(q), q.limit || undefined));
        // Newest first: getAll's direction (Chromium 141+), else a cursor (a request a row).
        if (src.getAllRecords) return reqP(src.getAll({ query: range(q), count: q.limit, direction: 'prev' }));
        return new Promise((resolve, reject) => {
          const out = [];
          const req = src.openCursor(range(q), 'prev');
          req.onerror = () => reject(req.error);
          req.onsuccess = () => {
            const c = req.result;
            if (c && !(out.length >= q.limit)) { out.push(c.value); c.continue(); } else resolve(out);
          };
        });
      },
      count: (s, q = {}) => reqP((q.index ? trans.objectStore(s).index(q.index) : trans.objectStore(s)).count(range(q))),
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
