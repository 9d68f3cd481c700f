// Offline enterprise search: by a fragment of the Chinese name, or by pinyin initials
// ("cdjx" finds 成都…机械…) from the `initials` field the server sends. No pinyin table.

const fold = (s) => String(s || '')
  .replace(/[\uFF01-\uFF5E]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0))
  .replace(/\s+/g, '')
  .toLowerCase();

function subsequence(needle, hay) {
  let i = 0;
  for (const c of hay) if (c === needle[i]) i += 1;
  return i === needle.length;
}

// Fewest in-order pieces of `q` found as runs in `ini`: "cdjx" in "cdhxjjjxyxgs" is
// "cd" + "jx" = 2, a better match than one that needs every letter apart.
function pieces(q, ini) {
  const memo = new Map();
  const f = (i, p) => {
    if (i === q.length) return 0;
    const k = i * 64 + p;
    if (memo.has(k)) return memo.get(k);
    let best = Infinity;
    for (let j = p; j < ini.length; j++) {
      let n = 0;
      while (i + n < q.length && ini[j + n] === q[i + n]) {
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
  const ini = fold(ent.initials);
  if (!q) return 1;
  if (name === q) return 100;
  if (name.startsWith(q)) return 90;
  if (name.includes(q)) return 80;
  if (/^[a-z]+$/.test(q) && ini) {
    if (ini.startsWith(q)) return 70;
    if (ini.includes(q)) return 60;
    if (q.length <= 12 && ini.length <= 63) {
      const n = pieces(q, ini);
      if (n < Infinity) return Math.max(21, 50 - 5 * n + (ini[0] === q[0] ? 3 : 0));
    } else if (subsequence(q, ini)) return 40;
  }
  if (ent.uscc && fold(ent.uscc).includes(q) && q.length >= 4) return 50;
  if (q.length > 1 && subsequence(q, name)) return 20; // 成机 finds 成都…机械
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
