import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { locateKeys, positionOf } from './locate.ts';

const DOC = `# comment with [brackets] and key = "value"
app = "x"   # trailing comment
"quoted.key" = 1
dotted.inner = 2

[http_service]
internal_port = 8080
hostnames = [
  "a.example.com",  # first
  "b.example.com",
]
  [[http_service.checks]]
  path = "/"
  [[http_service.checks]]
  headers = { X-One = "1", "X Two" = "]" }

[[services]]
text = """
[not_a_table]
key = 1
"""
  [[services.ports]]
  port = 1
[[services]]
  [[services.ports]]
  port = 2
  [[services.ports]]
  port = 3
  [services.concurrency]
  hard_limit = 5
`;

describe('locateKeys', () => {
  const found = locateKeys(DOC);
  const cases: [string, number, number][] = [
    ['app', 2, 1],
    ['"quoted.key"', 3, 1],
    ['dotted', 4, 1],
    ['dotted.inner', 4, 1],
    ['http_service', 6, 1],
    ['http_service.internal_port', 7, 1],
    ['http_service.hostnames', 8, 1],
    ['http_service.hostnames[0]', 9, 3],
    ['http_service.hostnames[1]', 10, 3],
    ['http_service.checks', 12, 3],
    ['http_service.checks[0]', 12, 3],
    ['http_service.checks[0].path', 13, 3],
    ['http_service.checks[1]', 14, 3],
    ['http_service.checks[1].headers.X-One', 15, 15],
    ['http_service.checks[1].headers."X Two"', 15, 28],
    ['services[0].text', 18, 1],
    ['services[0].ports[0].port', 23, 3],
    ['services[1]', 24, 1],
    ['services[1].ports[0].port', 26, 3],
    ['services[1].ports[1].port', 28, 3],
    ['services[1].concurrency.hard_limit', 30, 3],
  ];
  for (const [path, line, column] of cases) {
    test(path, () => assert.deepEqual(found.get(path), { line, column }));
  }

  test('finds nothing inside strings and comments', () => {
    assert.equal(found.has('not_a_table'), false);
    assert.equal(found.has('key'), false);
    assert.equal(found.has('services[0].key'), false);
  });

  test('positionOf falls back to the nearest written ancestor', () => {
    assert.deepEqual(positionOf(found, 'http_service.checks[0].interval'), { line: 12, column: 3 });
    assert.deepEqual(positionOf(found, 'http_service.checks[1].headers."a.b"'), { line: 15, column: 3 });
    assert.equal(positionOf(found, 'metrics.port'), undefined);
  });

  test('never throws on text the parser would refuse', () => {
    assert.doesNotThrow(() => locateKeys('[[a\nb = = =\n"unterminated'));
  });
});
