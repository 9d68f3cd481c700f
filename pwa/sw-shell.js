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
  '/', '/offline.html', '/app.css', '/manifest.webmanifest',
  '/js/app.js', '/js/db.js', '/js/store.js', '/js/sync.js', '/js/outbox.js', '/js/i18n.js', '/js/uscc.js',
  '/js/search.js', '/js/bg.js', '/js/ui.js', '/js/status.js', '/js/router.js', '/js/form.js', '/js/entry-view.js',
  '/js/screen-login.js', '/js/screen-home.js', '/js/screen-new.js', '/js/screen-visit.js', '/js/screen-entries.js',
  '/js/screen-problems.js', '/js/screen-settings.js', '/js/updates.js',
  '/js/tus.js', '/js/uploads.js', '/js/imaging.js', '/js/photos.js', '/js/signature.js', '/js/visit-duplicates.js',
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

// The field app is one page with hash routes: these are its only navigations. Every
// other page of the origin (sign-in, dashboard, review, briefings, problems, evaluation,
// admin...) belongs to the server and goes to the network, online or not: the worker's
// scope is '/' so that the app can start offline at its root, not to own the site.
const APP_PAGES = new Set(['/', '/index.html']);
const SHELL_FILES = new Set(SHELL);

// A server page with no network: a small page that says so and leads to the field app,
// instead of the browser's error page (or, worse, the app's shell in the page's place).
async function offlinePage() {
  const hit = await caches.match('/offline.html', { cacheName: cacheName() });
  if (!hit) return Response.error();
  return new Response(await hit.blob(), { status: 503, statusText: 'Offline', headers: { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' } });
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith('/api/') || url.pathname === '/healthz') return;
  if (req.mode === 'navigate') {
    if (APP_PAGES.has(url.pathname) && req.method === 'GET') {
      // The shell answers the app's own page: the app starts with no network at all.
      event.respondWith((async () => (await caches.match('/', { cacheName: cacheName() })) || fetch(req))());
    } else {
      // A server page (or a form posted by one): straight from the network, as if no
      // worker were here; only a failed fetch is answered, with the offline page.
      event.respondWith(fetch(req).catch(offlinePage));
    }
    return;
  }
  if (req.method !== 'GET' || !SHELL_FILES.has(url.pathname)) return;
  event.respondWith((async () => (await caches.match(req, { cacheName: cacheName(), ignoreSearch: true })) || fetch(req))());
});
