// Screen: choose how the visit was made; blank forms.

import { uuid } from './store.js';
import { t, vocab } from './i18n.js';
import { h, localInput, main, S } from './ui.js';
import { go } from './router.js';

// ---------- new visit: method ----------------------------------------------------------
export async function viewNew() {
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
export const blankHome = () => ({ id: uuid(), worker_name: '', phone: '', id_number: '', hardship: '', amount: '', notes: '' });
