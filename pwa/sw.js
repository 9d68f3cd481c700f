// Module service worker (Chromium, and others that support it): the shell, plus the
// outbox through the Background Sync API, so entries go out even after the tab is closed.
import './sw-shell.js';
import { backgroundSync } from './js/bg.js';

self.addEventListener('sync', (event) => {
  if (event.tag === 'outbox') event.waitUntil(backgroundSync());
});
