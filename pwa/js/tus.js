// A small tus 1.0.0 client (core + creation), enough for photos from a phone on a weak
// link: create, resume from the server's offset, send in chunks the server confirms.
// No storage and no timers: the caller keeps {url, offset} (onState) and retries later.
// tus-js-client was not vendored: its browser build is a UMD bundle of ~50 KB (a third
// of the app shell's budget) with fingerprinting, storage and retry layers this app
// already has in IndexedDB and its own backoff.

export const TUS = '1.0.0';

export class UploadError extends Error {
  /** code: network | record_not_synced | checksum_mismatch | gone | http_<status> | the server's code */
  constructor(code, status = 0, message = code) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

const b64 = (s) => {
  let bin = '';
  for (const byte of new TextEncoder().encode(s)) bin += String.fromCharCode(byte);
  return btoa(bin);
};

/** tus Upload-Metadata: comma-separated `key base64(value)`; empty values are left out. */
export function encodeMetadata(meta) {
  return Object.entries(meta)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k} ${b64(String(v))}`)
    .join(',');
}

async function codeOf(res) {
  try {
    const j = await res.json();
    return j?.error?.code || j?.code || null;
  } catch { return null; }
}

/**
 * Upload `bytes` (Uint8Array) to a tus server. Resumes at `state.url` when given (HEAD
 * first: the server's offset rules). Returns {url, offset, sent, restarts}. Throws
 * UploadError; what was confirmed was already reported through onState.
 *   fetch, endpoint (creation URL), headers (e.g. Authorization), metadata (object),
 *   chunkSize, onState({url, offset}) (awaited: persist it), onProgress(offset, total),
 *   beforeChunk() (awaited: lets records go first), signal, maxRestarts
 */
export async function tusUpload({ fetch, endpoint, headers = {}, bytes, metadata = {}, chunkSize = 64 * 1024,
  state = {}, onState = async () => {}, onProgress = () => {}, beforeChunk = async () => {}, signal, maxRestarts = 2,
  timeoutMs = 60000 }) {
  const total = bytes.byteLength;
  const base = { ...headers, 'Tus-Resumable': TUS };
  let url = state.url || null;
  let offset = null; // unknown until the server says: a resumed upload asks it first
  let restarts = 0;
  let sent = 0; // body bytes handed to fetch, for the caller's accounting
  let mismatches = 0;
  const call = async (u, init) => {
    // Each request has its own time limit: a link that stalls mid-chunk is given up
    // and resumed from the server's offset, never waited on for ever.
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const stop = () => ctl.abort();
    signal?.addEventListener('abort', stop);
    try {
      return await fetch(u, { ...init, signal: ctl.signal, cache: 'no-store' });
    } catch (err) {
      throw new UploadError(signal?.aborted ? 'aborted' : err?.name === 'AbortError' ? 'timeout' : 'network', 0, err?.message || 'network');
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
    }
  };
  const restart = (code) => {
    restarts += 1;
    if (restarts > maxRestarts) throw new UploadError(code, 0, `${code}: gave up after ${maxRestarts} restarts`);
    url = null;
    offset = null;
  };
  const readOffset = (res) => {
    const n = Number(res.headers.get('Upload-Offset'));
    return Number.isSafeInteger(n) && n >= 0 && n <= total ? n : null;
  };
  for (let step = 0; step < 100000; step++) {
    if (!url) {
      const res = await call(endpoint, {
        method: 'POST',
        headers: { ...base, 'Upload-Length': String(total), 'Upload-Metadata': encodeMetadata(metadata) },
      });
      if (res.status !== 201 && res.status !== 200) throw await failure(res);
      const loc = res.headers.get('Location');
      if (!loc) throw new UploadError('no_location', res.status);
      url = new URL(loc, new URL(endpoint, globalThis.location?.href || 'http://localhost/')).href;
      // The server already holds this content for the record: nothing to send.
      offset = readOffset(res) ?? 0;
      await onState({ url, offset });
    } else if (offset === null) {
      const res = await call(url, { method: 'HEAD', headers: base });
      if (res.status === 404 || res.status === 410) { restart('gone'); continue; }
      if (!res.ok) throw await failure(res);
      offset = readOffset(res);
      if (offset === null) throw new UploadError('bad_offset', res.status);
      await onState({ url, offset });
    }
    onProgress(offset, total);
    if (offset >= total) return { url, offset, sent, restarts };
    await beforeChunk();
    const body = bytes.subarray(offset, Math.min(total, offset + chunkSize));
    sent += body.byteLength;
    const res = await call(url, {
      method: 'PATCH',
      headers: { ...base, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) },
      // A copy: some fetch implementations send a view's whole buffer.
      body: body.slice(),
    });
    if (res.status === 204 || res.status === 200) {
      mismatches = 0;
      const next = readOffset(res);
      // An offset that did not move forward is not believed: ask the server.
      offset = next !== null && next > offset ? next : null;
      if (offset !== null) await onState({ url, offset });
      continue;
    }
    const code = res.status >= 400 ? await codeOf(res) : null;
    if (res.status === 409 && (!code || code === 'offset_mismatch')) {
      // The server's offset rules: ask it (a few times in a row at most, then later).
      if (++mismatches > 5) throw new UploadError('offset_mismatch', 409);
      offset = null;
      continue;
    }
    if (res.status === 409) throw new UploadError(code, 409); // record_not_synced, record_deleted
    if (res.status === 422 || code === 'checksum_mismatch') { restart('checksum_mismatch'); continue; }
    if (res.status === 404 || res.status === 410) { restart('gone'); continue; }
    throw new UploadError(code || `http_${res.status}`, res.status);
  }
  throw new UploadError('stalled');
}

async function failure(res) {
  const code = await codeOf(res);
  return new UploadError(code || `http_${res.status}`, res.status);
}
