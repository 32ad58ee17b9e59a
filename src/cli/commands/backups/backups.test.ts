import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserError } from '../../../core/index.ts';
import { volumeAndSnapshot } from './shared.ts';

test('restore and verify read both spellings: VOLUME [--snapshot ID] and ID --to-volume VOLUME', () => {
  assert.deepEqual(volumeAndSnapshot('pgdata', undefined, undefined), { volume: 'pgdata', snapshot: undefined });
  assert.deepEqual(volumeAndSnapshot('pgdata', undefined, '82987b44'), { volume: 'pgdata', snapshot: '82987b44' });
  assert.deepEqual(volumeAndSnapshot('82987b44', 'pgdata', undefined), { volume: 'pgdata', snapshot: '82987b44' });
  assert.deepEqual(volumeAndSnapshot(undefined, 'pgdata', '82987b44'), { volume: 'pgdata', snapshot: '82987b44' });
  assert.deepEqual(volumeAndSnapshot(undefined, 'pgdata', undefined), { volume: 'pgdata', snapshot: undefined });
  const usage = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof UserError && e.code === 'usage' && re.test(e.message));
  usage(() => volumeAndSnapshot(undefined, undefined, undefined), /which volume/);
  usage(() => volumeAndSnapshot('82987b44', 'pgdata', 'aaaaaaaa'), /once/);
  usage(() => volumeAndSnapshot('not-hex', 'pgdata', undefined), /not a snapshot id/);
  usage(() => volumeAndSnapshot('pgdata', undefined, 'xyz'), /not a snapshot id/);
});
