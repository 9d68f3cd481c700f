// Unified social credit code (统一社会信用代码, GB 32100-2015) check character.

export const USCC_CHARS = '0123456789ABCDEFGHJKLMNPQRTUWXY';
// 3^(i-1) mod 31 for i = 1..17
const WEIGHTS = Array.from({ length: 17 }, (_, i) => {
  let w = 1;
  for (let k = 0; k < i; k++) w = (w * 3) % 31;
  return w;
});

/** Upper-case, full-width to half-width, spaces removed. */
export function normalizeUscc(s) {
  return String(s || '')
    .replace(/[\uFF01-\uFF5E]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0))
    .replace(/[\s\u3000-]/g, '')
    .toUpperCase();
}

/**
 * Check a code. Returns {status, expected?}:
 *   empty | partial (still typing) | badchar | ok | checksum (wrong check char: a warning).
 */
export function checkUscc(raw) {
  const code = normalizeUscc(raw);
  if (!code) return { status: 'empty', code };
  for (const c of code) if (!USCC_CHARS.includes(c)) return { status: 'badchar', code, char: c };
  if (code.length < 18) return { status: 'partial', code };
  if (code.length > 18) return { status: 'long', code };
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += USCC_CHARS.indexOf(code[i]) * WEIGHTS[i];
  const expected = USCC_CHARS[(31 - (sum % 31)) % 31];
  return code[17] === expected ? { status: 'ok', code } : { status: 'checksum', code, expected };
}

/** Resident ID number (GB 11643): 17 digits and an ISO 7064 MOD 11-2 check character. */
export function checkRic(raw) {
  const n = normalizeUscc(raw);
  if (!n) return 'empty';
  if (!/^\d{0,17}[\dX]?$/.test(n)) return 'bad';
  if (n.length < 18) return 'partial';
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(n[i]) * (2 ** (17 - i) % 11);
  return '10X98765432'[sum % 11] === n[17] ? 'ok' : 'checksum';
}

/** Mainland mobile number, as the server checks it. */
export const phoneOk = (s) => !s || /^(\+?86)?1[3-9]\d{9}$/.test(String(s).replace(/[\s-]/g, ''));
