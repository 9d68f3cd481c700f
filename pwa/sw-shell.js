/* The app shell worker: precache a versioned shell, serve it offline, swap versions
 * only when the page asks (after it has saved its drafts). A plain script with no
 * import/export, so both the module worker (sw.js) and the classic one
 * (sw-classic.js) can load it. It never touches IndexedDB: queued entries and drafts
 * live there and survive every update. */
/* eslint-env serviceworker */
// The version is set by the main worker script (sw.js / sw-classic.js): browsers
// re-check only the main script's bytes for updates, so that is where it lives.
// Read lazily: in a module worker the main script's body runs after its imports.
const version = () => self.FV_VERSION || 'dev';
const cacheName = () => `fv-shell-${version()}`;
const SHELL = [
  '/', '/app.css', '/manifest.webmanifest',
  '/js/app.js', '/js/db.js', '/js/store.js', '/js/sync.js', '/js/outbox.js', '/js/i18n.js', '/js/uscc.js',
  '/js/search.js', '/js/bg.js',
  '/icons/icon-32.png', '/icons/icon-192.png', '/icons/icon-512.png', '/icons/maskable-512.png', '/icons/apple-touch-icon.png',
];

// Static routes, where the browser has the static routing API: API calls go straight to
// the network and the shell's files come from this version's cache, neither waking this
// worker. Besides saving a worker start per request, it keeps a retired version asleep
// while a new one takes over: a request that restarted the old worker just as it was
// being retired held the update back. Navigations still come to the fetch handler below.
function staticRoutes() {
  const network = ['/api/*', '/healthz'].map((pathname) => ({ condition: { urlPattern: { pathname } }, source: 'network' }));
  const shell = SHELL.filter((u) => u !== '/').map((pathname) => ({
    condition: { urlPattern: { pathname }, requestMethod: 'GET' }, source: { cacheName: cacheName() },
  }));
  return [...network, ...shell];
}

self.addEventListener('install', (event) => {
  // A promise-returning API rejects rather than throws: the catch covers every failure.
  if (typeof event.addRoutes === 'function') {
    event.waitUntil(event.addRoutes(staticRoutes()).catch((err) => console.warn('static routes not added:', err?.message)));
  }
  event.waitUntil((async () => {
    const cache = await caches.open(cacheName());
    // cache: 'reload' bypasses the HTTP cache so a new version never mixes in old files.
    await cache.addAll(SHELL.map((u) => new Request(u, { cache: 'reload' })));
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key.startsWith('fv-shell-') && key !== cacheName()) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  const msg = event.data || {};
  if (msg.type === 'SKIP_WAITING') self.skipWaiting();
  if (msg.type === 'VERSION' && event.ports[0]) event.ports[0].postMessage({ version: version() });
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith('/api/') || url.pathname === '/healthz') return;
  event.respondWith((async () => {
    const cache = await caches.open(cacheName());
    if (req.mode === 'navigate') {
      // The shell answers every navigation: the app starts with no network at all.
      const hit = await cache.match('/');
      if (hit) return hit;
    } else {
      const hit = await cache.match(req, { ignoreSearch: true });
      if (hit) return hit;
    }
    return fetch(req);
  })());
});
