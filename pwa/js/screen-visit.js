// Screen: the visit form, new and edit (enterprise, problems, home visit), and its save.

import { uuid } from './store.js';
import { label, t, vocab } from './i18n.js';
import { checkRic, checkUscc, normalizeUscc, phoneOk } from './uscc.js';
import { searchEnterprises } from './search.js';
import { $, fromIso, h, main, S, store, toast, withOffset } from './ui.js';
import { afterSave, checkStorage } from './status.js';
import { go } from './router.js';
import { beginSave, flushDraft, getPath, scheduleDraft, setPath, stepper } from './form.js';
import { errField, reasonHtml } from './entry-view.js';
import { blankHome } from './screen-new.js';
import { mountPhotos, photoSlot, photosForSave } from './photos.js';
import { askDuplicate, dupWarning, joinChanges, joinedOnly } from './visit-duplicates.js';

/** Form of an existing entry, from the records on this phone. */
async function formFromRecords(id) {
  const v = await store.get('visit', id);
  if (!v) return null;
  const all = await store.kids(id);
  const probs = all.filter((r) => r.entity === 'problem');
  const hv = all.find((r) => r.entity === 'home_visit');
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

export async function viewVisit(id) {
  // The enterprise list is needed only once the cadre searches: it loads meanwhile.
  S.entLoading = loadEnterprises();
  // The form in memory is the newest (a new one, or one being redrawn); else the draft.
  const draft = S.form?.visitId === id && !S.form.saved ? null : await store.getDraft(id);
  let F = S.form?.visitId === id && !S.form.saved ? S.form : draft?.form;
  if (!F) F = await formFromRecords(id);
  if (!F) { go('#/home'); return; }
  S.form = F;
  const rec = await store.get('visit', id);
  const kids = rec ? await store.kids(id) : [];
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
    <fieldset class="card"><legend>${t('photos')}</legend>${photoSlot('visit', F.visitId)}</fieldset>
    <div class="row"><button type="button" class="btn" id="geo">${t('add_location')}</button><span id="geost" class="small muted">${F.lat != null ? `${F.lat.toFixed(4)}, ${F.lng.toFixed(4)}` : ''}</span></div>
    ${rec && !joinedOnly(rec) ? `<button type="button" class="btn danger block" id="del">${t('delete')}</button>` : ''}
    <div class="savebar"><button class="btn primary block big" type="submit" id="save" data-testid="save">${t('save')}</button></div>
  </form>`;
  renderEntBox(ent);
  renderProblems();
  bindForm();
  homeChecks();
  mountPhotos(main());
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
    <label>${t('notes')}<textarea data-f="home.notes" rows="2">${h(H.notes)}</textarea></label>${photoSlot('home_visit', H.id, true)}</fieldset>`;
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
    dupWarning(box, ent.id);
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
    ${photoSlot('problem', p.id)}<button type="button" class="btn small danger" data-rm="${i}">${t('remove')}</button></div>`).join('');
  $('#probs').querySelectorAll('.prob').forEach((el) => {
    const p = F.problems[Number(el.dataset.i)];
    el.querySelectorAll('[data-p]').forEach((inp) => { inp.oninput = () => { p[inp.dataset.p] = inp.value; scheduleDraft(); }; });
    el.querySelectorAll('[data-tagp]').forEach((b) => { b.onclick = () => { p.tag = p.tag === b.dataset.tagp ? null : b.dataset.tagp; renderProblems(); scheduleDraft(); }; });
    el.querySelector('[data-rm]').onclick = () => { F.removed.push(p.id); F.problems.splice(Number(el.dataset.i), 1); renderProblems(); scheduleDraft(); };
  });
  mountPhotos($('#probs'));
}

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
      const kids = await store.kids(F.visitId);
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
  const dup = await askDuplicate(F); // the same meeting another cadre recorded?
  if (dup === 'cancel' || S.form !== F) return;
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
    consultations: F.method === 'outreach' ? Number(F.consultations) || 0 : 0, notes: F.notes || '', lat: F.lat, lng: F.lng,
    ...(F.dupSeparate?.length ? { separate_from: F.dupSeparate } : {}) } });
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
  const joined = dup?.join ? joinChanges(F, changes, dup.join) : null;
  const t0 = performance.now();
  try {
    await store.save(joined?.changes || changes, { dropDrafts: [F.visitId], photos: photosForSave(joined?.form || F, joined?.changes || changes) });
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
  toast(t(joined ? 'dup_joined' : 'saved'));
  afterSave();
  go('#/home');
}
