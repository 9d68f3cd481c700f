// Screen: my entries.

import { t } from './i18n.js';
import { $, main, store } from './ui.js';
import { entriesOf, entryRow, entryState } from './entry-view.js';

const PAGE = 12; // docs/pwa.md, "Indexes"

// ---------- my entries -----------------------------------------------------------------------
// What needs attention, then what is on the phone (index st), then the rest newest
// first, a page at a time (index my).
export async function viewEntries() {
  const rank = { error: 0, conflict: 0, local: 1, sending: 1, synced: 2 };
  let n = 1; // pages shown: "more" reads from the top
  const read = () => store.rows('my', { dir: 'prev', limit: PAGE * n });
  const [pending, rows] = await Promise.all([store.unsynced(), read()]);
  const unsynced = new Set(pending);
  const [first, items] = await Promise.all([entriesOf(pending, true), entriesOf(rows, false, unsynced)]);
  first.sort((a, b) => rank[entryState(a.v, a.kids)] - rank[entryState(b.v, b.kids)]);
  const shown = new Set();
  const fresh = (list) => list.filter((x) => !shown.has(x.v.id) && shown.add(x.v.id));
  const all = [...fresh(first), ...fresh(items)];
  main().innerHTML = `<h1>${t('entries')}</h1>${all.length ? '' : `<p class="muted">${t('no_entries')}</p>`}<ul class="list" id="elist">${all.map(entryRow).join('')}</ul>
    <button class="btn block" id="emore" data-testid="more"${rows.length === PAGE ? '' : ' hidden'}>${t('more')}</button>`;
  $('#emore').onclick = async () => {
    n += 1;
    const next = (await read()).slice(PAGE * (n - 1));
    $('#elist').insertAdjacentHTML('beforeend', fresh(await entriesOf(next, false, unsynced)).map(entryRow).join(''));
    $('#emore').hidden = next.length < PAGE;
  };
}
