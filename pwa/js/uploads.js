// Photos after the records: the photos and signatures kept on this phone (IndexedDB
// `photos`: metadata, state, thumbnail; `photo_data`: the bytes until uploaded) and the
// uploader that sends them with tus (js/tus.js) once their record is on the server.
// Records never wait for photos: a photo starts only after a successful sync round, and
// between chunks it waits while the records sync. Runs in the page and in the worker.

import { tusUpload, UploadError } from './tus.js';
import { backoffDelay } from './outbox.js';

export const PHOTO_DEFAULTS = { max_edge: 1600, target_kb: 250, chunk_kb: 64, parallel: 2 };

export async function photoSettings(store) {
  return { ...PHOTO_DEFAULTS, ...((await store.getMeta('photo_settings')) || {}) };
}

const byAge = (a, b) => String(a.created_local).localeCompare(String(b.created_local)) || String(a.id).localeCompare(String(b.id));

export async function photoList(store) {
  return (await store.b.tx(['photos'], 'readonly', (t) => t.all('photos'))).sort(byAge);
}

/** The photos of these records (ids), oldest first. */
export async function photosOf(store, ids) {
  const want = new Set(ids);
  return (await photoList(store)).filter((p) => want.has(p.record_id));
}

export function photoBytes(store, id) {
  return store.b.tx(['photo_data'], 'readonly', async (t) => (await t.get('photo_data', id))?.bytes || null);
}

export function patchPhoto(store, id, patch) {
  return store.b.tx(['photos'], 'readwrite', async (t) => {
    const p = await t.get('photos', id);
    if (p) await t.put('photos', { ...p, ...patch });
  });
}

/** The server has every byte: keep the metadata and thumbnail, drop the photo itself. */
export function photoUploaded(store, id, patch) {
  return store.b.tx(['photos', 'photo_data'], 'readwrite', async (t) => {
    const p = await t.get('photos', id);
    if (p) await t.put('photos', { ...p, ...patch, state: 'uploaded', offset: p.size });
    await t.del('photo_data', id);
  });
}

export function dropPhoto(store, id) {
  return store.b.tx(['photos', 'photo_data'], 'readwrite', async (t) => { await t.del('photos', id); await t.del('photo_data', id); });
}

