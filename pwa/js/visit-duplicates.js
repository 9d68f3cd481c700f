// The duplicate-visit warning, offline: visits to the chosen enterprise this phone knows
// of (its pulled scope and its own entries, queued or synced) from the last N days, and
// before saving the question whether it is the same meeting. If it is, the cadre joins
// that visit as a participant instead of recording a second one (docs/pwa.md).

import { label, t } from './i18n.js';
import { fmtTime, h, S, store } from './ui.js';

const DAY = 86400000;
let asking = false;
const days = () => S.ref?.duplicate_visit_days ?? 7;

/** A name for a username: the reference data's people, else the username itself. */
function nameOf(username) {
  if (username === S.user?.username) return t('me');
  return (S.ref?.people || []).find((p) => p.username === username)?.name || username;
}

/** Follow canonical_id through the records and the reference list (a merged enterprise). */
function canonicalOf(id, ents) {
  for (let i = 0; id && i < 5 && ents.get(id)?.canonical_id; i++) id = ents.get(id).canonical_id;
  return id;
}

/**
 * Known visits to enterprise `entId` from the last N days, newest first, without the
 * form's own visit: [{id, who, mine, joined, at, method}]. `mine`: recorded by this cadre;
 * `joined`: this cadre already takes part.
 */
export async function knownVisits(entId, ownId) {
  const n = days();
  if (!entId || !(n > 0)) return [];
  const all = await store.list();
  const ents = new Map((S.ref?.enterprises || []).map((e) => [e.id, e]));
  for (const r of all) if (r.entity === 'enterprise') ents.set(r.id, r.data);
  const target = canonicalOf(entId, ents);
  const since = Date.now() - n * DAY;
  const me = S.user?.username;
  return all
    .filter((r) => r.entity === 'visit' && r.id !== ownId && !r.remote_deleted && !r.data.canonical_id
      && r.data.enterprise_id && canonicalOf(r.data.enterprise_id, ents) === target
      && new Date(r.data.visited_at).getTime() >= since)
    .map((r) => {
      const people = r.data.participants || [];
      const mine = !!r.mine || (r.data.created_by != null && r.data.created_by === S.user?.id);
      const who = (people.length ? people : mine ? [me] : []).map(nameOf).join('、') || '—';
      return { id: r.id, mine, joined: mine || people.includes(me), at: r.data.visited_at, method: r.data.method, who };
    })
    .sort((a, b) => String(b.at).localeCompare(String(a.at)));
}

const row = (v) => `<li data-testid="dup-visit" data-id="${h(v.id)}"><b>${h(v.who)}</b> · ${h(fmtTime(v.at))} · ${h(label('methods', v.method))}${v.joined ? ` <span class="muted small">${t('dup_yours')}</span>` : ''}</li>`;

/** Under the chosen enterprise: the visits to it the phone knows of (nothing when none). */
export async function dupWarning(box, entId) {
  const F = S.form;
  if (!box || !F || (await store.get('visit', F.visitId).catch(() => true))) return; // a saved entry is not asked again
  const list = await knownVisits(entId, F.visitId).catch(() => []);
  if (!list.length || S.form !== F || F.enterprise_id !== entId) return;
  box.insertAdjacentHTML('beforeend', `<div class="dupwarn" data-testid="dup-warning" role="status">
    <p><b>⚠ ${t('dup_title', { n: days(), c: list.length })}</b></p><ul>${list.map(row).join('')}</ul>
    ${list.some((v) => !v.joined) ? `<p class="small muted">${t('dup_hint')}</p>` : ''}</div>`);
}

/**
 * Before saving a new visit to an enterprise another cadre visited lately: is it the same
 * meeting? Resolves null (save as a new visit), 'cancel' (back to the form) or
 * {join: visit id}. Answered once per form: "different" is not asked again.
 */
export async function askDuplicate(F) {
  let list;
  try {
    if (!F.enterprise_id || F.newEnt || F.dupAnswer === 'different' || (await store.get('visit', F.visitId))) return null;
    list = (await knownVisits(F.enterprise_id, F.visitId)).filter((v) => !v.joined);
  } catch {
    return null; // a warning that cannot be read never keeps a visit from being saved
  }
  if (!list.length) return null;
  if (asking) return 'cancel'; // a second tap on 保存 while the question is open
  asking = true;
  const el = document.createElement('div');
  el.className = 'dupsheet';
  el.dataset.testid = 'dup-ask';
  el.innerHTML = `<div class="panel" role="dialog" aria-modal="true" aria-labelledby="dupq"><h2 id="dupq">${t('dup_ask')}</h2>
    <p>${t('dup_ask_text')}</p><p class="small muted">${t('dup_kids')}</p>
    ${list.map((v) => `<p class="small">${h(v.who)} · ${h(fmtTime(v.at))} · ${h(label('methods', v.method))}</p>
      <button type="button" class="btn primary block" data-testid="dup-join" data-id="${h(v.id)}">${t('dup_join', { who: h(v.who) })}</button>`).join('')}
    <button type="button" class="btn block" data-testid="dup-different">${t('dup_different')}</button>
    <button type="button" class="btn block" data-testid="dup-cancel">${t('dup_cancel')}</button></div>`;
  document.body.append(el);
  el.querySelector('button').focus();
  return new Promise((resolve) => {
    const leave = () => { el.remove(); asking = false; resolve('cancel'); }; // the cadre went elsewhere
    window.addEventListener('hashchange', leave, { once: true });
    el.onclick = (e) => {
      const b = e.target.closest('button');
      if (!b) return;
      window.removeEventListener('hashchange', leave);
      el.remove();
      asking = false;
      if (b.dataset.testid === 'dup-join') resolve({ join: b.dataset.id });
      else if (b.dataset.testid === 'dup-different') {
        // Sent with the visit (separate_from): the dedup workers then never merge them.
        F.dupAnswer = 'different'; F.dupSeparate = list.map((v) => v.id); resolve(null);
      } else resolve('cancel');
    };
  });
}

/** A visit another cadre recorded and this cadre joined: theirs to delete, not ours. */
export const joinedOnly = (rec) => !rec.mine && rec.data.created_by != null && rec.data.created_by !== S.user?.id
  && (rec.data.participants || []).includes(S.user?.username);

/**
 * The save of a form that joins visit `target`: no new visit; this cadre is added to the
 * target's participants, and what the form adds to the meeting (problems, a home visit,
 * photos) goes onto the target. Its counts and notes stay as the other cadre recorded
 * them: the same meeting met the same workers (dedup merges take the maximum likewise).
 */
export function joinChanges(F, changes, target) {
  const out = [{ entity: 'visit', id: target, join: S.user.username }];
  for (const ch of changes) {
    if (ch.entity === 'visit' && ch.id === F.visitId) continue;
    out.push(ch.data?.visit_id === F.visitId ? { ...ch, data: { ...ch.data, visit_id: target } } : ch);
  }
  const photos = (F.photos || []).map((p) => (p.record_type === 'visit' && p.record_id === F.visitId ? { ...p, record_id: target } : p));
  return { changes: out, form: { ...F, photos } };
}
