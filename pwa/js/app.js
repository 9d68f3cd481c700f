// The field app: starts the screens, the sync triggers and the service worker.

import { getLang, setLang, setReference } from './i18n.js';
import { setInitialsTable } from './search.js';
import { bc, engine, S, store } from './ui.js';
import { checkStorage, refreshReference, refreshStatus, syncNow } from './status.js';
import { render, renderChrome } from './router.js';
import { flushDraft } from './form.js';
import { registerSW } from './updates.js';
import { startPhotos } from './photos.js';

async function start() {
  setLang(getLang());
  renderChrome();
  // A page killed mid-sync leaves records marked "sending": nothing is in flight now.
  await store.clearSending().catch(() => {});
  S.user = await store.getMeta('user');
  S.ref = await store.getMeta('reference');
  if (S.ref) { setReference(S.ref); setInitialsTable(S.ref.initials_table); }
  engine.on(() => { refreshStatus(); if (['home', 'entries', 'problems'].includes(S.route) && !engine.status.running) render(); });
  startPhotos(refreshStatus); // photos go up after each good sync round
  window.addEventListener('hashchange', render);
  window.addEventListener('online', () => { refreshStatus(); syncNow('online'); });
  window.addEventListener('offline', refreshStatus);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') { syncNow('visible'); S.swReg?.update().catch(() => {}); } else flushDraft();
  });
  window.addEventListener('pagehide', flushDraft);
  bc?.addEventListener('message', () => { refreshStatus(); if (S.route !== 'visit') render(); });
  await render();
  // The app starts whatever the service worker does: a failed registration only costs
  // the offline shell, never the screens or the sync.
  const within = (promise, ms) => Promise.race([promise, new Promise((resolve) => setTimeout(resolve, ms))]);
  const updating = await within(registerSW().catch(() => null), 3000);
  // A new version takes over and reloads this page in a moment: sending now would only
  // be cut off. If it takes longer, carry on under the old version.
  if (updating) await within(updating, 5000);
  if (S.user) {
    checkStorage();
    syncNow('start');
    refreshReference().catch(() => {});
  }
  // The fallback for every browser without Background Sync: a regular check.
  setInterval(async () => {
    if (navigator.onLine && !engine.status.running && !engine.status.nextTry && (await store.outboxCount())) syncNow('interval');
  }, 60000);
  document.body.dataset.ready = '1';
}

start();
