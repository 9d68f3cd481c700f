// The field app: screens, sync triggers, service worker and storage handling.

import { IdbBackend } from './db.js';
import { Store, recordState, uuid } from './store.js';
import { SyncEngine, HttpError } from './sync.js';
import { t, vocab, label, setLang, getLang, setReference, errorText } from './i18n.js';
import { checkUscc, normalizeUscc, checkRic, phoneOk } from './uscc.js';
import { searchEnterprises } from './search.js';

const backend = new IdbBackend();
const store = new Store(backend);
const engine = new SyncEngine({ store });
const $ = (sel, el = document) => el.querySelector(sel);
const main = () => $('#main');
const h = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const bc = typeof BroadcastChannel !== 'undefined' ? new BroadcastChannel('fieldvisit') : null;

const S = { user: null, ref: null, waiting: 0, storage: null, swReg: null, updateReady: false, route: '', form: null };
window.fieldvisit = { store, engine, backend, S }; // for tests and for support on a phone

// ---------- helpers ----------------------------------------------------------
const pad = (n) => String(n).padStart(2, '0');
function localInput(d = new Date()) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
/** "2026-03-05T10:20" from <input type=datetime-local> → ISO with this phone's UTC offset. */
function withOffset(local) {
  const d = new Date(local);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  return `${local.length === 16 ? `${local}:00` : local}${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}
function fromIso(iso) { return iso ? localInput(new Date(iso)) : localInput(); }
const fmtTime = (iso) => { if (!iso) return t('never'); const d = new Date(iso); return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`; };
const fmtBytes = (b) => (b > 1e9 ? `${(b / 1e9).toFixed(1)} GB` : b > 1e6 ? `${Math.round(b / 1e6)} MB` : `${Math.ceil(b / 1e3)} KB`);
function toast(msg) {
  const el = $('#toast');
  el.textContent = msg;
  el.hidden = false;
  clearTimeout(toast.h);
  toast.h = setTimeout(() => { el.hidden = true; }, 2500);
}

