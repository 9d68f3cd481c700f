// How an entry (a visit with its children) is shown: its state, its reason, its row.

import { recordState } from './store.js';
import { getLang, label, t } from './i18n.js';
import { fmtTime, h, S, store } from './ui.js';

// ---------- entries as shown -------------------------------------------------------------------
function isMine(rec) {
  if (rec.mine) return true;
  const u = S.user;
  const by = rec.data?.created_by;
  // A visit the cadre joined (the same meeting, recorded by another cadre) is theirs too.
  if (u && (rec.data?.participants || []).includes(u.username)) return true;
  return !!u && by != null && (by === u.id || by === u.username);
}

export function entryState(visit, children) {
  const states = [visit, ...children].map(recordState);
  for (const s of ['error', 'conflict', 'sending', 'local']) if (states.includes(s)) return s;
  return 'synced';
}

export async function visitsWithChildren() {
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
export function reasonText(err) {
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
export const errField = (err) => (err?.code === 'entry_rejected' ? err.cause?.field : err?.field) || null;
export function reasonHtml(err) {
  const msg = err.code === 'entry_rejected' ? err.cause?.message : err.message;
  return `<b>${h(reasonText(err))}</b>${msg && getLang() !== 'zh' ? `<br><small class="muted">${h(msg)}</small>` : ''}`;
}
/** A conflict in the cadre's language. */
function conflictText(c) {
  if (c.code === 'stage_conflict' && c.server_value) return t('conflict_msg', { v: label('stages', c.server_value) });
  return t('st_conflict');
}

export function entryRow({ v, kids, ent }) {
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
