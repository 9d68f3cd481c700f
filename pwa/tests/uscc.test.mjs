import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkUscc, normalizeUscc, USCC_CHARS, checkRic, phoneOk } from '../js/uscc.js';
import { searchEnterprises } from '../js/search.js';

// Build a valid code from 17 characters with an independent implementation.
function withCheck(body) {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += USCC_CHARS.indexOf(body[i]) * (3 ** i % 31);
  return body + USCC_CHARS[(31 - (sum % 31)) % 31];
}

test('a well-known valid code passes', () => {
  assert.equal(checkUscc('91350100M000100Y43').status, 'ok');
  assert.equal(checkUscc(withCheck('91510104MA6C12345')).status, 'ok');
});

test('a wrong check character is a warning with the expected one', () => {
  const good = withCheck('91510104MA6C12345');
  const wrong = good.slice(0, 17) + (good[17] === '0' ? '1' : '0');
  const r = checkUscc(wrong);
  assert.equal(r.status, 'checksum');
  assert.equal(r.expected, good[17]);
});

test('shape checks while typing', () => {
  assert.equal(checkUscc('').status, 'empty');
  assert.equal(checkUscc('9151').status, 'partial');
  assert.equal(checkUscc('9151I').status, 'badchar');
  assert.equal(normalizeUscc('ｍａ 6c'), 'MA6C');
});

const ents = [
  { id: 1, name: '成都红星精密机械有限公司', initials: 'cdhxjjjxyxgs' },
  { id: 2, name: '四川蓝天食品有限责任公司', initials: 'scltspyxzrgs' },
  { id: 3, name: '成都市锦江区小微纺织厂', initials: 'cdsjjqxwfzc' },
];

test('search by name fragment and by pinyin initials', () => {
  assert.deepEqual(searchEnterprises(ents, '机械').map((e) => e.id), [1]);
  assert.equal(searchEnterprises(ents, 'cdjx')[0].id, 1);
  assert.deepEqual(searchEnterprises(ents, 'SCLT').map((e) => e.id), [2]);
  assert.equal(searchEnterprises(ents, 'cd')[0].id !== 2, true);
  assert.deepEqual(searchEnterprises([{ id: 9, name: '成都机械厂' }], 'cdjx'), []);
});

test('resident ID number and phone checks', () => {
  assert.equal(checkRic('11010519491231002X'), 'ok');
  assert.equal(checkRic('110105194912310021'), 'checksum');
  assert.equal(checkRic('1101'), 'partial');
  assert.equal(checkRic('11010A'), 'bad');
  assert.ok(phoneOk('13800138000') && phoneOk('') && !phoneOk('12345'));
});