async function api(method, path, body) {
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

// ---------- sync status bar (always visible) ---------------------------------
async function refreshStatus() {
  // Entries, not mutations: a visit saved with its enterprise and problems is one.
  S.waiting = await store.pendingEntries();
  const last = await store.getMeta('last_sync');
  let err = engine.status.error || (await store.getMeta('last_error'));
  const online = navigator.onLine;
  // Being offline (or the network failing) is a state, not an error: neutral colours,
  // "离线 · N 条待发送"; red is kept for what needs someone to act.
  const netOnly = err && ['network', 'timeout'].includes(err.code);
  if (!online && netOnly) err = null;
  const bar = $('#syncbar');
  bar.className = `syncbar ${online ? 'on' : 'off'}${err && !netOnly && !engine.status.running ? ' serr' : ''}`;
  let msg = engine.status.running ? t('syncing') : S.waiting ? `${S.waiting} ${t('waiting')}` : t('all_sent');
  let sub = `${t('last_sync')} ${fmtTime(last)}`;
  if (err && !engine.status.running) {
    // The banner below says the long version of a sign-in problem.
    const code = err.code === 'device_revoked' ? 'device_revoked_short' : err.code;
    sub = `${netOnly ? '' : `${t('sync_error')}: `}${h(errorText(code))}${engine.status.nextTry ? ` · ${t('retry_at', { t: fmtTime(new Date(engine.status.nextTry).toISOString()) })}` : ''}`;
  }
  bar.innerHTML = `<span class="dot" aria-hidden="true"></span>
    <span class="st"><b data-testid="net">${online ? t('online') : t('offline')}</b> · <span data-testid="waiting">${h(msg)}</span><br><small data-testid="lastsync">${sub}</small></span>
    ${S.user ? `<button id="sendnow" class="btn small" ${engine.status.running ? 'disabled' : ''}>${t('send_now')}</button>` : ''}`;
  if (S.user) $('#sendnow').onclick = () => syncNow('button');
  const authCode = (await store.getMeta('auth_needed')) || (engine.status.authNeeded ? engine.status.error?.code || 'auth_required' : null);
  $('#authbanner').hidden = !(authCode && S.route !== 'login');
  $('#authbanner').dataset.code = authCode || '';
  $('#authbanner').innerHTML = `${authCode === 'device_revoked' ? t('device_revoked') : t('signin_again')} <a href="#/login" class="btn small">${t('signin')}</a>`;
}

async function syncNow(reason) {
  if (!(await store.getMeta('token'))) return;
  // navigator.onLine === false is reliable ("true" is not): wait for the online event.
  if (!navigator.onLine && reason !== 'button') return;
  const r = await engine.sync(reason);
  if (r?.ok) { refreshReference().catch(() => {}); }
  return r;
}

let refAt = 0;
async function refreshReference(force = false) {
  if (!navigator.onLine || (!force && Date.now() - refAt < 10 * 60 * 1000)) return;
  refAt = Date.now();
  const [ref, prog] = await Promise.all([api('GET', '/api/reference'), api('GET', '/api/progress').catch(() => null)]);
  await store.setMeta('reference', ref);
  S.ref = ref;
  setReference(ref);
  if (prog) await store.setMeta('progress', { ...prog, at: new Date().toISOString() });
  if (S.route === 'home') render();
}

// ---------- storage ------------------------------------------------------------
async function checkStorage() {
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

// ---------- router -------------------------------------------------------------
function go(hash) { if (location.hash === hash) render(); else location.hash = hash; }

// Renders run one at a time: a slow render started for an older route must never paint
// over a newer one. Requests made while one is queued fold into it (it reads the hash
// when it starts).
let renderQ = Promise.resolve();
let renderQueued = false;
function render() {
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

// ---------- sign in --------------------------------------------------------------
async function viewLogin() {
  const lastUser = await store.getMeta('username', '');
  const pending = await store.outboxCount();
  const revoked = (await store.getMeta('auth_needed')) === 'device_revoked' || !!(await store.getMeta('revoked_device'));
  const why = revoked ? t('device_revoked') : pending ? t('signin_again') : '';
  main().innerHTML = `<section class="card narrow">
    <h1>${t('app')}</h1>
    ${why ? `<p class="warn" data-testid="signin-why" data-code="${revoked ? 'device_revoked' : ''}">${why}${pending ? ` (${pending} ${t('waiting')})` : ''}</p>` : ''}
    <form id="loginf" autocomplete="on">
      <label>${t('username')}<input name="username" autocomplete="username" required value="${h(lastUser)}" autocapitalize="none"></label>
      <label>${t('password')}<input name="password" type="password" autocomplete="current-password" required></label>
      <p id="loginerr" class="err" role="alert"></p>
      <button class="btn primary block" type="submit">${t('signin')}</button>
    </form>
    <p class="center"><button class="link" id="langsw">${getLang() === 'zh' ? 'English' : '中文'}</button></p></section>`;
  $('#langsw').onclick = () => { setLang(getLang() === 'zh' ? 'en' : 'zh'); renderChrome(); render(); };
  $('#loginf').onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const err = $('#loginerr');
    if (!navigator.onLine) { err.textContent = t('need_network'); return; }
    try {
      // The same device_id keeps the mutation counter going: queued entries are sent as
      // they are. A revoked device is never asked for again: the server makes a new one.
      const deviceId = await store.getMeta('device_id');
      const revokedId = await store.getMeta('revoked_device');
      const body = { username: f.get('username'), password: f.get('password'), device_name: navigator.userAgent.slice(0, 60) };
      if (deviceId && deviceId !== revokedId) body.device_id = deviceId;
      let r;
      let renewed = false;
      try {
        r = await api('POST', '/api/auth/login', body);
      } catch (e) {
        // 403 device_revoked: this phone's device was revoked (the 401 that says so never
        // reached the app). The cadre has just typed the password: sign in as a new device.
        // 409 device_taken with nothing queued: another person's phone, start afresh.
        const retry = body.device_id && (e.code === 'device_revoked' || (e.code === 'device_taken' && !(await store.outboxCount())));
        if (!retry) throw e;
        if (e.code === 'device_revoked') { await store.setMeta('revoked_device', body.device_id); renewed = true; }
        delete body.device_id;
        r = await api('POST', '/api/auth/login', body);
      }
      const prev = await store.getMeta('user');
      if (prev && prev.id !== r.user.id && (await store.outboxCount())) {
        err.textContent = t('signout_block', { n: await store.outboxCount() });
        return;
      }
      // Token, device and the queue's numbering after the server's last_mid: one transaction.
      const n = await store.outboxCount();
      await store.signedIn({ token: r.token, device_id: r.device_id, user: r.user, last_mid: r.last_mid ?? 0 });
      engine.emit({ authNeeded: false, error: null });
      S.user = r.user;
      if ((renewed || revoked) && n) toast(t('device_renewed', { n }));
      checkStorage();
      await refreshReference(true).catch(() => {});
      go('#/home');
      syncNow('signin');
    } catch (e) {
      err.textContent = `${t('signin_fail')}: ${errorText(e.code || 'network')}`;
    }
  };
}

// ---------- home -------------------------------------------------------------------
function isMine(rec) {
  if (rec.mine) return true;
  const u = S.user;
  const by = rec.data?.created_by;
  return !!u && by != null && (by === u.id || by === u.username);
}

function entryState(visit, children) {
  const states = [visit, ...children].map(recordState);
  for (const s of ['error', 'conflict', 'sending', 'local']) if (states.includes(s)) return s;
  return 'synced';
}

async function visitsWithChildren() {
  const all = await store.list();
  const kids = new Map();
  for (const r of all) {
    if ((r.entity === 'problem' || r.entity === 'home_visit') && r.data.visit_id) {
      if (!kids.has(r.data.visit_id)) kids.set(r.data.visit_id, []);
      kids.get(r.data.visit_id).push(r);
    }
  }
  const ents = new Map(all.filter((r) => r.entity === 'enterprise').map((r) => [r.id, r.data]));
  for (const e of S.ref?.enterprises || []) if (!ents.has(e.id)) ents.set(e.id, e);
  // A visit the dedup workers merged into another shows as that canonical record.
  const byId = new Map(all.filter((r) => r.entity === 'visit').map((r) => [r.id, r]));
  const shown = new Map();
  for (const r of byId.values()) {
    if (!isMine(r)) continue;
    let v = r;
    for (let i = 0; i < 5 && v.data.canonical_id && byId.has(v.data.canonical_id); i++) v = byId.get(v.data.canonical_id);
    if (v.data.canonical_id) continue; // canonical not pulled yet: the next pull brings it
    shown.set(v.id, v);
  }
  const entOf = (id) => {
    let e = ents.get(id);
    for (let i = 0; i < 5 && e?.canonical_id && ents.has(e.canonical_id); i++) e = ents.get(e.canonical_id);
    return e;
  };
  return [...shown.values()]
    .map((v) => ({ v, kids: kids.get(v.id) || [], ent: entOf(v.data.enterprise_id) }))
    .sort((a, b) => String(b.v.data.visited_at).localeCompare(String(a.v.data.visited_at)));
}

/** A field name from a server rejection, in the cadre's language. */
function fieldName(f) {
  const key = { id_number: 'f_id_number', phone: 'f_phone', uscc: 'f_uscc', name: 'ent_name', visited_at: 'when', workers_by_group: 'workers', workers_met: 'workers' }[f] || f;
  const s = t(key);
  return s === key ? f : s;
}

/** The server's reason for a rejection in the cadre's language (its own English words only in English). */
function reasonText(err) {
  if (err.code === 'entry_rejected' && err.cause) {
    const what = t(`e_${err.cause.entity}`);
    return t('rej_entry_rejected', { what: what.startsWith('e_') ? t('e_visit') : what, why: reasonText(err.cause) });
  }
  // A field's own wording where there is one (rej_invalid_uscc), else the code's with the field.
  const precise = `rej_${err.code}_${err.field}`;
  if (err.field && t(precise) !== precise) return t(precise);
  const key = `rej_${err.code}`;
  const what = t(key) === key ? t('rej_invalid') : t(key);
  return what + (err.field && err.code !== 'enterprise_not_found' ? `${getLang() === 'zh' ? '：' : ': '}${fieldName(err.field)}` : '');
}
/** The form field a rejection is about (an entry's: the refused record's field). */
const errField = (err) => (err?.code === 'entry_rejected' ? err.cause?.field : err?.field) || null;
function reasonHtml(err) {
  const msg = err.code === 'entry_rejected' ? err.cause?.message : err.message;
  return `<b>${h(reasonText(err))}</b>${msg && getLang() !== 'zh' ? `<br><small class="muted">${h(msg)}</small>` : ''}`;
}
/** A conflict in the cadre's language. */
function conflictText(c) {
  if (c.code === 'stage_conflict' && c.server_value) return t('conflict_msg', { v: label('stages', c.server_value) });
  return t('st_conflict');
}

function entryRow({ v, kids, ent }) {
  const st = entryState(v, kids);
  const errRec = [v, ...kids].find((r) => r.error || r.conflict);
  const why = errRec?.error
    ? `<div class="why" data-testid="reason" data-field="${h(errField(errRec.error) || '')}">${reasonHtml(errRec.error)}<br><small>${t('fix_hint')}</small></div>`
    : errRec?.conflict ? `<div class="why">${h(conflictText(errRec.conflict))}</div>` : '';
  return `<li><a class="entry" href="#/visit/${v.id}" data-testid="entry" data-id="${v.id}" data-state="${st}">
    <span class="badge ${st}">${t(`st_${st}`)}</span>
    <b>${h(label('methods', v.data.method))}</b> · ${h(fmtTime(v.data.visited_at))}<br>
    <small>${h([ent?.name || kids.find((k) => k.entity === 'home_visit')?.data.worker_name,
    v.data.workers_met ? `${t('workers_met')} ${v.data.workers_met}` : ''].filter(Boolean).join(' · '))}</small>${why}</a></li>`;
}

async function viewHome() {
  const items = await visitsWithChildren();
  const today = new Date().toDateString();
  const todays = items.filter((x) => new Date(x.v.data.visited_at).toDateString() === today || new Date(x.v.created_local || 0).toDateString() === today);
  const drafts = (await store.listDrafts()).filter((d) => d.form);
  const p = await store.getMeta('progress');
  const attention = items.filter((x) => ['error', 'conflict'].includes(entryState(x.v, x.kids))).length;
  const bar = (n, of) => `<div class="meter"><i style="width:${Math.min(100, Math.round((100 * n) / (of || 1)))}%"></i></div>`;
  const st = S.storage;
  main().innerHTML = `
    <a class="btn primary block big" href="#/new" data-testid="new-visit">${t('new_visit')}</a>
    ${attention ? `<a class="card attention" href="#/entries" data-testid="attention"><b>${attention}</b> ${t('st_error')} ›</a>` : ''}
    ${drafts.length ? `<section class="card"><h2>${t('drafts')}</h2><ul class="list">${drafts.map((d) => `<li class="row"><span>${h(label('methods', d.form.method))} · ${h(fmtTime(d.saved_at))}</span>
      <span><button class="btn small" data-discard="${d.id}">${t('discard')}</button> <a class="btn small" href="#/visit/${d.id}">${t('continue')}</a></span></li>`).join('')}</ul></section>` : ''}
    <section class="card" data-testid="progress"><h2>${t('progress')}${p && !navigator.onLine ? ` <small>${t('progress_offline')}</small>` : ''}</h2>
      ${p && p.district_code !== null ? `<p>${t('ents_visited')} <b>${p.enterprises_visited}</b> / ${p.target_enterprises} · ${p.enterprise_types} ${t('types')}</p>${bar(p.enterprises_visited, p.target_enterprises)}
      <p>${t('workers_met')} <b>${p.workers_met}</b> / ${p.target_workers}</p>${bar(p.workers_met, p.target_workers)}` : '<p>—</p>'}
    </section>
    <section class="card"><h2>${t('today')}</h2>
      ${todays.length ? `<ul class="list">${todays.map(entryRow).join('')}</ul>` : `<p class="muted">${t('none_today')}</p>`}</section>
    ${st && st.persisted === false ? `<p class="warn small" data-testid="persist">${t('not_persisted')}</p>` : ''}`;
  main().querySelectorAll('[data-discard]').forEach((b) => {
    b.onclick = async () => {
      const id = b.dataset.discard;
      if (S.form?.visitId === id) { clearTimeout(draftTimer); S.form = null; }
      await draftWriting; // a write already under way lands first, then the delete
      await store.delDraft(id);
      viewHome();
    };
  });
}

// ---------- new visit: method ----------------------------------------------------------
async function viewNew() {
  main().innerHTML = `<h1>${t('choose_method')}</h1><div class="methods">${vocab('methods')
    .map(([c, l]) => `<button class="btn method" data-m="${c}">${h(l)}</button>`).join('')}</div>`;
  main().querySelectorAll('[data-m]').forEach((b) => {
    b.onclick = () => {
      // Held in memory only: a form nobody touched leaves no draft behind.
      const id = uuid();
      S.form = blankForm(id, b.dataset.m);
      go(`#/visit/${id}`);
    };
  });
}

function blankForm(id, method) {
  return {
    visitId: id, isNew: true, method, visited_at: localInput(), enterprise_id: null, newEnt: null, place: 'enterprise',
    workers_met: 0, groups: { needy: 0, laid_off: 0, migrant: 0, dispatched: 0 }, materials: 0, consultations: 0, notes: '',
    lat: null, lng: null, problems: [], removed: [], home: method === 'home_visit' ? blankHome() : null,
  };
}
const blankHome = () => ({ id: uuid(), worker_name: '', phone: '', id_number: '', hardship: '', amount: '', notes: '' });

/** Form of an existing entry, from the records on this phone. */
async function formFromRecords(id) {
  const v = await store.get('visit', id);
  if (!v) return null;
  const all = await store.list();
  const probs = all.filter((r) => r.entity === 'problem' && r.data.visit_id === id);
  const hv = all.find((r) => r.entity === 'home_visit' && r.data.visit_id === id);
  const d = v.data;
  // An enterprise created in this entry that the server has not accepted yet (still
  // queued, or refused) stays editable as a new one: that is where its fix is made.
  const er = d.enterprise_id ? await store.get('enterprise', d.enterprise_id) : null;
  const newEnt = er && !er.known && er.mine && !er.deleted
    ? { id: er.id, name: er.data.name || '', uscc: er.data.uscc || '', type_tags: er.data.type_tags || [], address: er.data.address || '' } : null;
  return {
    visitId: id, isNew: false, method: d.method, visited_at: fromIso(d.visited_at), enterprise_id: newEnt ? null : d.enterprise_id || null, newEnt,
    place: d.place || 'enterprise', workers_met: d.workers_met || 0,
    groups: { needy: 0, laid_off: 0, migrant: 0, dispatched: 0, ...(d.workers_by_group || {}) },
    materials: d.materials || 0, consultations: d.consultations || 0, notes: d.notes || '', lat: d.lat ?? null, lng: d.lng ?? null,
    problems: probs.map((p) => ({ id: p.id, category: p.data.category || 'other', tag: p.data.tag || null, description: p.data.description || '' })),
    removed: [],
    home: hv ? { id: hv.id, worker_name: hv.data.worker_name || '', phone: hv.data.phone || '', id_number: hv.data.id_number || '', id_last4: hv.data.id_last4 || '',
      hardship: hv.data.hardship || '', amount: hv.data.amount_cents != null ? String(hv.data.amount_cents / 100) : '', notes: hv.data.notes || '' }
      : d.method === 'home_visit' ? blankHome() : null,
  };
}

// ---------- visit form (new and edit) ----------------------------------------------------
// Drafts: written 300 ms after a change, and when the form is left or the page hides.
// Never for a form nobody touched; never once saving has begun (the save drops the
// draft in its own transaction, after any draft write already under way has landed).
let draftTimer = null;
let draftWriting = Promise.resolve();
function scheduleDraft() {
  if (S.form) S.form.touched = true;
  clearTimeout(draftTimer);
  draftTimer = setTimeout(flushDraft, 300);
}
function flushDraft() {
  clearTimeout(draftTimer);
  const F = S.form;
  if (!F || F.saved || F.saving || !F.touched) return draftWriting;
  const form = structuredClone(F);
  draftWriting = draftWriting.then(() => store.putDraft({ id: F.visitId, form })).catch(() => {});
  return draftWriting;
}
/** Saving begins: no draft is written from now on, and a write under way lands first. */
async function beginSave(F) {
  clearTimeout(draftTimer);
  F.saving = true;
  await draftWriting;
}

function allEnterprises() {
  return S.entList || [];
}

async function loadEnterprises() {
  const local = (await store.list('enterprise')).filter((r) => !r.data.canonical_id).map((r) => ({ ...r.data, id: r.id }));
  const map = new Map((S.ref?.enterprises || []).filter((e) => !e.canonical_id).map((e) => [e.id, e]));
  for (const e of local) map.set(e.id, { ...map.get(e.id), ...e });
  S.entList = [...map.values()];
}

/** Follow canonical_id so a merged enterprise shows as the one it was merged into. */
async function resolveEnterprise(id) {
  for (let i = 0; id && i < 5; i++) {
    const rec = await store.get('enterprise', id);
    const data = rec?.data || (S.ref?.enterprises || []).find((e) => e.id === id);
    if (!data) return null;
    if (!data.canonical_id) return { ...data, id };
    id = data.canonical_id;
  }
  return null;
}

const stepper = (name, value, lbl, big = false) => `<div class="stepper${big ? ' big' : ''}"><span>${h(lbl)}</span>
  <button type="button" class="btn step" data-step="${name}" data-d="-1" aria-label="-">−</button>
  <input type="number" inputmode="numeric" min="0" data-num="${name}" value="${value}" aria-label="${h(lbl)}">
  <button type="button" class="btn step" data-step="${name}" data-d="1" aria-label="+">＋</button></div>`;

async function viewVisit(id) {
  // The enterprise list is needed only once the cadre searches: it loads meanwhile.
  S.entLoading = loadEnterprises();
  // The form in memory is the newest (a new one, or one being redrawn); else the draft.
  const draft = S.form?.visitId === id && !S.form.saved ? null : await store.getDraft(id);
  let F = S.form?.visitId === id && !S.form.saved ? S.form : draft?.form;
  if (!F) F = await formFromRecords(id);
  if (!F) { go('#/home'); return; }
  S.form = F;
  const rec = await store.get('visit', id);
  // A form never saved has no records yet: no need to read them all for its children.
  const kids = rec ? (await store.list()).filter((r) => r.data.visit_id === id) : [];
  const errRec = [rec, ...kids].find((r) => r?.error);
  const ent = F.enterprise_id ? await resolveEnterprise(F.enterprise_id) : null;
  if (ent && ent.id !== F.enterprise_id) F.enterprise_id = ent.id;
  const m = F.method;
  const showEnt = m !== 'home_visit' && m !== 'report';
  main().innerHTML = `<form id="vf" novalidate>
    <div class="row"><a class="btn small" href="#/home">‹ ${t('back')}</a><span class="muted small" id="draftst"></span></div>
    ${errRec ? `<p class="err" data-testid="form-reason">${reasonHtml(errRec.error)}</p>` : ''}
    <label>${t('method')}<select data-f="method">${vocab('methods').map(([c, l]) => `<option value="${c}"${c === m ? ' selected' : ''}>${h(l)}</option>`).join('')}</select></label>
    <label>${t('when')}<input type="datetime-local" data-f="visited_at" value="${h(F.visited_at)}" required></label>
    ${showEnt || F.enterprise_id || F.newEnt ? `<fieldset class="card"><legend>${t('enterprise')}</legend><div id="entbox"></div></fieldset>` : ''}
    ${m !== 'home_visit' && m !== 'report' ? `<label>${t('place')}<select data-f="place">${vocab('places').map(([c, l]) => `<option value="${c}"${c === F.place ? ' selected' : ''}>${h(l)}</option>`).join('')}</select></label>` : ''}
    ${m === 'home_visit' ? homeBlock(F.home) : ''}
    <fieldset class="card"><legend>${t('workers')}</legend>
      ${stepper('workers_met', F.workers_met, t('total'), true)}
      <p class="muted small">${t('of_which')}</p>
      ${vocab('focus_groups').map(([c, l]) => stepper(`groups.${c}`, F.groups[c] || 0, l)).join('')}
    </fieldset>
    ${m === 'outreach' ? `<fieldset class="card">${stepper('materials', F.materials, t('materials'))}${stepper('consultations', F.consultations, t('consultations'))}</fieldset>` : ''}
    <fieldset class="card"><legend>${t('problems_raised')}</legend><div id="probs"></div>
      <button type="button" class="btn block" id="addprob">${t('add_problem')}</button></fieldset>
    <label>${t('notes')}<textarea data-f="notes" rows="3">${h(F.notes)}</textarea></label>
    <div class="row"><button type="button" class="btn" id="geo">${t('add_location')}</button><span id="geost" class="small muted">${F.lat != null ? `${F.lat.toFixed(4)}, ${F.lng.toFixed(4)}` : ''}</span></div>
    ${rec ? `<button type="button" class="btn danger block" id="del">${t('delete')}</button>` : ''}
    <div class="savebar"><button class="btn primary block big" type="submit" id="save" data-testid="save">${t('save')}</button></div>
  </form>`;
  renderEntBox(ent);
  renderProblems();
  bindForm();
  homeChecks();
  const bad = errField(errRec?.error);
  if (bad) {
    const els = main().querySelectorAll(`[data-f="${CSS.escape(bad)}"], [data-f$=".${CSS.escape(bad)}"]`);
    els.forEach((el) => el.classList.add('invalid'));
    // After the router's scroll to the top: bring the field to fix into view.
    if (els[0]) setTimeout(() => els[0].scrollIntoView({ block: 'center' }), 0);
  }
}

function homeBlock(H) {
  return `<fieldset class="card"><legend>${t('home_visit')}</legend>
    <label>${t('worker_name')} *<input data-f="home.worker_name" value="${h(H.worker_name)}" required></label>
    <label>${t('phone')}<input type="tel" inputmode="tel" data-f="home.phone" value="${h(H.phone)}"></label>
    <p class="small warn" id="phonest" aria-live="polite"></p>
    <label>${t('id_number')}<input data-f="home.id_number" value="${h(H.id_number)}" placeholder="${H.id_last4 ? `****${h(H.id_last4)}` : ''}" autocomplete="off"></label>
    <p class="small warn" id="ricst" aria-live="polite"></p>
    <label>${t('hardship')}<input data-f="home.hardship" value="${h(H.hardship)}"></label>
    <label>${t('amount')}<input type="number" inputmode="decimal" min="0" step="0.01" data-f="home.amount" value="${h(H.amount)}"></label>
    <label>${t('notes')}<textarea data-f="home.notes" rows="2">${h(H.notes)}</textarea></label></fieldset>`;
}

/** Live hints for what the server would reject, so the cadre fixes it on the spot. */
function homeChecks() {
  const H = S.form?.home;
  if (!H || !$('#ricst')) return;
  const ric = checkRic(H.id_number);
  $('#ricst').textContent = ric === 'bad' || ric === 'checksum' ? t('ric_bad') : '';
  $('#phonest').textContent = phoneOk(H.phone) || String(H.phone).length < 11 ? '' : t('phone_bad');
}

function renderEntBox(ent) {
  const box = $('#entbox');
  if (!box) return;
  const F = S.form;
  if (F.newEnt) {
    const E = F.newEnt;
    box.innerHTML = `<label>${t('ent_name')} *<input data-f="newEnt.name" value="${h(E.name)}" required></label>
      <label>${t('uscc')}<input data-f="newEnt.uscc" id="uscc" value="${h(E.uscc)}" autocapitalize="characters" autocomplete="off" maxlength="24"></label>
      <p id="usccst" class="small" aria-live="polite"></p>
      <div class="chips">${vocab('enterprise_type_tags').map(([c, l]) => `<label class="chip"><input type="checkbox" data-tag="${c}"${E.type_tags.includes(c) ? ' checked' : ''}> ${h(l)}</label>`).join('')}</div>
      <label>${t('address')}<input data-f="newEnt.address" value="${h(E.address)}"></label>
      <button type="button" class="btn small" id="entcancel">${t('change')}</button>`;
    usccStatus();
    bindInputs(box);
    box.querySelectorAll('[data-tag]').forEach((c) => {
      c.onchange = () => {
        E.type_tags = [...box.querySelectorAll('[data-tag]:checked')].map((x) => x.dataset.tag);
        scheduleDraft();
      };
    });
    $('#entcancel').onclick = () => { F.newEnt = null; renderEntBox(null); scheduleDraft(); };
    return;
  }
  if (ent) {
    box.innerHTML = `<div class="row"><b data-testid="chosen-ent">${h(ent.name)}</b><button type="button" class="btn small" id="entchg">${t('change')}</button></div>`;
    $('#entchg').onclick = () => { F.enterprise_id = null; renderEntBox(null); scheduleDraft(); };
    return;
  }
  box.innerHTML = `<input type="search" id="entq" placeholder="${t('search_ent')}" autocomplete="off" data-testid="ent-search">
    <ul class="list picks" id="entres"></ul><button type="button" class="btn block" id="entnew">＋ ${t('new_ent')}</button>`;
  const q = $('#entq');
  const showResults = async () => {
    await S.entLoading;
    const res = searchEnterprises(allEnterprises(), q.value, 20);
    $('#entres').innerHTML = q.value ? res.map((e) => `<li><button type="button" class="pick" data-ent="${h(e.id)}">${h(e.name)}</button></li>`).join('') : '';
    $('#entres').querySelectorAll('[data-ent]').forEach((b) => {
      b.onclick = () => {
        F.enterprise_id = b.dataset.ent;
        scheduleDraft();
        renderEntBox(allEnterprises().find((e) => e.id === b.dataset.ent));
      };
    });
  };
  q.oninput = showResults;
  $('#entnew').onclick = () => {
    F.newEnt = { id: uuid(), name: q.value, uscc: '', type_tags: [], address: '' };
    scheduleDraft();
    renderEntBox(null);
  };
}

function usccStatus() {
  const el = $('#usccst');
  if (!el) return;
  const r = checkUscc(S.form.newEnt.uscc);
  const msg = { empty: '', ok: `✓ ${t('uscc_ok')}`, partial: t('uscc_partial', { n: r.code.length }), badchar: t('uscc_bad', { c: r.char }),
    checksum: `⚠ ${t('uscc_sum', { c: r.expected })}`, long: t('uscc_long') }[r.status];
  el.textContent = msg;
  el.className = `small ${r.status === 'ok' ? 'ok' : r.status === 'partial' || r.status === 'empty' ? 'muted' : 'warn'}`;
  el.dataset.status = r.status;
}

function renderProblems() {
  const F = S.form;
  $('#probs').innerHTML = F.problems.map((p, i) => `<div class="prob" data-i="${i}">
    <label>${t('category')}<select data-p="category">${vocab('categories').map(([c, l]) => `<option value="${c}"${c === p.category ? ' selected' : ''}>${h(l)}</option>`).join('')}</select></label>
    <div class="seg" role="group">${vocab('problem_tags').map(([c, l]) => `<button type="button" class="btn segb${p.tag === c ? ' on' : ''}" data-tagp="${c}" aria-pressed="${p.tag === c}">${h(l)}</button>`).join('')}</div>
    <label>${t('description')} *<textarea data-p="description" rows="2">${h(p.description)}</textarea></label>
    <button type="button" class="btn small danger" data-rm="${i}">${t('remove')}</button></div>`).join('');
  $('#probs').querySelectorAll('.prob').forEach((el) => {
    const p = F.problems[Number(el.dataset.i)];
    el.querySelectorAll('[data-p]').forEach((inp) => { inp.oninput = () => { p[inp.dataset.p] = inp.value; scheduleDraft(); }; });
    el.querySelectorAll('[data-tagp]').forEach((b) => { b.onclick = () => { p.tag = p.tag === b.dataset.tagp ? null : b.dataset.tagp; renderProblems(); scheduleDraft(); }; });
    el.querySelector('[data-rm]').onclick = () => { F.removed.push(p.id); F.problems.splice(Number(el.dataset.i), 1); renderProblems(); scheduleDraft(); };
  });
}

function setPath(obj, path, value) {
  const parts = path.split('.');
  let o = obj;
  for (const k of parts.slice(0, -1)) o = o[k];
  o[parts[parts.length - 1]] = value;
}
const getPath = (obj, path) => path.split('.').reduce((o, k) => o?.[k], obj);

/** Every [data-f] input writes its value into the form state and the autosaved draft. */
function bindInputs(el) {
  el.querySelectorAll('[data-f]').forEach((inp) => {
    if (inp.dataset.bound) return;
    inp.dataset.bound = '1';
    inp.addEventListener('input', () => {
      setPath(S.form, inp.dataset.f, inp.value);
      if (inp.dataset.f === 'newEnt.uscc') usccStatus();
      if (inp.dataset.f === 'home.phone' || inp.dataset.f === 'home.id_number') homeChecks();
      scheduleDraft();
      const st = $('#draftst');
      if (st) st.textContent = t('draft_saved');
    });
  });
}

function bindForm() {
  const F = S.form;
  const form = $('#vf');
  bindInputs(form);
  form.querySelector('[data-f="method"]').onchange = async (e) => {
    F.method = e.target.value;
    if (F.method === 'home_visit' && !F.home) F.home = blankHome();
    F.touched = true;
    await flushDraft();
    viewVisit(F.visitId);
  };
  const setNum = (name, v) => {
    v = Math.max(0, Number.isFinite(v) ? Math.round(v) : 0);
    setPath(F, name, v);
    // A focus group can't exceed the total met: raise the total with it.
    if (name.startsWith('groups.') && v > F.workers_met) setNum('workers_met', v);
    if (name === 'workers_met') for (const g of Object.keys(F.groups)) if (F.groups[g] > v) setNum(`groups.${g}`, v);
    const inp = form.querySelector(`[data-num="${name}"]`);
    if (inp && Number(inp.value) !== v) inp.value = v;
    scheduleDraft();
  };
  form.querySelectorAll('[data-step]').forEach((b) => { b.onclick = () => setNum(b.dataset.step, Number(getPath(F, b.dataset.step) || 0) + Number(b.dataset.d)); });
  form.querySelectorAll('[data-num]').forEach((inp) => { inp.onchange = () => setNum(inp.dataset.num, Number(inp.value)); });
  $('#addprob').onclick = () => {
    F.problems.push({ id: uuid(), category: 'wages', tag: null, description: '' });
    renderProblems();
    scheduleDraft();
    $('#probs .prob:last-child textarea')?.focus();
  };
  $('#geo').onclick = () => {
    if (!navigator.geolocation) { $('#geost').textContent = t('no_location'); return; }
    $('#geost').textContent = t('locating');
    navigator.geolocation.getCurrentPosition((pos) => {
      F.lat = pos.coords.latitude; F.lng = pos.coords.longitude;
      $('#geost').textContent = `${F.lat.toFixed(4)}, ${F.lng.toFixed(4)}`;
      scheduleDraft();
    }, () => { $('#geost').textContent = t('no_location'); }, { timeout: 10000, maximumAge: 300000 });
  };
  const del = $('#del');
  if (del) {
    del.onclick = async () => {
      if (!confirm(t('confirm_delete'))) return;
      const kids = (await store.list()).filter((r) => r.data.visit_id === F.visitId);
      const changes = [...kids.map((k) => ({ entity: k.entity, id: k.id, del: true })), { entity: 'visit', id: F.visitId, del: true }];
      await beginSave(F);
      F.saved = true;
      await store.save(changes, { dropDrafts: [F.visitId] });
      S.form = null;
      afterSave();
      go('#/entries');
    };
  }
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    await saveForm();
  };
}

/** Turn the form into record changes; written with their outbox entries in one transaction. */
async function saveForm() {
  const F = S.form;
  if (!F || F.saving || F.saved) return; // a second tap while the first one saves
  const missing = [];
  if (!F.visited_at) missing.push('[data-f="visited_at"]');
  if (F.newEnt && !F.newEnt.name.trim()) missing.push('[data-f="newEnt.name"]');
  if (F.method === 'home_visit' && !F.home?.worker_name.trim()) missing.push('[data-f="home.worker_name"]');
  F.problems.forEach((p, i) => { if (!p.description.trim()) missing.push(`.prob[data-i="${i}"] textarea`); });
  document.querySelectorAll('.invalid').forEach((el) => el.classList.remove('invalid'));
  if (missing.length) {
    missing.forEach((s) => document.querySelector(s)?.classList.add('invalid'));
    document.querySelector(missing[0])?.focus();
    toast(t('required'));
    return;
  }
  await beginSave(F);
  const u = S.user;
  const district = u.district_code || S.ref?.work_groups?.find((g) => g.code === u.work_group_code)?.district_codes?.[0];
  const when = withOffset(F.visited_at);
  const changes = [];
  let entId = F.enterprise_id;
  if (F.newEnt) {
    const E = F.newEnt;
    entId = E.id;
    changes.push({ entity: 'enterprise', id: E.id, data: { name: E.name.trim(), uscc: normalizeUscc(E.uscc) || null, district_code: district,
      address: E.address || null, type_tags: E.type_tags } });
  }
  const groups = Object.fromEntries(Object.entries(F.groups).filter(([, n]) => n > 0));
  changes.push({ entity: 'visit', id: F.visitId, data: {
    method: F.method, visited_at: when, district_code: district, work_group_code: u.work_group_code || null,
    enterprise_id: entId || null, place: F.method === 'home_visit' ? 'living' : F.place, workers_met: Number(F.workers_met) || 0,
    workers_by_group: groups, materials: F.method === 'outreach' ? Number(F.materials) || 0 : 0,
    consultations: F.method === 'outreach' ? Number(F.consultations) || 0 : 0, notes: F.notes || '', lat: F.lat, lng: F.lng } });
  for (const p of F.problems) {
    changes.push({ entity: 'problem', id: p.id, data: { visit_id: F.visitId, category: p.category, tag: p.tag, description: p.description.trim() } });
  }
  for (const id of F.removed) if (await store.get('problem', id)) changes.push({ entity: 'problem', id, del: true });
  if (F.method === 'home_visit' && F.home) {
    const H = F.home;
    const data = { visit_id: F.visitId, district_code: district, visited_at: when, worker_name: H.worker_name.trim(), phone: H.phone || null,
      hardship: H.hardship || null, amount_cents: H.amount === '' ? 0 : Math.round(Number(H.amount) * 100), notes: H.notes || null };
    if (H.id_number) data.id_number = H.id_number.trim().toUpperCase();
    changes.push({ entity: 'home_visit', id: H.id, data });
  }
  const t0 = performance.now();
  try {
    await store.save(changes, { dropDrafts: [F.visitId] });
  } catch (e) {
    F.saving = false;
    // Quota errors can be silent elsewhere: this one is not.
    toast(`${t('storage_full')} (${e.name})`);
    checkStorage();
    return;
  }
  window.fieldvisit.lastSaveMs = performance.now() - t0;
  F.saved = true;
  S.form = null;
  toast(t('saved'));
  afterSave();
  go('#/home');
}

function afterSave() {
  refreshStatus();
  // Chromium: the browser wakes the service worker to send, even after the tab is gone.
  S.swReg?.sync?.register('outbox').catch(() => {});
  if (navigator.onLine) setTimeout(() => syncNow('save'), 200);
}

// ---------- my entries -----------------------------------------------------------------------
async function viewEntries() {
  const items = await visitsWithChildren();
  // What needs the cadre's attention comes first, then what is still on the phone.
  const rank = { error: 0, conflict: 0, local: 1, sending: 1, synced: 2 };
  items.sort((a, b) => rank[entryState(a.v, a.kids)] - rank[entryState(b.v, b.kids)]);
  main().innerHTML = `<h1>${t('entries')}</h1>${items.length ? `<ul class="list">${items.map(entryRow).join('')}</ul>` : `<p class="muted">${t('no_entries')}</p>`}`;
}

// ---------- problem follow-up --------------------------------------------------------------------
const LADDER = ['enterprise', 'government', 'source'];
async function viewProblems() {
  const probs = (await store.list('problem')).filter((p) => !p.data.canonical_id && !['resolved', 'closed'].includes(p.data.stage));
  main().innerHTML = `<h1>${t('problems')}</h1>${probs.length ? '' : `<p class="muted">${t('no_problems')}</p>`}<ul class="list">${probs.map((p) => {
    const stage = p.data.stage || 'enterprise';
    const next = [...LADDER.slice(LADDER.indexOf(stage) + 1), 'resolved', 'closed'];
    const st = recordState(p);
    return `<li class="card prob" data-id="${p.id}"><span class="badge ${st}">${t(`st_${st}`)}</span>
      <b>${h(label('categories', p.data.category))}</b>${p.data.tag ? ` · ${h(label('problem_tags', p.data.tag))}` : ''}<p>${h(p.data.description)}</p>
      <p class="small">${t('stage')}: <b>${h(label('stages', stage))}</b></p>
      ${p.conflict ? `<p class="warn small">${t('conflict_msg', { v: label('stages', p.conflict.server_value) })}</p>` : ''}
      ${p.error ? `<p class="err small">${h(reasonText(p.error))}</p>` : ''}
      <label>${t('move_to')}<select data-next>${next.map((s) => `<option value="${s}">${h(label('stages', s))}</option>`).join('')}</select></label>
      <label>${t('stage_note')}<textarea data-note rows="2"></textarea></label>
      <button class="btn primary" data-move>${t('move')}</button></li>`;
  }).join('')}</ul>`;
  main().querySelectorAll('li.prob').forEach((li) => {
    li.querySelector('[data-move]').onclick = async () => {
      const note = li.querySelector('[data-note]').value.trim();
      const stage = li.querySelector('[data-next]').value;
      const data = { stage, stage_note: note || null };
      if (stage === 'resolved' || stage === 'closed') data.resolution = note || null;
      // base_version comes from the record: the server refuses to overwrite a newer stage.
      await store.save([{ entity: 'problem', id: li.dataset.id, data }]);
      afterSave();
      viewProblems();
    };
  });
}

// ---------- settings ---------------------------------------------------------------------------
async function viewSettings() {
  const st = await checkStorage();
  const version = await swVersion();
  main().innerHTML = `<h1>${t('settings')}</h1>
    <section class="card"><h2>${t('language')}</h2><div class="seg"><button class="btn segb${getLang() === 'zh' ? ' on' : ''}" data-lang="zh">中文</button><button class="btn segb${getLang() === 'en' ? ' on' : ''}" data-lang="en">English</button></div></section>
    <section class="card"><h2>${t('storage')}</h2>
      <p data-testid="persisted" class="${st.persisted ? 'ok' : 'warn'}">${st.persisted ? t('persisted') : t('not_persisted')}</p>
      ${st.quota ? `<p class="small ${st.nearlyFull ? 'warn' : 'muted'}">${t('used', { u: fmtBytes(st.usage), q: fmtBytes(st.quota) })}</p>` : ''}
      <p class="small muted">${t('export_hint')}</p>
      <button class="btn block" id="exp" data-testid="export">${t('export')}</button>
      <label class="btn block filebtn">${t('import')}<input type="file" id="imp" accept=".json,application/json" data-testid="import"></label></section>
    <section class="card"><p class="small muted">${t('version')}: <span data-testid="version">${h(version)}</span> · ${h(S.user?.display_name || S.user?.username || '')}</p>
      <button class="btn block" id="signout">${t('signout')}</button></section>`;
  main().querySelectorAll('[data-lang]').forEach((b) => { b.onclick = () => { setLang(b.dataset.lang); renderChrome(); render(); }; });
  $('#exp').onclick = exportUnsent;
  $('#imp').onchange = async (e) => {
    try {
      const file = JSON.parse(await e.target.files[0].text());
      const mids = await store.importUnsent(file);
      toast(t('imported', { n: file.records.length }));
      if (mids.length) afterSave();
    } catch { toast(t('import_bad')); }
  };
  $('#signout').onclick = async () => {
    const n = await store.outboxCount();
    if (n) { toast(t('signout_block', { n })); return; }
    await store.setMeta('token', null);
    S.user = null;
    await store.setMeta('user', null);
    go('#/login');
  };
}

async function exportUnsent() {
  const data = await store.exportUnsent();
  data.device_id = await store.getMeta('device_id');
  const blob = new Blob([JSON.stringify(data, null, 1)], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `fieldvisit-unsent-${new Date().toISOString().slice(0, 16).replace(/[:T]/g, '')}.json`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}

// ---------- service worker and updates ------------------------------------------------------
function swVersion() {
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

async function registerSW() {
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

// ---------- chrome and start ---------------------------------------------------------------
function renderChrome() {
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

async function start() {
  setLang(getLang());
  renderChrome();
  // A page killed mid-sync leaves records marked "sending": nothing is in flight now.
  await store.clearSending().catch(() => {});
  S.user = await store.getMeta('user');
  S.ref = await store.getMeta('reference');
  if (S.ref) setReference(S.ref);
  engine.on(() => { refreshStatus(); if (['home', 'entries', 'problems'].includes(S.route) && !engine.status.running) render(); });
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
