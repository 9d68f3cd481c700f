// Screen: problem follow-up.

import { recordState } from './store.js';
import { label, t } from './i18n.js';
import { h, main, store } from './ui.js';
import { afterSave } from './status.js';
import { reasonText } from './entry-view.js';

// ---------- problem follow-up --------------------------------------------------------------------
const LADDER = ['enterprise', 'government', 'source'];
export async function viewProblems() {
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
