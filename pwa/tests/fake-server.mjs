// A small in-memory server that follows docs/sync-protocol.md, for unit tests.
import { gunzipSync } from 'node:zlib';

export class FakeServer {
  constructor() {
    this.version = 0;
    this.lastMid = new Map();
    this.results = new Map();
    this.rows = new Map(); // `${entity}:${id}` -> {entity,id,version,deleted,data}
    this.token = 'tok';
    this.failNext = null; // 'network' | 'after-commit' | number (HTTP status)
    this.pushes = [];
    this.reject = (m) => (m.fields && m.fields.notes === 'BAD' ? { code: 'invalid', field: 'notes', message: 'bad notes' } : null);
  }

  fetch = async (url, init = {}) => {
    const u = new URL(url, 'http://x');
    if ((init.headers?.Authorization || '') !== `Bearer ${this.token}`) return this.json(401, { error: { code: 'token_expired', message: 'expired' } });
    const fail = this.failNext;
    if (fail === 'network') { this.failNext = null; throw new TypeError('Failed to fetch'); }
    if (typeof fail === 'number') { this.failNext = null; return this.json(fail, { error: { code: 'unavailable', message: 'down' } }); }
    if (u.pathname === '/api/sync/push') {
      let raw = init.body;
      if (init.headers['Content-Encoding'] === 'gzip') raw = gunzipSync(Buffer.from(raw)).toString('utf8');
      const body = JSON.parse(raw);
      this.pushes.push(body);
      const out = this.push(body);
      if (fail === 'after-commit') { this.failNext = null; throw new TypeError('connection reset'); }
      return this.json(200, out);
    }
    if (u.pathname === '/api/sync/pull') return this.json(200, this.pull(u.searchParams));
    return this.json(404, { error: { code: 'not_found' } });
  };

  json(status, body) {
    return { ok: status < 400, status, json: async () => structuredClone(body) };
  }

  push({ device_id, mutations }) {
    let last = this.lastMid.get(device_id) || 0;
    const results = [];
    let gap = false;
    for (const m of mutations) {
      if (gap || m.mid > last + 1) { gap = true; results.push({ mid: m.mid, status: 'skipped', code: 'gap' }); continue; }
      if (m.mid <= last) { results.push({ mid: m.mid, status: 'duplicate', original: this.results.get(`${device_id}:${m.mid}`) }); continue; }
      const key = `${m.entity}:${m.id}`;
      const row = this.rows.get(key);
      let r;
      const bad = this.reject(m);
      if (bad) r = { mid: m.mid, status: 'rejected', ...bad };
      else if (m.op !== 'create' && (!row || row.deleted)) r = { mid: m.mid, status: 'rejected', code: row ? 'deleted' : 'not_found', message: 'x' };
      else {
        this.version += 1;
        const next = row || { entity: m.entity, id: m.id, data: {} };
        if (m.op === 'delete') next.deleted = true;
        else next.data = { ...next.data, ...m.fields };
        next.version = this.version;
        this.rows.set(key, next);
        r = { mid: m.mid, status: 'applied', version: this.version };
      }
      last = m.mid;
      this.results.set(`${device_id}:${m.mid}`, r);
      results.push(r);
    }
    this.lastMid.set(device_id, last);
    this.currentDevice = device_id;
    return { protocol: 1, last_mid: last, server_version: this.version, results };
  }

  pull(params) {
    const after = Number(params.get('cursor') || 0);
    const limit = Number(params.get('limit') || 1000);
    const rows = [...this.rows.values()].filter((r) => r.version > after).sort((a, b) => a.version - b.version);
    const page = rows.slice(0, limit);
    return {
      protocol: 1, reset: false, has_more: rows.length > limit,
      cursor: String(page.length ? page[page.length - 1].version : after),
      last_mid: this.lastMid.get(this.currentDevice) || 0,
      changes: page.map((r) => (r.deleted ? { entity: r.entity, id: r.id, version: r.version, deleted: true }
        : { entity: r.entity, id: r.id, version: r.version, deleted: false, data: { ...r.data } })),
    };
  }

  count(entity) {
    return [...this.rows.values()].filter((r) => r.entity === entity && !r.deleted).length;
  }
}
