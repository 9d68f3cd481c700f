import { test } from 'node:test';
import assert from 'node:assert/strict';
import { searchEnterprises, setInitialsTable, initialsOf } from '../js/search.js';

// As the server sends them (sync/pinyin.py): the name's own reading, and every reading.
const ents = [
  { id: 1, name: '成都长虹桥机械有限公司', initials: 'cdchqjxyxgs', initials_any: 'cd[cz][hjg]q[jw]x[yw][xw]g[sc]' },
  { id: 2, name: '重庆银行成都分行', initials: 'cqyhcdfh', initials_any: '[czt]qy[hx]cdf[hx]' },
  { id: 3, name: '成都华兴机械', initials: 'cdhxjx' },
];

test('every reading of a polyphonic character finds the name', () => {
  for (const q of ['cdchq', 'cdzhq', 'cchq', 'zhq', 'chq']) assert.equal(searchEnterprises(ents, q)[0]?.id, 1, q);
  for (const q of ['cqyh', 'zqyh', 'cqyx']) assert.equal(searchEnterprises(ents, q)[0]?.id, 2, q);
  assert.equal(searchEnterprises(ents, 'cdhxjx')[0].id, 3);
  assert.deepEqual(searchEnterprises(ents, 'zzz'), []);
});

test('a name made on the phone is indexed from the reference table, every reading', () => {
  setInitialsTable({ c: '长成重', z: '长重', d: '都', h: '虹行', x: '行', q: '桥庆' });
  const mine = { id: 9, name: '成都长虹桥' };
  assert.deepEqual(initialsOf(mine), ['c', 'd', 'cz', 'h', 'q']);
  assert.equal(searchEnterprises([mine], 'cdzhq')[0]?.id, 9);
  assert.equal(searchEnterprises([mine], 'cchq')[0]?.id, 9);
});
