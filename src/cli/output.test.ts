import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createOutput, formatFields, formatTable, formatTime } from './output.ts';
import { closest, editDistance } from './suggest.ts';

function capture(json: boolean) {
  let out = '';
  let err = '';
  const o = createOutput({ write: (s: string) => (out += s) }, { write: (s: string) => (err += s) }, { json });
  return { o, out: () => out, err: () => err };
}

describe('output', () => {
  it('aligns table columns and does not pad the last one', () => {
    const rows = [{ a: 'portal', b: 'acme' }, { a: 'x', b: 'a-much-longer-org' }];
    const text = formatTable(rows, [
      { header: 'name', value: (r) => r.a },
      { header: 'org', value: (r) => r.b },
    ]);
    assert.equal(text, 'NAME     ORG\nportal   acme\nx        a-much-longer-org\n');
  });

  it('neutralizes control characters from the server', () => {
    assert.equal(formatTable([{ a: 'evil\u001b[2Jname\n' }], [{ header: 'n', value: (r) => r.a }]), 'N\nevil?[2Jname?\n');
  });

  it('aligns fields and skips undefined values', () => {
    assert.equal(formatFields([['Name', 'portal'], ['Missing', undefined], ['ID', 'app_1']]), 'Name   portal\nID     app_1\n');
  });

  it('shows timestamps to the second', () => {
    assert.equal(formatTime('2026-11-29T06:13:30.123Z'), '2026-11-29T06:13:30Z');
  });

  it('prints exactly one JSON document in --json mode and refuses anything else on stdout', () => {
    const c = capture(true);
    c.o.info('progress');
    c.o.result({ a: 1 }, () => assert.fail('human output in --json mode'));
    assert.deepEqual(JSON.parse(c.out()), { a: 1 });
    assert.equal(c.err(), 'progress\n');
    assert.throws(() => c.o.result({ b: 2 }, () => {}), /twice/);
    assert.throws(() => c.o.line('x'), /--json mode/);
    assert.throws(() => c.o.table([], []), /--json mode/);
  });

  it('calls the human renderer without --json', () => {
    const c = capture(false);
    c.o.result({ a: 1 }, () => c.o.line('hello'));
    assert.equal(c.out(), 'hello\n');
  });
});

describe('suggestions', () => {
  const cases: Array<[string, string[], string | undefined]> = [
    ['lst', ['create', 'list', 'show'], 'list'],
    ['lsit', ['create', 'list', 'show'], 'list'],
    ['sho', ['create', 'list', 'show'], 'show'],
    ['cr', ['create', 'list'], 'create'],
    ['destory', ['destroy'], 'destroy'],
    ['delete', ['create', 'destroy'], undefined],
    ['x', ['apps'], undefined],
    ['APPS', ['apps'], 'apps'],
  ];
  for (const [input, candidates, want] of cases) {
    it(`${input} → ${want ?? 'nothing'}`, () => assert.equal(closest(input, candidates), want));
  }

  it('counts a transposition as one edit', () => {
    assert.equal(editDistance('ab', 'ba'), 1);
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('', 'abc'), 3);
  });
});
