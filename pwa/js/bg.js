// Background Sync from the service worker: the same engine and store as the page.
import { IdbBackend } from './db.js';
import { Store } from './store.js';
import { SyncEngine } from './sync.js';

export async function backgroundSync() {
  // An open, visible page sends by itself (it has the same triggers): one sender is enough
  // on a weak network, where every extra pull costs seconds.
  const wins = await self.clients.matchAll({ type: 'window' });
  if (wins.some((c) => c.visibilityState === 'visible')) return;
  const store = new Store(new IdbBackend());
  // No timers in a worker that may be stopped any moment: the browser retries for us.
  const engine = new SyncEngine({ store, setTimer: () => 0, clearTimer: () => {} });
  const r = await engine.sync('background');
  if (typeof BroadcastChannel !== 'undefined') {
    const ch = new BroadcastChannel('fieldvisit');
    ch.postMessage({ type: 'synced', ok: r.ok });
    ch.close();
  }
  // Throwing asks the browser to try again later; pointless when signed out.
  if (!r.ok && !engine.status.authNeeded && !engine.status.outdated) throw new Error(`sync failed: ${r.error?.code}`);
}