/** Photos not on the server yet: how many and their bytes (what the phone still holds). */
export async function photosWaiting(store) {
  const left = (await photoList(store)).filter((p) => p.state !== 'uploaded');
  return { count: left.length, bytes: left.reduce((n, p) => n + (p.size || 0), 0) };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A photo goes only once its record is on the server; a record refused or not yet sent holds it.
const recordReady = (rec) => rec && !rec.deleted && rec.known && !rec.pending?.length && !rec.error;

export class PhotoUploader {
  constructor({ store, fetch = (...a) => globalThis.fetch(...a), base = '', lock = defaultLock, isBusy = () => false,
    random = Math.random, setTimer = (f, ms) => setTimeout(f, ms), clearTimer = (x) => clearTimeout(x),
    now = () => new Date(), timeoutMs = 60000 } = {}) {
    Object.assign(this, { store, fetch, base, lock, isBusy, random, setTimer, clearTimer, now, timeoutMs });
    this.listeners = new Set();
    this.running = null;
    this.attempt = 0;
    this.timer = null;
    this.progress = new Map(); // id -> {state, offset, size}: what the screens show
    this.stats = { sent: 0, uploaded: 0, restarts: 0 };
  }

  on(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  emit(ev) {
    if (ev.id) this.progress.set(ev.id, ev);
    for (const fn of this.listeners) { try { fn(ev); } catch { /* a listener must not stop uploads */ } }
  }

  /** Start a run unless one is going. `retryFailed`: photos refused before get another go. */
  kick({ retryFailed = false, deadline = Infinity } = {}) {
    if (this.running) { this.again = true; return this.running; }
    if (this.timer) { this.clearTimer(this.timer); this.timer = null; }
    this.running = this.lock(() => this._drain({ retryFailed, deadline })).finally(() => {
      this.running = null;
      if (this.again) { this.again = false; this.kick({ deadline }); }
    });
    return this.running;
  }

  /** Every photo whose record is on the server, `parallel` at a time. Returns {ok, done, left, error}. */
  async _drain({ retryFailed, deadline }) {
    const token = await this.store.getMeta('token');
    if (!token) return { ok: false, done: 0, left: 0, error: 'auth_required' };
    const cfg = await photoSettings(this.store);
    const queue = [];
    for (const p of await photoList(this.store)) {
      if (p.state === 'uploaded' || (p.state === 'failed' && !retryFailed)) continue;
      const rec = await this.store.get(p.record_type, p.record_id);
      // Its record is gone from the phone (deleted, the tombstone applied): so is the photo.
      if (!rec) await dropPhoto(this.store, p.id);
      else if (recordReady(rec)) queue.push(p);
    }
    let done = 0;
    let stop = null; // the first error that ends the run (network, sign-in, server down)
    const worker = async () => {
      while (queue.length && !stop && Date.now() < deadline) {
        const p = queue.shift();
        try {
          await this._one(p, token, cfg);
          done += 1;
        } catch (err) {
          const e = err instanceof UploadError ? err : new UploadError('network', 0, err?.message);
          if (e.code === 'record_deleted') {
            // Deleted on the server (by someone else): the photo has nothing to belong to.
            await dropPhoto(this.store, p.id);
            this.emit({ id: p.id, state: 'dropped', size: p.size });
          } else if (e.code === 'record_not_synced') {
            // The server has not got the record yet: it goes after the next sync round.
            await patchPhoto(this.store, p.id, { state: 'pending', error: null });
            this.emit({ id: p.id, state: 'pending', offset: 0, size: p.size });
          } else if (e.status >= 400 && e.status < 500 && ![401, 403, 408, 429].includes(e.status)) {
            // Refused for good (too large, bad metadata): shown, tried again on 立即发送.
            await patchPhoto(this.store, p.id, { state: 'failed', error: e.code });
            this.emit({ id: p.id, state: 'failed', code: e.code, size: p.size });
          } else {
            stop = e;
            this.emit({ id: p.id, state: 'pending', offset: this.progress.get(p.id)?.offset || 0, size: p.size });
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, cfg.parallel) }, worker));
    const left = queue.length;
    if (stop) {
      this.stats.lastError = stop.code;
      this.emit({ error: stop.code });
      // The network or the server: try again later; signed out: the sign-in restarts it.
      if (![401, 403].includes(stop.status)) this.schedule();
      return { ok: false, done, left, error: stop.code };
    }
    this.attempt = 0;
    this.emit({ idle: true });
    return { ok: true, done, left, error: null };
  }

  async _one(p, token, cfg) {
    const raw = await photoBytes(this.store, p.id);
    if (!raw) { await photoUploaded(this.store, p.id, {}); return; }
    const bytes = new Uint8Array(raw);
    this.emit({ id: p.id, state: 'uploading', offset: p.offset || 0, size: bytes.byteLength });
    const r = await tusUpload({
      fetch: this.fetch,
      endpoint: `${this.base}/api/uploads`,
      headers: { Authorization: `Bearer ${token}` },
      bytes,
      chunkSize: Math.max(4, cfg.chunk_kb) * 1024,
      timeoutMs: this.timeoutMs,
      state: { url: p.upload_url || null },
      metadata: {
        sha256: p.sha256, record_type: p.record_type, record_id: p.record_id, kind: p.kind, mime: p.mime,
        captured_at: p.captured_at, device_time: p.device_time || p.captured_at, lat: p.lat, lng: p.lng, accuracy: p.accuracy,
      },
      onState: ({ url, offset }) => {
        this.attempt = 0; // the link carries bytes again: the next cut is retried soon
        return patchPhoto(this.store, p.id, { upload_url: url, offset, state: 'uploading' });
      },
      onProgress: (offset, size) => this.emit({ id: p.id, state: 'uploading', offset, size }),
      // Records first: a sync round started meanwhile (a new entry saved) goes before the next chunk.
      beforeChunk: async () => { while (this.isBusy()) await sleep(200); },
    });
    this.stats.sent += r.sent;
    this.stats.restarts += r.restarts;
    this.stats.uploaded += 1;
    await photoUploaded(this.store, p.id, { upload_url: r.url, uploaded_at: isoLocal(this.now()), error: null });
    this.emit({ id: p.id, state: 'uploaded', offset: bytes.byteLength, size: bytes.byteLength });
  }

  schedule() {
    if (this.timer) this.clearTimer(this.timer);
    // At most 2 minutes: a photo queue is long, and an idle link is what costs here.
    const ms = backoffDelay(this.attempt, { random: this.random, max: 120000 });
    this.attempt += 1;
    this.timer = this.setTimer(() => { this.timer = null; this.kick(); }, ms);
  }
}

/** A photo starts after the record sync that carried its entry: kick after each good round. */
export function uploadAfterSync(uploader, engine) {
  let was = engine.status.running;
  engine.on((s) => {
    // 立即发送 also gives photos refused before (failed) another go.
    if (was && !s.running && !s.error) uploader.kick({ retryFailed: s.reason === 'button' });
    was = s.running;
  });
}

/**
 * A fetch that learns how far the phone's clock is off from the server's `Date` header
 * (meta `clock_skew`, ms to add to the phone's clock). A photo taken offline later records
 * both the phone's own clock (`device_time`) and the corrected one (`captured_at`), so a
 * supervisor sees a phone set to the wrong day (docs/sync-protocol.md, Attachments).
 */
export function clockWatch(fetchImpl, store, { now = () => Date.now() } = {}) {
  let known = null;
  return async (...args) => {
    const t0 = now();
    const res = await fetchImpl(...args);
    const server = Date.parse(res?.headers?.get?.('Date') || '');
    if (Number.isFinite(server)) {
      const t1 = now();
      // Date has whole seconds: the middle of that second against the middle of the request.
      const skew = Math.round(server + 500 - (t0 + t1) / 2);
      if (known === null || Math.abs(skew - known) > 2000) {
        known = skew;
        await store.setMeta('clock_skew', { ms: skew, at: new Date(t1).toISOString() }).catch(() => {});
      }
    }
    return res;
  };
}

/** The phone's clock and the best estimate of the true time for a moment `ts` (ms). */
export async function captureTimes(store, ts) {
  const skew = (await store.getMeta('clock_skew'))?.ms || 0;
  // Within a few seconds is the measurement's own noise: the phone's clock is taken as right.
  return { device_time: isoLocal(new Date(ts)), captured_at: isoLocal(new Date(Math.abs(skew) < 5000 ? ts : ts + skew)) };
}

/** ISO 8601 with the phone's UTC offset (the phone's own clock, kept as data). */
export function isoLocal(d = new Date()) {
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const local = new Date(d.getTime() + off * 60000).toISOString().slice(0, 19);
  return `${local}${off >= 0 ? '+' : '-'}${pad(off / 60)}:${pad(off % 60)}`;
}

// One uploader at a time across the page and the service worker; the other just returns.
function defaultLock(fn) {
  const locks = globalThis.navigator?.locks;
  return locks ? locks.request('fieldvisit-photos', { ifAvailable: true }, (l) => (l ? fn() : { ok: false, busy: true })) : fn();
}
