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
    this.fps = new Map(); // `${device}:${mid}` -> fingerprint of the change applied under it
    this.tokenDevice = new Map(); // token -> device id (tokens made by login())
    this.revoked = new Set();
    this.hold = null; // a promise: push requests wait for it after the server applied them
    this.reject = (m) => (m.fields && m.fields.notes === 'BAD' ? { code: 'invalid', field: 'notes', message: 'bad notes' } : null);
  }

  fetch = async (url, init = {}) => {
    const u = new URL(url, 'http://x');
    const tok = (init.headers?.Authorization || '').replace(/^Bearer /, '');
    if (this.revoked.has(this.tokenDevice.get(tok))) return this.json(401, { error: { code: 'device_revoked', message: 'revoked' } });
    if (tok !== this.token && !this.tokenDevice.has(tok)) return this.json(401, { error: { code: 'token_expired', message: 'expired' } });
    const fail = this.failNext;
    if (fail === 'network') { this.failNext = null; throw new TypeError('Failed to fetch'); }
    if (typeof fail === 'number') { this.failNext = null; return this.json(fail, { error: { code: 'unavailable', message: 'down' } }); }
    if (u.pathname === '/api/sync/push') {
      let raw = init.body;
      if (init.headers['Content-Encoding'] === 'gzip') raw = gunzipSync(Buffer.from(raw)).toString('utf8');
      const body = JSON.parse(raw);
      this.pushes.push(body);
      const out = this.push(body);
      if (this.hold) await this.hold;
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
      const fp = JSON.stringify([m.entity, m.id, m.op, m.fields || {}]);
      const had = this.fps.get(`${device_id}:${m.mid}`);
      if (m.mid <= last && had && had !== fp) {
        results.push({ mid: m.mid, status: 'rejected', code: 'mid_reused', message: 'mid used for another change' });
        continue;
      }
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
      this.fps.set(`${device_id}:${m.mid}`, fp);
      this.applied = [...(this.applied || []), { device_id, mid: m.mid, id: m.id, op: m.op }];
      this.results.set(`${device_id}:${m.mid}`, r);
      results.push(r);
    }
    this.lastMid.set(device_id, last);
    this.currentDevice = device_id;
    return { protocol: 1, last_mid: last, server_version: this.version, results };
  }

  /** Sign-in: the same device (unless revoked: 403) or a new one, with its last_mid. */
  login({ device_id } = {}) {
    if (device_id && this.revoked.has(device_id)) return { status: 403, error: { code: 'device_revoked' } };
    const dev = device_id || `dddddddd-dddd-4ddd-8ddd-${String(this.tokenDevice.size + 1).padStart(12, '0')}`;
    const token = `tok-${this.tokenDevice.size + 1}`;
    this.tokenDevice.set(token, dev);
    return { token, device_id: dev, last_mid: this.lastMid.get(dev) || 0, user: { id: 1, username: 'demo' } };
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
