import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LoopbackNetwork, testContext } from '../testing.ts';
import { networkHook } from './network.ts';

describe('network hook', () => {
  test('prestart ensures the org network and attaches; again (a restart) gets the same attachment; poststop detaches', async () => {
    const net = new LoopbackNetwork();
    const hook = networkHook(net);
    const ctx = testContext({ orgId: 'org_x' });
    await hook.prestart!(ctx);
    const first = ctx.attachment;
    assert.equal(first?.instanceId, ctx.instanceId);
    await hook.prestart!(ctx);
    assert.equal(ctx.attachment, first);
    assert.deepEqual(net.calls, ['ensure org_x', `attach ${ctx.instanceId}`, 'ensure org_x', `attach ${ctx.instanceId}`]);
    await hook.poststop!(ctx);
    assert.equal(ctx.attachment, undefined);
    assert.equal(net.attached.size, 0);
    // poststop in a fresh agent that never attached is harmless.
    await hook.poststop!(testContext());
  });

  test('recover re-learns the attachment without making a new one', async () => {
    const net = new LoopbackNetwork();
    const ctx = testContext();
    await networkHook(net).prestart!(ctx);
    const again = { ...testContext(), instanceId: ctx.instanceId, assignment: ctx.assignment };
    await networkHook(net).recover!(again, undefined as never);
    assert.equal(again.attachment, ctx.attachment);
    assert.equal(net.attached.size, 1);
  });
});
