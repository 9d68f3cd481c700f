// Service worker registration and the app update flow.

import { t } from './i18n.js';
import { $, S } from './ui.js';
import { flushDraft } from './form.js';

// ---------- service worker and updates ------------------------------------------------------
export function swVersion() {
  const sw = navigator.serviceWorker?.controller;
  if (!sw) return Promise.resolve('—');
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = (e) => resolve(e.data?.version || '—');
    sw.postMessage({ type: 'VERSION' }, [ch.port2]);
    setTimeout(() => resolve('—'), 1000);
  });
}

function showUpdate(reg) {
  S.updateReady = true;
  const b = $('#updatebanner');
  b.hidden = false;
  b.innerHTML = `${t('update_ready')} <button class="btn small" id="doupdate" data-testid="update">${t('update_now')}</button>`;
  $('#doupdate').onclick = async () => {
    await flushDraft(); // the draft is in IndexedDB before the page goes away
    (reg.waiting || reg.installing)?.postMessage({ type: 'SKIP_WAITING' });
  };
}

export async function registerSW() {
  if (!('serviceWorker' in navigator)) return;
  let reg;
  try {
    reg = await navigator.serviceWorker.register('/sw.js', { type: 'module', updateViaCache: 'none', scope: '/' });
  } catch (err) {
    console.warn('module service worker not registered:', err?.message);
    // Browsers without module service workers (and so without Background Sync) get the shell-only worker.
    try { reg = await navigator.serviceWorker.register('/sw-classic.js', { updateViaCache: 'none', scope: '/' }); } catch { return; }
  }
  if (!reg) return null; // registration refused (some embedded browsers, automation)
  S.swReg = reg;
  // A version that was already waiting when this page loaded is taken now: a fresh page
  // holds nothing unsaved (drafts are in IndexedDB), so "reload" means "update".
  const takingOver = Boolean(reg.waiting && navigator.serviceWorker.controller);
  if (takingOver) {
    showUpdate(reg); // also marks the update as ready, so the takeover reloads the page
    reg.waiting.postMessage({ type: 'SKIP_WAITING' });
  }
  const track = (w) => w?.addEventListener('statechange', () => { if (w.state === 'installed' && navigator.serviceWorker.controller) showUpdate(reg); });
  track(reg.installing);
  reg.addEventListener('updatefound', () => track(reg.installing));
  let reloading = false;
  const taken = new Promise((resolve) => {
    navigator.serviceWorker.addEventListener('controllerchange', () => {
      resolve(true);
      if (reloading || !S.updateReady) return;
      reloading = true;
      location.reload();
    });
  });
  // The hand-over is not requested on pagehide: the old worker is then retired while the
  // next page is still loading, and the page's own requests start it again (a restarted
  // old worker can hold the new one back for minutes). The fresh page asks instead.
  return takingOver ? taken : null;
}
