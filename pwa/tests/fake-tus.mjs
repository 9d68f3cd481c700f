// An in-memory tus 1.0.0 server (core + creation) that follows the upload rules of
// docs/sync-protocol.md, with connection cuts, for the unit tests of js/tus.js and
// js/uploads.js. A cut keeps what "arrived" before it, as a streaming server does.
import { createHash } from 'node:crypto';

const parseMeta = (h) => Object.fromEntries((h || '').split(',').filter(Boolean).map((pair) => {
  const [k, v = ''] = pair.trim().split(' ');
  return [k, Buffer.from(v, 'base64').toString('utf8')];
}));

export class FakeTus {
  constructor({ token = 'tok' } = {}) {
    this.token = token;
    this.uploads = new Map(); // id -> {length, meta, data: Buffer[], offset, done}
    this.stored = new Map(); // `${record_id}:${sha256}` -> Buffer (what the server keeps)
    this.synced = null; // a Set of record ids the server has, or null for "all"
    this.deleted = new Set(); // record ids deleted on the server
    this.dropped = 0; // body bytes a cut lost (sent, never written)
    this.received = 0; // body bytes appended, over all PATCHes (a byte sent twice counts twice)
    this.requests = [];
    this.cut = null; // {after: bytes of the next PATCH body that arrive before the cut, keep: bool}
    this.cutEvery = 0; // cut every n-th PATCH at half its body
    this.corruptNext = false; // flip a byte of the next PATCH body (a checksum mismatch)
    this.patches = 0;
    this.nextId = 1;
  }

  res(status, headers = {}, body = null) {
    const h = { 'Tus-Resumable': '1.0.0', ...headers };
    if (body) h['Content-Type'] = 'application/json';
    return new Response(body ? JSON.stringify(body) : null, { status, headers: h });
  }

  err(status, code) { return this.res(status, {}, { error: { code, message: code } }); }

  fetch = async (url, init = {}) => {
    const u = new URL(url, 'http://x');
    const hd = new Headers(init.headers || {});
    const method = init.method || 'GET';
    this.requests.push({ method, path: u.pathname, offset: hd.get('Upload-Offset'), size: init.body?.byteLength || 0 });
    if (hd.get('Authorization') !== `Bearer ${this.token}`) return this.err(401, 'auth_required');
    if (hd.get('Tus-Resumable') !== '1.0.0') return this.err(412, 'tus_version');
    if (method === 'POST' && u.pathname === '/api/uploads') {
      const length = Number(hd.get('Upload-Length'));
      const meta = parseMeta(hd.get('Upload-Metadata'));
      if (!Number.isSafeInteger(length) || length <= 0 || !/^[0-9a-f]{64}$/.test(meta.sha256 || '')) return this.err(400, 'invalid');
      if (this.synced && !this.synced.has(meta.record_id)) return this.err(409, 'record_not_synced');
    if (this.deleted.has(meta.record_id)) return this.err(409, 'record_deleted');
      const id = String(this.nextId++);
      const have = this.stored.get(`${meta.record_id}:${meta.sha256}`);
      this.uploads.set(id, { length, meta, data: [], offset: have ? length : 0, done: !!have });
      return this.res(201, { Location: `/api/uploads/${id}`, ...(have ? { 'Upload-Offset': String(length) } : {}) });
    }
    const m = u.pathname.match(/^\/api\/uploads\/(\d+)$/);
    const up = m && this.uploads.get(m[1]);
    if (!up) return this.err(404, 'not_found');
    if (method === 'HEAD') return this.res(200, { 'Upload-Offset': String(up.offset), 'Upload-Length': String(up.length), 'Cache-Control': 'no-store' });
    if (method !== 'PATCH') return this.err(405, 'method');
    if (hd.get('Content-Type') !== 'application/offset+octet-stream') return this.err(415, 'content_type');
    if (this.deleted.has(up.meta.record_id)) return this.err(409, 'record_deleted');
    if (Number(hd.get('Upload-Offset')) !== up.offset) return this.err(409, 'offset_mismatch');
    let body = Buffer.from(init.body);
    this.patches += 1;
    const cut = this.cut || (this.cutEvery && this.patches % this.cutEvery === 0 ? { after: body.length >> 1, keep: true } : null);
    if (cut) {
      this.cut = null;
      // What arrived before the cut is written (a streaming tus server keeps it), or not.
      const kept = cut.keep ? Math.min(cut.after, body.length) : 0;
      this.append(up, body.subarray(0, kept));
      this.dropped += body.length - kept;
      throw new TypeError('Failed to fetch (connection cut)');
    }
    if (this.corruptNext) { this.corruptNext = false; body = Buffer.from(body); body[0] ^= 0xff; }
    if (up.offset + body.length > up.length) return this.err(400, 'too_long');
    this.append(up, body);
    if (up.offset === up.length) {
      const all = Buffer.concat(up.data);
      const sum = createHash('sha256').update(all).digest('hex');
      if (sum !== up.meta.sha256) { this.uploads.delete(m[1]); return this.err(422, 'checksum_mismatch'); }
      up.done = true;
      this.stored.set(`${up.meta.record_id}:${up.meta.sha256}`, all);
    }
    return this.res(204, { 'Upload-Offset': String(up.offset) });
  };

  append(up, chunk) {
    up.data.push(Buffer.from(chunk));
    up.offset += chunk.length;
    this.received += chunk.length;
  }
}
