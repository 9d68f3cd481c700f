// Offline enterprise search: by a fragment of the Chinese name, or by pinyin initials
// ("cdjx" finds 成都…机械…). The server sends each enterprise's `initials` (its own
// reading) and `initials_any` (every reading of a polyphonic character, "[cz][hjg]q" for
// 长虹桥), so `cchq` and `zhq` both find it. For enterprises made on this phone, not yet
// synced, the initials come from `initials_table` (letter -> common characters) in the
// reference data: see setInitialsTable.

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
const cache = new WeakMap();
const positions = (ent) => {
  let p = cache.get(ent);
  if (!p) { p = initialsOf(ent); cache.set(ent, p); }
  return p;
};
// Does q match the positions from `at` on, letter by letter?
const runAt = (q, pos, at) => q.length <= pos.length - at && [...q].every((c, i) => pos[at + i].includes(c));

const fold = (s) => String(s || '')
  .replace(/[\uFF01-\uFF5E]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0))
  .replace(/\s+/g, '')
  .toLowerCase();

function subsequence(needle, hay) {
  let i = 0;
  for (const c of hay) if (i < needle.length && c.includes(needle[i])) i += 1;
  return i === needle.length;
}

// Fewest in-order pieces of `q` found as runs in `ini` (positions: the letters each
// character can be read with): "cdjx" in "cdhxjjjxyxgs" is "cd" + "jx" = 2, a better
// match than one that needs every letter apart.
function pieces(q, ini) {
  const memo = new Map();
  const f = (i, p) => {
    if (i === q.length) return 0;
    const k = i * 64 + p;
    if (memo.has(k)) return memo.get(k);
    let best = Infinity;
    for (let j = p; j < ini.length; j++) {
      let n = 0;
      while (i + n < q.length && j + n < ini.length && ini[j + n].includes(q[i + n])) {
        n += 1;
        best = Math.min(best, 1 + f(i + n, j + n));
      }
    }
    memo.set(k, best);
    return best;
  };
  return f(0, 0);
}

/** Score one enterprise against a folded query; 0 means no match. */
export function score(ent, q) {
  const name = fold(ent.name);
  if (!q) return 1;
  if (name === q) return 100;
  if (name.startsWith(q)) return 90;
  if (name.includes(q)) return 80;
  const ini = /^[a-z]+$/.test(q) ? positions(ent) : [];
  if (ini.length) {
    if (runAt(q, ini, 0)) return 70;
    for (let at = 1; at + q.length <= ini.length; at++) if (runAt(q, ini, at)) return 60;
    if (q.length <= 12 && ini.length <= 63) {
      const n = pieces(q, ini);
      if (n < Infinity) return Math.max(21, 50 - 5 * n + (ini[0].includes(q[0]) ? 3 : 0));
    } else if (subsequence(q, ini)) return 40;
  }
  if (ent.uscc && fold(ent.uscc).includes(q) && q.length >= 4) return 50;
  if (q.length > 1 && subsequence(q, [...name])) return 20; // 成机 finds 成都…机械
  return 0;
}

export function searchEnterprises(list, query, limit = 30) {
  const q = fold(query);
  return list
    .map((e) => ({ e, s: score(e, q) }))
    .filter((x) => x.s > 0)
    .sort((a, b) => b.s - a.s || String(a.e.name).length - String(b.e.name).length)
    .slice(0, limit)
    .map((x) => x.e);
}
