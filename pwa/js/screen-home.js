// Screen: home (new visit, drafts, progress, today).

import { label, t } from './i18n.js';
import { fmtTime, h, main, S, store } from './ui.js';
import { draftTimer, draftWriting } from './form.js';
import { entriesOf, entryRow, entryState, unsyncedEntries } from './entry-view.js';

const day = (d) => d.toISOString().slice(0, 10);

export async function viewHome() {
  // Only what shows is read: the cadre's visits dated around today (index my), those
  // made here today (index cl), then the exact day.
  const d0 = new Date();
  d0.setHours(0, 0, 0, 0);
  const [dated, made, att, pending, allDrafts, p] = await Promise.all([
    store.rows('my', { lo: day(new Date(d0 - 864e5)), hi: day(new Date(+d0 + 2 * 864e5)) }),
    store.rows('cl', { lo: d0.toISOString() }), unsyncedEntries(0), store.unsynced(), store.listDrafts(), store.getMeta('progress')]);
  const today = d0.toDateString();
  const todays = (await entriesOf([...dated, ...made.filter((r) => r.entity === 'visit')], true, new Set(pending))).filter((x) => new Date(x.v.data.visited_at).toDateString() === today || new Date(x.v.created_local || 0).toDateString() === today);
  const drafts = allDrafts.filter((d) => d.form);
  const attention = att.filter((x) => ['error', 'conflict'].includes(entryState(x.v, x.kids))).length;
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
