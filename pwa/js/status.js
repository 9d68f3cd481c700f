// The sync bar, sync triggers, reference refresh and storage checks.

import { errorText, setReference, t } from './i18n.js';
import { setInitialsTable } from './search.js';
import { $, api, engine, fmtTime, h, S, store } from './ui.js';
import { render } from './router.js';
import { photosWaiting } from './uploads.js';

// ---------- sync status bar (always visible) ---------------------------------
export async function refreshStatus() {
  // Entries, not mutations: a visit saved with its enterprise and problems is one.
  // Read together (every render starts this).
  const [waiting, last, lastErr, ph, authNeeded] = await Promise.all([store.pendingEntries(), store.getMeta('last_sync'),
    store.getMeta('last_error'), photosWaiting(store), store.getMeta('auth_needed')]);
  S.waiting = waiting;
  let err = engine.status.error || lastErr;
  const online = navigator.onLine;
  // Being offline (or the network failing) is a state, not an error: neutral colours,
  // "离线 · N 条待发送"; red is kept for what needs someone to act.
  const netOnly = err && ['network', 'timeout'].includes(err.code);
  if (!online && netOnly) err = null;
  const bar = $('#syncbar');
  bar.className = `syncbar ${online ? 'on' : 'off'}${err && !netOnly && !engine.status.running ? ' serr' : ''}`;
  let msg = engine.status.running ? t('syncing') : S.waiting ? `${S.waiting} ${t('waiting')}` : t('all_sent');
  const photos = ph.count;
  let sub = `${t('last_sync')} ${fmtTime(last)}${photos ? ` · <span data-testid="photos-waiting">${t('ph_waiting', { n: photos })}</span>` : ''}`;
  if (err && !engine.status.running) {
    // The banner below says the long version of a sign-in problem.
    const code = err.code === 'device_revoked' ? 'device_revoked_short' : err.code;
    sub = `${netOnly ? '' : `${t('sync_error')}: `}${h(errorText(code))}${engine.status.nextTry ? ` · ${t('retry_at', { t: fmtTime(new Date(engine.status.nextTry).toISOString()) })}` : ''}`;
  }
  bar.innerHTML = `<span class="dot" aria-hidden="true"></span>
    <span class="st"><b data-testid="net">${online ? t('online') : t('offline')}</b> · <span data-testid="waiting">${h(msg)}</span><br><small data-testid="lastsync">${sub}</small></span>
    ${S.user ? `<button id="sendnow" class="btn small" ${engine.status.running ? 'disabled' : ''}>${t('send_now')}</button>` : ''}`;
  if (S.user) $('#sendnow').onclick = () => syncNow('button');
  const authCode = authNeeded || (engine.status.authNeeded ? engine.status.error?.code || 'auth_required' : null);
  $('#authbanner').hidden = !(authCode && S.route !== 'login');
  $('#authbanner').dataset.code = authCode || '';
  $('#authbanner').innerHTML = `${authCode === 'device_revoked' ? t('device_revoked') : t('signin_again')} <a href="#/login" class="btn small">${t('signin')}</a>`;
}

export async function syncNow(reason) {
  if (!(await store.getMeta('token'))) return;
  // navigator.onLine === false is reliable ("true" is not): wait for the online event.
  if (!navigator.onLine && reason !== 'button') return;
  const r = await engine.sync(reason);
  if (r?.ok) { refreshReference().catch(() => {}); }
  return r;
}

let refAt = 0;
export async function refreshReference(force = false) {
  if (!navigator.onLine || (!force && Date.now() - refAt < 10 * 60 * 1000)) return;
  refAt = Date.now();
  const [ref, prog] = await Promise.all([api('GET', '/api/reference'), api('GET', '/api/progress').catch(() => null)]);
  await store.setMeta('reference', ref);
  S.ref = ref;
  setReference(ref);
  setInitialsTable(ref.initials_table); // pinyin for enterprises made on this phone
  if (prog) await store.setMeta('progress', { ...prog, at: new Date().toISOString() });
  if (S.route === 'home') render();
}

// ---------- storage ------------------------------------------------------------
export async function checkStorage() {
  const st = { persisted: null, usage: null, quota: null };
  try {
    if (navigator.storage?.persisted) st.persisted = await navigator.storage.persisted();
    if (!st.persisted && navigator.storage?.persist) st.persisted = await navigator.storage.persist();
    if (navigator.storage?.estimate) Object.assign(st, await navigator.storage.estimate());
  } catch { /* not available: stays unknown */ }
  st.nearlyFull = st.quota ? st.quota - st.usage < 50e6 || st.usage / st.quota > 0.9 : false;
  S.storage = st;
  const w = $('#storagebanner');
  w.hidden = !st.nearlyFull;
  w.innerHTML = `<p>${t('storage_full')}</p><a class="btn small" href="#/settings">${t('export')}</a>`;
  return st;
}

export function afterSave() {
  refreshStatus();
  // Chromium: the browser wakes the service worker to send, even after the tab is gone.
  S.swReg?.sync?.register('outbox').catch(() => {});
  if (navigator.onLine) setTimeout(() => syncNow('save'), 200);
}
