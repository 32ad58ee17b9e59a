import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../core/index.ts';
import { LogJournal, OutputCapture, punchHoleArgv, type LogEntry } from './index.ts';

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ward-logs-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function until(cond: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('LogJournal', () => {
  test('appends, reads back merged by time, filters by since and limit', async () => {
    const j = new LogJournal({ dir: join(root, 'a') });
    const a = newId('instance');
    const b = newId('instance');
    await j.append(a, [{ time: '2026-01-01T00:00:01.000Z', stream: 'stdout', message: 'a1' }, { time: '2026-01-01T00:00:03.000Z', stream: 'stderr', message: 'a3' }]);
    await j.append(b, [{ time: '2026-01-01T00:00:02.000Z', stream: 'stdout', message: 'b2' }]);
    await j.system(b, 'restarting', new Date('2026-01-01T00:00:04.000Z'));
    assert.deepEqual((await j.read([a, b])).map((e) => e.message), ['a1', 'b2', 'a3', 'restarting']);
    assert.deepEqual((await j.read([a, b], { since: '2026-01-01T00:00:02.000Z' })).map((e) => e.message), ['b2', 'a3', 'restarting']);
    assert.deepEqual((await j.read([a, b], { limit: 2 })).map((e) => `${e.instance === a ? 'a' : 'b'}:${e.stream}:${e.message}`), ['a:stderr:a3', 'b:ward:restarting']);
    assert.deepEqual(await j.tail(a, 5), ['a1', '[stderr] a3']);
    assert.deepEqual(await j.read([newId('instance')]), []);
  });

  test('rotates by size and keeps at most `files` files', async () => {
    const j = new LogJournal({ dir: join(root, 'rot'), limits: { fileBytes: 1000, files: 3 } });
    const id = newId('instance');
    for (let i = 0; i < 100; i++) await j.append(id, [{ time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), stream: 'stdout', message: `line ${i} ${'x'.repeat(40)}` }]);
    const files = (await readdir(j.instanceDir(id))).filter((f) => f.startsWith('journal')).sort();
    // The current file may have just been rotated away; never more than three files.
    assert.ok(files.length >= 2 && files.every((f) => ['journal.1.ndjson', 'journal.2.ndjson', 'journal.ndjson'].includes(f)), files.join(','));
    let total = 0;
    for (const f of files) total += (await stat(join(j.instanceDir(id), f))).size;
    assert.ok(total <= 3000 + 200, `journal holds ${total} bytes`);
    const lines = await j.read([id], { limit: 10_000 });
    assert.equal(lines.at(-1)!.message.startsWith('line 99 '), true);
    assert.ok(lines.length < 100 && lines.length >= 20, `${lines.length} lines kept`);
    // Oldest first across files.
    assert.deepEqual(lines.map((l) => l.time), [...lines.map((l) => l.time)].sort());
  });

  test('splits overlong lines; follow sees new lines of the instances it asked for', async () => {
    const j = new LogJournal({ dir: join(root, 'f'), limits: { maxLineBytes: 10 } });
    const a = newId('instance');
    const seen: LogEntry[] = [];
    const stop = j.follow([a], (e) => seen.push(e));
    await j.append(a, [{ time: new Date().toISOString(), stream: 'stdout', message: '0123456789abcdefghij!' }]);
    await j.append(newId('instance'), [{ time: new Date().toISOString(), stream: 'stdout', message: 'other' }]);
    stop();
    await j.append(a, [{ time: new Date().toISOString(), stream: 'stdout', message: 'after' }]);
    assert.deepEqual(seen.map((e) => e.message), ['0123456789', 'abcdefghij', '!']);
    assert.throws(() => j.instanceDir('../etc'), /not an instance id/);
  });
});

describe('OutputCapture', () => {
  test('reads complete lines of both streams, keeps a partial line until it ends, survives a new capture object', async () => {
    const j = new LogJournal({ dir: join(root, 'cap') });
    const id = newId('instance');
    await j.ensure(id);
    const files = j.outputFiles(id);
    await writeFile(files.stdout, 'one\ntwo\npar');
    await writeFile(files.stderr, 'oops\r\n');
    const c = new OutputCapture(j, id, { pollMs: 20 });
    await c.start();
    await until(async () => (await j.read([id])).length === 3);
    assert.deepEqual((await j.read([id])).map((e) => `${e.stream}:${e.message}`).sort(), ['stderr:oops', 'stdout:one', 'stdout:two']);
    await appendFile(files.stdout, 'tial\nthree\n');
    await until(async () => (await j.read([id])).length === 5);
    await c.stop();

    // A new capture (an agent restart) continues from the cursor: nothing read twice, nothing lost.
    await appendFile(files.stdout, 'four\nno newline at the end');
    const c2 = new OutputCapture(j, id, { pollMs: 20 });
    await c2.start();
    await until(async () => (await j.read([id])).length === 6);
    await c2.flush(true);
    await c2.stop();
    assert.deepEqual((await j.read([id])).filter((e) => e.stream === 'stdout').map((e) => e.message), ['one', 'two', 'partial', 'three', 'four', 'no newline at the end']);
  });

  test('frees what it has read without moving offsets (hole punching)', async () => {
    const j = new LogJournal({ dir: join(root, 'punch'), limits: { fileBytes: 64 * 1024 * 1024 } });
    const id = newId('instance');
    await j.ensure(id);
    const files = j.outputFiles(id);
    const line = `${'y'.repeat(1023)}\n`;
    await writeFile(files.stdout, line.repeat(4096)); // 4 MiB
    const c = new OutputCapture(j, id, { pollMs: 20, punchBytes: 1024 * 1024 });
    await c.start();
    await until(async () => (await j.read([id], { limit: 10_000 })).length === 4096, 10_000);
    await c.flush();
    const s = await stat(files.stdout);
    assert.equal(s.size, 4 * 1024 * 1024, 'the apparent size stays (offsets are kept)');
    assert.ok(s.blocks * 512 < 512 * 1024, `blocks freed: ${s.blocks * 512} bytes still allocated`);
    await appendFile(files.stdout, 'after the hole\n');
    await until(async () => (await j.read([id], { limit: 1 }))[0]?.message === 'after the hole');
    await c.stop();
  });

  test('punchHoleArgv is data', () => {
    assert.deepEqual(punchHoleArgv('/x/stdout', 8192), ['fallocate', '--punch-hole', '--offset', '0', '--length', '8192', '/x/stdout']);
  });
});
