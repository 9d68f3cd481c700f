// Classic service worker for browsers without module workers (they lack Background
// Sync too): the shell only; the page's own triggers send the outbox.
importScripts('/sw-shell.js');
