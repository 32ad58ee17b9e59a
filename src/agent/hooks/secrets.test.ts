import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { testContext } from '../testing.ts';
import { secretsHook } from './secrets.ts';

describe('secrets hook (slot)', () => {
  test('without a source: nothing delivered', async () => {
    const ctx = testContext();
    await secretsHook().prestart!(ctx);
    assert.deepEqual(ctx.secretEnv, {});
  });

  test('a source delivers before each start; nothing is kept after a run, nothing is noted or reported', async () => {
    const asked: string[] = [];
    const hook = secretsHook({ env: async (a) => (asked.push(a.instance.id), { DB_PASSWORD: 'hunter2' }) });
    const ctx = testContext();
    await hook.prestart!(ctx);
    assert.deepEqual(ctx.secretEnv, { DB_PASSWORD: 'hunter2' });
    await hook.exited!(ctx, undefined);
    assert.deepEqual(ctx.secretEnv, {});
    await hook.prestart!(ctx);
    await hook.poststop!(ctx);
    assert.deepEqual(ctx.secretEnv, {});
    assert.deepEqual(asked, [ctx.instanceId, ctx.instanceId]);
    assert.ok(!JSON.stringify([ctx.notes, ctx.reports]).includes('hunter2'));
  });
});
