/**
 * The volumes hook: the slot where issue "Volumes" mounts an app's encrypted volumes.
 *
 * Contract for the implementation to come:
 * - prestart: for each `[[mounts]]` entry, make the volume available on this host (unlock, mount) and
 *   add a MountSpec { source: host path, destination, readOnly: false } to ctx.mounts. Idempotent: a
 *   restart finds the volume mounted already.
 * - recover: rebuild ctx.mounts from what is mounted, changing nothing.
 * - poststop: unmount and lock the volumes, once the instance has ended for good.
 *
 * Until then it mounts nothing, and refuses a release that asks for volumes rather than run it without
 * its data (the control plane refuses such deploys first; this is the second guard).
 */
import { UserError } from '../../core/index.ts';
import type { HookContext, InstanceHook } from './types.ts';

export function volumesHook(): InstanceHook {
  const check = async (ctx: HookContext) => {
    if (ctx.config.mounts.length > 0) {
      throw new UserError('bad_request', `the release mounts volumes (${ctx.config.mounts.map((m) => m.source).join(', ')}), which this Ward cannot provide yet`, {
        hint: 'remove [[mounts]] from ward.toml',
      });
    }
    ctx.mounts = [];
  };
  return { name: 'volumes', prestart: check, recover: (ctx) => check(ctx) };
}
