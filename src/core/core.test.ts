import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ERROR_CODES, UserError, errorBody, formatDuration, formatSize, idTime, isId, nameProblem, newId, normalizeEmail, parseDuration, parseSize } from './index.ts';

test('ids are prefixed, well-formed and sort by creation time', () => {
  const a = newId('app', 1_000);
  const b = newId('app', 1_000);
  const c = newId('app', 2_000);
  assert.match(a, /^app_[0-9a-z]{26}$/);
  assert.ok(a < b && b < c, 'strictly increasing within and across milliseconds');
  assert.equal(idTime(c), 2_000);
  assert.ok(isId(a, 'app'));
  assert.ok(!isId(a, 'org'));
  for (const bad of ['app_', 'app_' + 'u'.repeat(26), 'APP_' + '0'.repeat(26), 'xyz_' + '0'.repeat(26), '']) assert.ok(!isId(bad), bad);
  const ids = new Set(Array.from({ length: 10_000 }, () => newId('instance')));
  assert.equal(ids.size, 10_000);
});

test('durations', () => {
  const cases: Array<[string, number]> = [['30s', 30_000], ['5m', 300_000], ['1h', 3_600_000], ['7d', 604_800_000], ['250ms', 250], ['1h30m', 5_400_000], ['1.5s', 1500]];
  for (const [s, ms] of cases) assert.equal(parseDuration(s), ms, s);
  for (const bad of ['', '30', '-5s', '5 m', '5w', 's', '1h 30m', 'NaN']) assert.throws(() => parseDuration(bad), RangeError, bad);
  assert.equal(formatDuration(900_000), '15m');
  assert.equal(formatDuration(1500), '1500ms');
});

test('sizes read MB/GB as binary, as Fly does', () => {
  const cases: Array<[string, number]> = [['512MB', 512 * 1024 ** 2], ['1GB', 1024 ** 3], ['1gb', 1024 ** 3], ['64KiB', 65536], ['100B', 100], ['1.5GB', 1.5 * 1024 ** 3]];
  for (const [s, n] of cases) assert.equal(parseSize(s), n, s);
  for (const bad of ['', '512', '-1GB', 'GB', '1 XB', '1e3MB']) assert.throws(() => parseSize(bad), RangeError, bad);
  assert.equal(formatSize(256 * 1024 ** 2), '256MB');
});

test('names are DNS labels', () => {
  for (const ok of ['patient-portal', 'db1', 'ab']) assert.equal(nameProblem(ok), undefined, ok);
  for (const bad of ['', 'a', 'A1', '1app', 'app-', 'a_b', 'a.b', 'a--b', 'internal', 'x'.repeat(64)]) assert.ok(nameProblem(bad), bad);
  assert.equal(normalizeEmail('  Ann@Example.COM '), 'ann@example.com');
  for (const bad of ['ann', 'ann@', '@x.y', 'a b@c.d', 'a@b']) assert.equal(normalizeEmail(bad), undefined, bad);
});

test('every error code is documented in docs/errors.md', async () => {
  const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  for (const code of Object.keys(ERROR_CODES)) assert.match(doc, new RegExp('`' + code + '`'), `docs/errors.md documents ${code}`);
});

test('UserError carries code, status and hint into the wire form', () => {
  const e = new UserError('name_taken', 'taken', { hint: 'pick another' });
  assert.equal(e.status, 409);
  assert.deepEqual(errorBody(e, 'req_1'), { error: { code: 'name_taken', message: 'taken', hint: 'pick another', request_id: 'req_1' } });
});
