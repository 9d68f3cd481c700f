// Module service worker (Chromium, and others that support it): the shell, plus the
// outbox through the Background Sync API, so entries go out even after the tab is closed.
// Browsers find a new version by comparing THIS file's bytes (not its imports): bump
// FV_VERSION here and in sw-classic.js with every change of a shell file.
import './sw-shell.js';
import { backgroundSync } from './js/bg.js';

self.FV_VERSION = '2026.12.03-phone50k';

self.addEventListener('sync', (event) => {
  if (event.tag === 'outbox') event.waitUntil(backgroundSync());
});
