// Offline enterprise search by a fragment of the name or pinyin initials ("cdjx" finds
// 成都…机械…; docs/pwa.md, "Search"): the server's `initials` and `initials_any` ("[cz][hjg]q"
// for 长虹桥: `cchq` and `zhq` both find it); for names made here, setInitialsTable.

let charLetters = null; // char -> every initial it is read with

/** Take the reference data's table (letter -> characters) for names the phone made. */
export function setInitialsTable(table) {
  charLetters = new Map();
  for (const [letter, chars] of Object.entries(table || {})) {
    for (const c of chars) charLetters.set(c, (charLetters.get(c) || '') + letter);
  }
}

/** Per character of the name, the initials it can be read with (["cz", "hjg", "q"]). */
export function initialsOf(ent) {
  if (ent.initials_any) return [...ent.initials_any.matchAll(/\[([a-z0-9]+)\]|([a-z0-9])/g)].map((m) => m[1] || m[2]);
  if (ent.initials) return [...fold(ent.initials)];
  if (!charLetters) return [];
  const out = [];
  for (const c of fold(ent.name)) {
    if (/[a-z0-9]/.test(c)) out.push(c);
    else if (charLetters.has(c)) out.push(charLetters.get(c));
  }
  return out;
}
// Each enterprise's folded name, initials and their letters, worked out once per list.
const cache = new WeakMap();
const bits = (s) => { let m = 0; for (let i = 0; i < s.length; i++) { const k = s.charCodeAt(i) - 97; if (k >= 0 && k < 26) m |= 1 << k; } return m; };
const prep = (ent) => {
  let p = cache.get(ent);
  if (!p) {
    const name = fold(ent.name);
    const pos = initialsOf(ent);
    p = { name, pos, m: bits(pos.join('')), uscc: ent.uscc ? fold(ent.uscc) : '' };
    cache.set(ent, p);
  }
  return p;
};
// Does q match the positions from `at` on, letter by letter?
const runAt = (q, pos, at) => {
  if (q.length > pos.length - at) return false;
  for (let i = 0; i < q.length; i++) if (!pos[at + i].includes(q[i])) return false;
  return true;
};

const fold = (s) => String(s || '')
  .replace(/[\uFF01-\uFF5E]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0))
  .replace(/\s+/g, '')
  .toLowerCase();

function inOrder(needle, hay) {
  let at = 0;
  for (const c of needle) { at = hay.indexOf(c, at); if (at < 0) return false; at += c.length; }
  return true;
}

function subsequence(needle, hay) {
  let i = 0;
  for (const c of hay) if (i < needle.length && c.includes(needle[i])) i += 1;
  return i === needle.length;
}

// Fewest in-order pieces of `q` found as runs in `ini` (positions: the letters each
// character can be read with): "cdjx" in "cdhxjjjxyxgs" is "cd" + "jx" = 2, a better
// match than one that needs every letter apart. f[i][p]: q from i, ini from p.
let buf = new Float64Array(0);
function pieces(q, ini) {
  const w = ini.length + 1;
  if (buf.length < (q.length + 1) * w) buf = new Float64Array(13 * 64);
  const f = buf.fill(Infinity, 0, (q.length + 1) * w);
  for (let p = 0; p < w; p++) f[q.length * w + p] = 0;
  for (let i = q.length - 1; i >= 0; i--) {
    for (let p = ini.length - 1; p >= 0; p--) {
      let best = f[i * w + p + 1];
      for (let n = 0; i + n < q.length && p + n < ini.length && ini[p + n].includes(q[i + n]);) {
        n += 1;
        best = Math.min(best, 1 + f[(i + n) * w + p + n]);
      }
      f[i * w + p] = best;
    }
  }
  return f[0];
}

/** Score one enterprise against a folded query; 0 means no match. */
export function score(ent, q, qm = bits(q), letters = /^[a-z]+$/.test(q)) {
  const { name, pos: ini, m, uscc } = prep(ent);
  if (!q) return 1;
  if (name === q) return 100;
  if (name.startsWith(q)) return 90;
  if (name.includes(q)) return 80;
  if (letters && ini.length && (qm & m) === qm) {
    if (runAt(q, ini, 0)) return 70;
    for (let at = 1; at + q.length <= ini.length; at++) if (runAt(q, ini, at)) return 60;
    if (!subsequence(q, ini)) { /* no pieces either */ } else if (q.length <= 12 && ini.length <= 63) {
      const n = pieces(q, ini);
      if (n < Infinity) return Math.max(21, 50 - 5 * n + (ini[0].includes(q[0]) ? 3 : 0));
    } else return 40;
  }
  if (uscc.includes(q) && q.length >= 4) return 50;
  if (q.length > 1 && inOrder(q, name)) return 20; // 成机 finds 成都…机械
  return 0;
}

export function searchEnterprises(list, query, limit = 30) {
  const q = fold(query);
  const qm = bits(q);
  const letters = /^[a-z]+$/.test(q);
  // Best score first, then the shorter name: only the best scores' hits are sorted.
  const by = [];
  for (const e of list) { const s = score(e, q, qm, letters); if (s) (by[s] ||= []).push(e); }
  const out = [];
  for (let s = by.length - 1; s > 0 && out.length < limit; s--) {
    if (by[s]) out.push(...by[s].sort((a, b) => String(a.name).length - String(b.name).length));
  }
  return out.slice(0, limit);
}
