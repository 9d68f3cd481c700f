// How an entry (a visit with its children) is shown: its state, its reason, its row.

import { recordState } from './store.js';
import { getLang, label, t } from './i18n.js';
import { fmtTime, h, S, store } from './ui.js';

// ---------- entries as shown -------------------------------------------------------------------
export function entryState(visit, children) {
  const states = [visit, ...children].map(recordState);
  for (const s of ['error', 'conflict', 'sending', 'local']) if (states.includes(s)) return s;
  return 'synced';
}

let refs = null;
const refEnt = (id) => {
  if (refs?.of !== S.ref) refs = { of: S.ref, m: new Map((S.ref?.enterprises || []).map((e) => [e.id, e])) };
  return refs.m.get(id) || null;
};
const newest = (a, b) => String(b.v.data.visited_at).localeCompare(String(a.v.data.visited_at));
// The entries of these visits as shown (Store.entries), newest first; `mine`: only the
// cadre's. Given `unsynced` (Store.unsynced), children are read only where they show.
export const entriesOf = async (visits, mine, unsynced) => (await store.entries(visits, {
  ref: refEnt, user: mine ? S.user : undefined, lean: unsynced && ((v, e) => !unsynced.has(v.id) && e?.name),
})).sort(newest);
/** The cadre's entries with something unsynced (`rank` 0: needing attention). */
export const unsyncedEntries = async (rank) => entriesOf(await store.unsynced(rank), true);

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
