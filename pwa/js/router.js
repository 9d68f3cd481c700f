// Hash routes to screens (one render at a time) and the chrome around them (tab bar, banners).

import { t } from './i18n.js';
import { $, main, S } from './ui.js';
import { refreshStatus } from './status.js';
import { flushDraft } from './form.js';
import { viewEntries } from './screen-entries.js';
import { viewHome } from './screen-home.js';
import { viewLogin } from './screen-login.js';
import { viewNew } from './screen-new.js';
import { viewProblems } from './screen-problems.js';
import { viewSettings } from './screen-settings.js';
import { viewVisit } from './screen-visit.js';

// ---------- router -------------------------------------------------------------
export function go(hash) { if (location.hash === hash) render(); else location.hash = hash; }

// Renders run one at a time: a slow render started for an older route must never paint
// over a newer one. Requests made while one is queued fold into it (it reads the hash
// when it starts).
let renderQ = Promise.resolve();
let renderQueued = false;
export function render() {
  if (renderQueued) return renderQ;
  renderQueued = true;
  renderQ = renderQ.then(() => { renderQueued = false; return renderNow(); }).catch((e) => console.error(e));
  return renderQ;
}

async function renderNow() {
  const [route, arg] = location.hash.replace(/^#\/?/, '').split('/');
  if (S.form && (route !== 'visit' || arg !== S.form.visitId)) {
    // Leaving the form: its draft is written (if it was touched) and the form is let go,
    // so a later tab change cannot write it again (a discarded draft would come back).
    await flushDraft();
    S.form = null;
  }
  const prev = S.routeKey;
  S.routeKey = location.hash;
  S.route = route || 'home';
  if (!S.user && S.route !== 'login') { S.route = 'login'; }
  document.querySelectorAll('nav.tabs a').forEach((a) => a.classList.toggle('cur', a.dataset.r === S.route));
  $('nav.tabs').hidden = S.route === 'login';
  const view = { login: viewLogin, home: viewHome, new: viewNew, visit: viewVisit, entries: viewEntries, problems: viewProblems, settings: viewSettings }[S.route] || viewHome;
  await view(arg);
  if (prev !== S.routeKey) window.scrollTo(0, 0);
  main().dataset.screen = S.route;
  refreshStatus();
}

// ---------- chrome and start ---------------------------------------------------------------
export function renderChrome() {
  document.title = t('app');
  $('nav.tabs').innerHTML = [['home', '⌂'], ['entries', '☰'], ['problems', '⚑'], ['settings', '⚙']]
    .map(([r, i]) => `<a href="#/${r}" data-r="${r}"><span aria-hidden="true">${i}</span>${t(r)}</a>`).join('');
  const wx = $('#wechat');
  if (/MicroMessenger/i.test(navigator.userAgent) && !sessionStorage.getItem('fv-wx')) {
    wx.hidden = false;
    wx.innerHTML = `<p>${t('wechat')}</p><button class="btn small" id="wxok">${t('close')}</button>`;
    $('#wxok').onclick = () => { wx.hidden = true; sessionStorage.setItem('fv-wx', '1'); };
  }
}
