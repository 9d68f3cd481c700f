import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const dir = fileURLToPath(new URL('..', import.meta.url));
const read = (p) => readFileSync(join(dir, p), 'utf8');
const version = (p) => read(p).match(/FV_VERSION = '([^']+)'/)[1];

test('both workers carry the same version', () => {
  assert.equal(version('sw.js'), version('sw-classic.js'));
});

test('the precache list holds every module and icon, and they exist', () => {
  const shell = read('sw-shell.js');
  const list = [...shell.matchAll(/'(\/[^']*)'/g)].map((m) => m[1]).filter((p) => p !== '/' && !p.startsWith('/api'));
  for (const p of list.filter((x) => x !== '/healthz')) assert.ok(statSync(join(dir, p)).isFile(), p);
  for (const f of readdirSync(join(dir, 'js'))) assert.ok(list.includes(`/js/${f}`), `/js/${f} not precached`);
});

test('the app shell stays within 150 KB of HTML, JS and CSS', () => {
  const files = ['index.html', 'app.css', 'sw.js', 'sw-shell.js', 'sw-classic.js', 'manifest.webmanifest',
    ...readdirSync(join(dir, 'js')).map((f) => `js/${f}`)];
  const total = files.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  assert.ok(total <= 150 * 1024, `shell is ${total} bytes`);
});

test('nothing loads from another origin', () => {
  for (const f of ['index.html', 'app.css', ...readdirSync(join(dir, 'js')).map((x) => `js/${x}`)]) {
    assert.doesNotMatch(read(f), /(src|href)=["']https?:|@import\s+url\(["']?https?:|import .* from ['"]https?:/, f);
  }
});
