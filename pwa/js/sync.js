// The sync engine: drains the outbox in small gzip batches, then pulls the cadre's
// scope. The same code runs in the page (timers, online, visibility, "send now") and
// in the service worker (Background Sync, where the browser has it).

import { backoffDelay, nextBatchSize } from './outbox.js';

export const PROTOCOL = 1;
const AUTH_CODES = new Set(['auth_required', 'token_expired', 'device_revoked', 'device_mismatch']);

export class HttpError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code || `http_${status}`;
    this.body = body;
  }
}

/** gzip a string with CompressionStream when the browser has it. */
export async function gzip(text) {
  if (typeof CompressionStream === 'undefined') return null;
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export class SyncEngine {
  /**
   * @param {object} o
   * @param {import('./store.js').Store} o.store
   * @param {Function} [o.fetch] fetch implementation
   * @param {string} [o.base] URL prefix of the API
   */
  constructor({ store, fetch = globalThis.fetch.bind(globalThis), base = '', random = Math.random,
    setTimer = (f, ms) => setTimeout(f, ms), clearTimer = (h) => clearTimeout(h),
    lock = defaultLock, timeoutMs = 60000, compress = true, appVersion = globalThis.FV_VERSION ?? null,
    storage = globalThis.navigator?.storage } = {}) {
    Object.assign(this, { store, fetch, base, random, setTimer, clearTimer, lock, timeoutMs, compress,
      appVersion, storage });
    this.batchSize = 100; // doubles to 200 while pushes succeed: 500 entries in 3 requests
    this.attempt = 0;
    this.timer = null;
    this.running = null;
    this.listeners = new Set();
    this.status = { running: false, error: null, lastSync: null, authNeeded: false, outdated: false, nextTry: null };
  }

  on(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  emit(patch) {
    Object.assign(this.status, patch);
    for (const fn of this.listeners) { try { fn(this.status); } catch { /* a listener must not stop sync */ } }
  }

  /**
   * What the phone says about itself with every push and pull (docs/sync-protocol.md,
   * "Device state"): entries waiting, the oldest one's age, the last error's code, the
   * app's version and storage. Never the content of an entry; never fails the sync.
   */
  async deviceState({ pushedOk = false } = {}) {
    const state = {};
    try {
      Object.assign(state, await this.store.waiting());
      // The pull after a push that went through reports the error of the last round as
      // over; the push itself still reports it (the server learns what went wrong).
      const err = pushedOk ? null : await this.store.getMeta('last_error');
      const code = err?.code ? String(err.code).toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 40) : null;
      state.last_error = code;
      if (this.appVersion) state.app_version = String(this.appVersion).replace(/[^0-9A-Za-z.+_-]/g, '').slice(0, 40) || undefined;
      if (this.storage?.estimate) {
        const est = await this.storage.estimate();
        if (Number.isSafeInteger(est?.usage)) state.storage_used = est.usage;
        if (Number.isSafeInteger(est?.quota)) state.storage_quota = est.quota;
      }
      if (this.storage?.persisted) state.persisted = Boolean(await this.storage.persisted());
    } catch { /* a report is a courtesy: whatever failed is left out */ }
    return state;
  }

  async request(method, path, { body, gz, headers: extra } = {}) {
    const token = await this.store.getMeta('token');
    if (!token) throw new HttpError(401, { error: { code: 'auth_required', message: 'not signed in' } });
    const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json', ...(extra || {}) };
    let payload;
    if (body !== undefined) {
      const text = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
      const packed = gz && this.compress ? await gzip(text) : null;
      if (packed) { headers['Content-Encoding'] = 'gzip'; payload = packed; } else payload = text;
    }
    const ctl = typeof AbortController !== 'undefined' ? new AbortController() : null;
    const timer = ctl ? setTimeout(() => ctl.abort(), this.timeoutMs) : null;
    let res;
    try {
      res = await this.fetch(this.base + path, { method, headers, body: payload, signal: ctl?.signal, cache: 'no-store' });
    } finally {
      if (timer) clearTimeout(timer);
    }
    const json = await res.json().catch(() => null);
    if (!res.ok) throw new HttpError(res.status, json);
    return json;
  }

  /** One full round (push everything, then pull); concurrent calls share one run. */
  sync(reason = 'manual') {
    if (this.running) { this.again = true; return this.running; }
    this.running = this.lock(() => this._round(reason)).finally(() => {
      this.running = null;
      if (this.again) { this.again = false; this.sync('again'); }
    });
    return this.running;
  }

  async _round(reason) {
    this.clearSchedule();
    this.emit({ running: true, reason });
    try {
      const pushed = await this.pushAll();
      const pulled = await this.pullAll();
      this.attempt = 0;
      const at = new Date().toISOString();
      await this.store.setMeta('last_sync', at);
      await this.store.setMeta('last_error', null);
      this.emit({ running: false, error: null, lastSync: at, authNeeded: false });
      return { ok: true, pushed, pulled };
    } catch (err) {
      // This engine holds the sync lock: its push, if any, is over.
      await this.store.clearSending({ landed: true }).catch(() => {});
      const code = err.code || (err.name === 'AbortError' ? 'timeout' : 'network');
      const auth = err.status === 401 || err.status === 403 || AUTH_CODES.has(code);
      const outdated = err.status === 426;
      const error = { code, message: err.message, status: err.status || 0, at: new Date().toISOString() };
      await this.store.setMeta('last_error', error).catch(() => {});
      if (auth) await this.store.setMeta('auth_needed', code).catch(() => {});
      // A revoked device is never signed in again: the next sign-in asks for a new one.
      if (code === 'device_revoked') {
        const dev = await this.store.getMeta('device_id').catch(() => null);
        if (dev) await this.store.setMeta('revoked_device', dev).catch(() => {});
      }
      this.emit({ running: false, error, authNeeded: auth, outdated });
      // Signed out or outdated: waiting will not help, the person has to act.
      if (!auth && !outdated) this.schedule();
      return { ok: false, error };
    }
  }

  async pushAll() {
    let total = 0;
    for (let round = 0; round < 1000; round++) {
      const deviceId = await this.store.getMeta('device_id');
      const batch = await this.store.nextBatch({ maxCount: this.batchSize, maxBytes: 256 * 1024 }, deviceId);
      if (!batch.length) break;
      let answer;
      try {
        const deviceState = await this.deviceState();
        answer = await this.request('POST', '/api/sync/push',
          { body: { protocol: PROTOCOL, device_id: deviceId, mutations: batch, device_state: deviceState }, gz: true });
      } catch (err) {
        if (err.status === 413 && this.batchSize > 1) { this.batchSize = Math.max(1, Math.floor(this.batchSize / 2)); continue; }
        if (!err.status) this.batchSize = nextBatchSize(this.batchSize, false);
        throw err;
      }
      const counts = await this.store.applyPush(batch, answer);
      total += batch.length;
      this.batchSize = nextBatchSize(this.batchSize, true);
      this.emit({});
      // A batch in which nothing moved (e.g. every mutation skipped) must not spin; a
      // renumbered queue (gap, mid_reused) goes again at once.
      if (counts.done + counts.rejected + counts.conflict === 0 && !counts.renumbered) {
        throw new HttpError(0, { error: { code: 'stalled', message: 'server accepted nothing' } });
      }
    }
    return total;
  }

  async pullAll() {
    let total = 0;
    const ask = (cursor, state) => this.request('GET', `/api/sync/pull?protocol=${PROTOCOL}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      state ? { headers: { 'X-Device-State': JSON.stringify(state) } } : {});
    let next = ask(await this.store.getMeta('cursor'), await this.deviceState({ pushedOk: true }));
    for (let page = 0; next && page < 10000; page++) {
      const answer = await next;
      // The next page comes while this one is written; a failed write drops its answer.
      next = answer.has_more ? ask(answer.cursor) : null;
      next?.catch(() => {});
      total += await this.store.applyPull(answer);
    }
    return total;
  }

  schedule() {
    this.clearSchedule();
    const ms = backoffDelay(this.attempt, { random: this.random });
    this.attempt += 1;
    this.emit({ nextTry: Date.now() + ms });
    this.timer = this.setTimer(() => { this.timer = null; this.sync('timer'); }, ms);
  }

  clearSchedule() {
    if (this.timer) { this.clearTimer(this.timer); this.timer = null; }
    this.status.nextTry = null;
  }
}

// Web Locks keep the page and the service worker from pushing the same batch at once.
function defaultLock(fn) {
  const locks = globalThis.navigator?.locks;
  return locks ? locks.request('fieldvisit-sync', fn) : fn();
}
