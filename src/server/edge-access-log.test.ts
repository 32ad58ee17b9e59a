// The edge's access log in the instances' journals: batched, in order, bounded, and never about a request
// no instance answered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AccessLogEntry } from '../edge/index.ts';
import { JournalAccessLog } from './edge-access-log.ts';

const entry = (n: number, instance: string | undefined, status = 200): AccessLogEntry => ({
  time: new Date(1_700_000_000_000 + n).toISOString(),
  request_id: `r-${n}`,
  app: instance ? 'web' : undefined,
  method: 'GET',
  host: 'web.example.com',
  path: `/p${n}`,
  protocol: 'HTTP/1.1',
  status,
  duration_ms: 1.5,
  bytes: 10,
  client: '192.0.2.7',
  upstream: instance ? '10.0.0.2:8080' : undefined,
  instance,
  user_agent: 'curl/8',
});

test('lines go to the journal of the instance that answered, batched and in order; edge-local answers are left out', async () => {
  const appended: Array<{ id: string; lines: Array<{ time: string; stream: string; message: string }> }> = [];
  const log = new JournalAccessLog({ append: async (id, lines) => void appended.push({ id, lines: [...lines] }) }, { flushMs: 60_000 });
  log.write(entry(1, 'ins_a'));
  log.write(entry(2, 'ins_b'));
  log.write(entry(3, undefined, 404));
  log.write(entry(4, 'ins_a'));
  assert.equal(appended.length, 0, 'nothing is written on the request path');
  await log.close();
  assert.deepEqual(appended.map((a) => [a.id, a.lines.map((l) => JSON.parse(l.message).request_id)]), [['ins_a', ['r-1', 'r-4']], ['ins_b', ['r-2']]]);
  const line = appended[0]!.lines[0]!;
  assert.equal(line.stream, 'edge');
  assert.equal(line.time, entry(1, 'ins_a').time);
  const message = JSON.parse(line.message);
  assert.equal(message.status, 200);
  assert.equal(message.instance, undefined, 'the line names its instance already');
  assert.equal(message.time, undefined);
});

test('a full queue drops and counts instead of waiting; a failed append is reported and the next batch still goes', async () => {
  const appended: string[] = [];
  const errors: string[] = [];
  let fail = true;
  const log = new JournalAccessLog(
    {
      append: async (id, lines) => {
        if (fail) throw new Error('disk full');
        appended.push(...lines.map((l) => `${id} ${JSON.parse(l.message).request_id}`));
      },
    },
    { flushMs: 60_000, maxQueued: 3, onError: (e, id) => errors.push(`${id}: ${(e as Error).message}`) },
  );
  for (let i = 0; i < 5; i++) log.write(entry(i, 'ins_a'));
  assert.equal(log.dropped, 2);
  await log.flush();
  assert.deepEqual(errors, ['ins_a: disk full']);
  fail = false;
  log.write(entry(9, 'ins_a'));
  await log.close();
  assert.deepEqual(appended, ['ins_a r-9']);
});
