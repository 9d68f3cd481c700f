// Background Sync from the service worker: the same engine and store as the page.
import { IdbBackend } from './db.js';
import { Store } from './store.js';
import { SyncEngine } from './sync.js';
import { PhotoUploader, photosWaiting } from './uploads.js';

export async function backgroundSync() {
  // An open page sends by itself (start, online, visibility, timer): one sender is enough
  // on a weak network, where every extra pull costs seconds. A long sync event would also
  // hold back the activation of a new app version while the page waits for it.
  const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  if (wins.length) return;
  const store = new Store(new IdbBackend());
  // No timers in a worker that may be stopped any moment: the browser retries for us.
  const engine = new SyncEngine({ store, setTimer: () => 0, clearTimer: () => {}, timeoutMs: 25000 });
  const r = await engine.sync('background');
  // Then the photos, within the time the browser gives a sync event (a few minutes); what
  // is left goes in the next one (the throw below asks for it) or when the app opens.
  let photosLeft = 0;
  if (r.ok) {
    await new PhotoUploader({ store, setTimer: () => 0, clearTimer: () => {}, timeoutMs: 25000 }).kick({ deadline: Date.now() + 150000 });
    photosLeft = (await photosWaiting(store)).count;
  }
  if (typeof BroadcastChannel !== 'undefined') {
    const ch = new BroadcastChannel('fieldvisit');
    ch.postMessage({ type: 'synced', ok: r.ok });
    ch.close();
  }
  // Throwing asks the browser to try again later; pointless when signed out.
  if (!r.ok && !engine.status.authNeeded && !engine.status.outdated) throw new Error(`sync failed: ${r.error?.code}`);
  if (photosLeft) throw new Error(`${photosLeft} photos left`);
}
