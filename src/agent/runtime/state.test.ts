// InstanceTracker: what it remembers of a run must never answer for a later run of the same id.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { InstanceTracker } from './state.ts';

test('a watch taken while an id has no run (a late reaping of the run before) does not answer for the next run', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ward-tracker-'));
  try {
    const t = new InstanceTracker(root);
    // Between one run's removal and the next run's create, the id has no directory: a watch taken then
    // (an earlier run's monitor reaped late) settles at once, as "ended".
    const stale = t.watch('ins_x');
    assert.equal(await Promise.race([stale.done.then(() => 'ended'), new Promise((r) => setTimeout(() => r('pending'), 500))]), 'ended');
    await t.create('ins_x');
    const fresh = t.watch('ins_x');
    assert.notEqual(fresh, stale);
    assert.equal(await Promise.race([fresh.done.then(() => 'ended'), new Promise((r) => setTimeout(() => r('pending'), 600))]), 'pending');
    t.forget('ins_x');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
