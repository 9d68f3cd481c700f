// The PouchDB anchor of bench/sync_bench.py: the same visits (one document per visit with
// its two problems, the unit PouchDB and CouchDB users count in) replicated from
// DEVICES local PouchDBs to a PouchDB server (express-pouchdb on LevelDB), then pulled
// by a fresh PouchDB. Prints one JSON object.
//
// Not a dependency of the project: install it outside the tree and point NODE_PATH at it:
//   mkdir -p /tmp/pouch && (cd /tmp/pouch && npm install express express-pouchdb pouchdb-node)
//   NODE_PATH=/tmp/pouch/node_modules node bench/pouchdb_anchor.mjs server <dir> <port>
//   NODE_PATH=/tmp/pouch/node_modules node bench/pouchdb_anchor.mjs client <url> <visits> <devices> <concurrency> <dir>
// bench/sync_bench.py --pouchdb /tmp/pouch/node_modules runs both for you.
import { createRequire } from 'node:module';
import path from 'node:path';
import fs from 'node:fs';

const require = createRequire(path.join(process.env.NODE_PATH || '.', 'x.js'));
const PouchDB = require('pouchdb-node');
const [mode, ...args] = process.argv.slice(2);

if (mode === 'server') {
  const [dir, port] = args;
  fs.mkdirSync(dir, { recursive: true });
  const express = require('express');
  const Server = PouchDB.defaults({ prefix: dir + path.sep });
  const app = express();
  app.use('/', require('express-pouchdb')(Server, { mode: 'minimumForPouchDB', logPath: path.join(dir, 'log.txt') }));
  app.listen(Number(port), '127.0.0.1', () => console.log('listening'));
} else if (mode === 'client') {
  const [url, visitsArg, devicesArg, concurrencyArg, dir] = args;
  const visits = Number(visitsArg);
  const devices = Number(devicesArg);
  const concurrency = Number(concurrencyArg);
  const perDevice = Math.floor(visits / devices);
  const day = (n) => new Date(Date.UTC(2026, 0, 1) + (n % 300) * 86400000).toISOString().slice(0, 10);
  fs.mkdirSync(dir, { recursive: true });
  const locals = [];
  for (let d = 0; d < devices; d++) {
    const db = new PouchDB(path.join(dir, `device${d}`));
    const docs = [];
    for (let n = 0; n < perDevice; n++) {
      docs.push({
        _id: `${d}-${n}-${Math.random().toString(36).slice(2)}`,
        type: 'visit',
        method: ['symposium', 'interview', 'report', 'outreach'][n % 4],
        visited_at: `${day(n)}T10:00:00+08:00`,
        district_code: '510104',
        workers_met: 5 + (n % 40),
        workers_by_group: { migrant: n % 5 },
        materials: n % 10,
        notes: '基准测试记录',
        problems: [
          { id: `p${n}a`, category: 'wages', tag: 'urgent', description: '职工反映的问题' },
          { id: `p${n}b`, category: 'housing', tag: 'urgent', description: '职工反映的问题' },
        ],
      });
    }
    for (let i = 0; i < docs.length; i += 500) await db.bulkDocs(docs.slice(i, i + 500));
    locals.push(db);
  }
  const remote = `${url}/visits`;
  await new PouchDB(remote).info(); // creates it
  const started = performance.now();
  const queue = [...locals];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (queue.length) await queue.shift().replicate.to(remote);
  }));
  const pushS = (performance.now() - started) / 1000;
  const pushed = (await new PouchDB(remote).info()).doc_count;
  const fresh = new PouchDB(path.join(dir, 'fresh'));
  const t1 = performance.now();
  await fresh.replicate.from(remote, { batch_size: 2000 / 3 | 0 });
  const pullS = (performance.now() - t1) / 1000;
  const pulled = (await fresh.info()).doc_count;
  console.log(JSON.stringify({
    peer: 'PouchDB ' + (PouchDB.version || '') + ' to express-pouchdb (LevelDB), default replication batches',
    push: { visits: pushed, seconds: +pushS.toFixed(2), visits_per_s: Math.round(pushed / pushS), records_per_s: Math.round(3 * pushed / pushS) },
    pull: { visits: pulled, seconds: +pullS.toFixed(2), visits_per_s: Math.round(pulled / pullS), records_per_s: Math.round(3 * pulled / pullS) },
  }));
} else {
  console.error('usage: pouchdb_anchor.mjs server <dir> <port> | client <url> <visits> <devices> <concurrency> <dir>');
  process.exit(2);
}
