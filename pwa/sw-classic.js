// Classic service worker for browsers without module workers (they lack Background
// Sync too): the shell only; the page's own triggers send the outbox.
self.FV_VERSION = '2026.12.03-phone50k';
importScripts('/sw-shell.js');
