// Shared by every screen: the store and sync engine, app state, small helpers, toasts, API calls.

import { IdbBackend } from './db.js';
import { Store } from './store.js';
import { HttpError, SyncEngine } from './sync.js';
import { clockWatch } from './uploads.js';
import { getLang, t } from './i18n.js';

const backend = new IdbBackend();
export const store = new Store(backend);
// Every sync answer also tells how far this phone's clock is off (photos record it).
export const engine = new SyncEngine({ store, fetch: clockWatch(globalThis.fetch.bind(globalThis), store) });
export const $ = (sel, el = document) => el.querySelector(sel);
export const main = () => $('#main');
export const h = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
export const bc = typeof BroadcastChannel !== 'undefined' ? new BroadcastChannel('fieldvisit') : null;

export const S = { user: null, ref: null, waiting: 0, storage: null, swReg: null, updateReady: false, route: '', form: null };
window.fieldvisit = { store, engine, backend, S }; // for tests and for support on a phone

// ---------- helpers ----------------------------------------------------------
const pad = (n) => String(n).padStart(2, '0');
export function localInput(d = new Date()) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
/** "2026-03-05T10:20" from <input type=datetime-local> → ISO with this phone's UTC offset. */
export function withOffset(local) {
  const d = new Date(local);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  return `${local.length === 16 ? `${local}:00` : local}${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}
export function fromIso(iso) { return iso ? localInput(new Date(iso)) : localInput(); }
export const fmtTime = (iso) => { if (!iso) return t('never'); const d = new Date(iso); return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`; };
export const fmtBytes = (b) => (b > 1e9 ? `${(b / 1e9).toFixed(1)} GB` : b > 1e6 ? `${Math.round(b / 1e6)} MB` : `${Math.ceil(b / 1e3)} KB`);
export function toast(msg) {
  const el = $('#toast');
  el.textContent = msg;
  el.hidden = false;
  clearTimeout(toast.h);
  toast.h = setTimeout(() => { el.hidden = true; }, 2500);
}

export async function api(method, path, body) {
  const token = await store.getMeta('token');
  const res = await fetch(path, {
    method, cache: 'no-store',
    // The server's messages follow the app's language (the app shows its own text per code).
    headers: { 'Content-Type': 'application/json', 'Accept-Language': getLang() === 'zh' ? 'zh-CN' : 'en', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new HttpError(res.status, json);
  return json;
}
