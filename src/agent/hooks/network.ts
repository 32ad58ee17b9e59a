/**
 * The network hook: puts the instance on its org's private network.
 *
 * prestart / recover: ensure(org), then attach: a network namespace with the instance's addresses,
 * which the start hook makes the instance join. attach is idempotent (same attachment, same addresses
 * for the same instance), so restarts and a recovering agent keep the addresses.
 * poststop: detach, removing the namespace and interfaces; after the instance ended, never before.
 * The attachment lives across restarts of the process: addresses do not change on a crash.
 */
import type { OrgNetwork } from '../network/index.ts';
import type { HookContext, InstanceHook } from './types.ts';

export function networkHook(network: OrgNetwork): InstanceHook {
  const attach = async (ctx: HookContext) => {
    const orgId = ctx.assignment.app.orgId;
    await network.ensure(orgId, ctx.assignment.app.network);
    ctx.attachment = await network.attach({ instanceId: ctx.instanceId, orgId });
  };
  return {
    name: 'network',
    prestart: attach,
    recover: (ctx) => attach(ctx),
    async poststop(ctx) {
      await network.detach(ctx.instanceId);
      delete ctx.attachment;
    },
  };
}
