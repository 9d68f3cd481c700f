// Screen: my entries.

import { t } from './i18n.js';
import { main } from './ui.js';
import { entryRow, entryState, visitsWithChildren } from './entry-view.js';

// ---------- my entries -----------------------------------------------------------------------
export async function viewEntries() {
  const items = await visitsWithChildren();
  // What needs the cadre's attention comes first, then what is still on the phone.
  const rank = { error: 0, conflict: 0, local: 1, sending: 1, synced: 2 };
  items.sort((a, b) => rank[entryState(a.v, a.kids)] - rank[entryState(b.v, b.kids)]);
  main().innerHTML = `<h1>${t('entries')}</h1>${items.length ? `<ul class="list">${items.map(entryRow).join('')}</ul>` : `<p class="muted">${t('no_entries')}</p>`}`;
}
