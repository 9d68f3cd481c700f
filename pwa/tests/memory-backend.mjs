// The memory backend of js/db.js for node's tests (a fake IndexedDB): the same
// interface and semantics, all-or-nothing commit, serialised transactions, INDEXES.
import { cmp, INDEXES, path, STORES } from '../js/db.js';

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
        all: async (s, q = {}) => {
          const rows = [...view(s).entries()].map(([k, v]) => [q.index ? path(v, INDEXES[q.index]) : k, k, v])
            .filter(([k]) => (typeof k === 'string' || typeof k === 'number') && (q.lo == null || cmp(k, q.lo) >= 0)
              && (q.hi == null || cmp(k, q.hi) <= 0))
            .sort((a, b) => cmp(a[0], b[0]) || cmp(a[1], b[1]));
          if (q.dir === 'prev') rows.reverse();
          return rows.slice(0, q.limit || undefined).map((r) => structuredClone(r[2]));
        },
        count: async (s, q = {}) => (await t.all(s, q)).length,
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
