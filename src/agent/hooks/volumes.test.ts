import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UserError } from '../../core/index.ts';
import { appConfig, testContext } from '../testing.ts';
import { volumesHook } from './volumes.ts';

describe('volumes hook without volumes (an agent built without a VolumeSource)', () => {
  test('no [[mounts]]: no mounts', async () => {
    const ctx = testContext();
    await volumesHook().prestart!(ctx);
    assert.deepEqual(ctx.mounts, []);
  });

  test('a release with [[mounts]] is refused rather than run without its data (the real thing: test/integration/volumes-crun.test.ts)', async () => {
    const ctx = testContext({ config: appConfig({ mounts: [{ source: 'data', destination: '/data' }] }) });
    await assert.rejects(volumesHook().prestart!(ctx), (e: unknown) => e instanceof UserError && /volumes \(data\)/.test(e.message));
  });
});
