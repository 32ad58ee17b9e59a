import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { closest, describeValue, editDistance, formatPath } from './paths.ts';

describe('formatPath', () => {
  const cases: [(string | number)[], string][] = [
    [['app'], 'app'],
    [['http_service', 'checks', 0, 'interval'], 'http_service.checks[0].interval'],
    [['env', 'MY VAR'], 'env."MY VAR"'],
    [['headers', 'X-Health'], 'headers.X-Health'],
    [[], ''],
  ];
  for (const [segments, want] of cases) test(want || '(root)', () => assert.equal(formatPath(segments), want));
});

describe('closest', () => {
  const keys = ['internal_port', 'force_https', 'hostnames', 'min_instances', 'checks'];
  const cases: [string, string | undefined][] = [
    ['internal_prot', 'internal_port'],
    ['Internal-Port', 'internal_port'],
    ['forcehttps', 'force_https'],
    ['hostname', 'hostnames'],
    ['check', 'checks'],
    ['zebra', undefined],
    ['x', undefined],
  ];
  for (const [input, want] of cases) test(`${input} → ${want}`, () => assert.equal(closest(input, keys), want));

  test('editDistance counts a transposition once', () => {
    assert.equal(editDistance('prot', 'port'), 1);
    assert.equal(editDistance('', 'abc'), 3);
  });
});

test('describeValue', () => {
  assert.equal(describeValue('a'), '"a"');
  assert.equal(describeValue(5), '5');
  assert.equal(describeValue([{}]), 'an array of tables');
  assert.equal(describeValue([1]), 'an array');
  assert.equal(describeValue(Object.create(null)), 'a table');
  assert.equal(describeValue(new Date()), 'a date');
});
