/**
 * The volumes hook: puts an app's encrypted volumes (`[[mounts]]`) into its instance.
 *
 * - prestart: asks the VolumeSource for each mount's volume and key (unwrapped by the control plane
 *   for this instance on this host, audited), has the VolumeManager open the volume (loop file made
 *   and formatted on first use, mounted under the data dir, key added), zeroes the key, and adds a
 *   bind mount of the volume's data directory at `destination` to ctx.mounts. A new volume's data
 *   directory belongs to the image's user as the instance's user namespace maps it, so the app can
 *   write. A restart finds the volume open already (the manager counts the instance once).
 * - recover: rebuilds ctx.mounts from what is mounted, changing nothing (no key is asked for).
 * - poststop: lets go of the volumes; the last user's release removes the key and unmounts, after
 *   which the host holds ciphertext only.
 * Without a source and manager (an agent built without volumes), a release with `[[mounts]]` is refused
 * rather than run without its data.
 */
import { UserError } from '../../core/index.ts';
import { DEFAULT_ID_MAPPING, type IdMapping, type MountSpec } from '../runtime/index.ts';
import { resolveUser } from '../spec.ts';
import type { VolumeManager, VolumeSource } from '../volumes/index.ts';
import type { HookContext, InstanceHook } from './types.ts';

export interface VolumesHookDeps {
  manager: VolumeManager;
  source: VolumeSource;
  /** mapping is the instances' user namespace (the data directory's owner is the app's user as the host sees it). */
  mapping?: IdMapping;
}

export function volumesHook(deps?: VolumesHookDeps): InstanceHook {
  const mapping = deps?.mapping ?? DEFAULT_ID_MAPPING;
  // The volumes each instance holds, so poststop releases exactly those.
  const held = new Map<string, string[]>();

  const refuse = (ctx: HookContext) => {
    throw new UserError('bad_request', `the release mounts volumes (${ctx.config.mounts.map((m) => m.source).join(', ')}), which this agent cannot provide`, {
      hint: 'run the agent with volumes (ward server with the agent role), or remove [[mounts]] from ward.toml',
    });
  };
  const withoutVolumes = (ctx: HookContext) => ctx.mounts.filter((m) => !ctx.config.mounts.some((c) => c.destination === m.destination));

  return {
    name: 'volumes',
    async prestart(ctx) {
      if (ctx.config.mounts.length === 0) {
        ctx.mounts = [];
        return;
      }
      if (!deps) refuse(ctx);
      const { manager, source } = deps!;
      if (!ctx.image) throw new Error('volumes hook: no image in the context (the image hook runs first)');
      const user = await resolveUser(ctx.image.config.User, ctx.image.rootfs);
      const owner = { uid: mapping.hostId + user.uid - mapping.containerId, gid: mapping.hostId + user.gid - mapping.containerId };
      const grants = await source.grantForInstance(ctx.assignment, ctx.host.id);
      const mounts: MountSpec[] = [];
      const ids: string[] = [];
      try {
        for (const g of grants) {
          const { dir, formatted } = await manager.acquire(g.volume, ctx.instanceId, g.key, owner);
          g.key.fill(0);
          ids.push(g.volume.id);
          if (formatted) ctx.note(`volume ${g.volume.name} formatted (${formatted})`);
          mounts.push({ source: dir, destination: g.destination, readOnly: false });
        }
      } catch (e) {
        for (const g of grants) g.key.fill(0);
        for (const id of ids) await manager.release(id, ctx.instanceId).catch(() => {});
        throw e;
      }
      held.set(ctx.instanceId, ids);
      ctx.mounts = [...withoutVolumes(ctx), ...mounts];
    },
    async recover(ctx) {
      if (ctx.config.mounts.length === 0) {
        ctx.mounts = [];
        return;
      }
      if (!deps) refuse(ctx);
      const { manager, source } = deps!;
      const mounts: MountSpec[] = [];
      const ids: string[] = [];
      for (const r of await source.resolveForInstance(ctx.assignment, ctx.host.id)) {
        const dir = manager.adopt(r.volume.id, ctx.instanceId);
        if (dir === undefined) throw new Error(`volume ${r.volume.name} of a running instance is not mounted on this host`);
        ids.push(r.volume.id);
        mounts.push({ source: dir, destination: r.destination, readOnly: false });
      }
      held.set(ctx.instanceId, ids);
      ctx.mounts = [...withoutVolumes(ctx), ...mounts];
    },
    async poststop(ctx) {
      if (!deps) return;
      let ids = held.get(ctx.instanceId);
      if (!ids) {
        // A fresh agent (after a crash): what the release mounts, as the control plane still knows it.
        if (ctx.config.mounts.length === 0) return;
        ids = (await deps.source.resolveForInstance(ctx.assignment, ctx.host.id).catch(() => [])).map((r) => r.volume.id);
      }
      for (const id of ids) await deps.manager.release(id, ctx.instanceId);
      held.delete(ctx.instanceId);
    },
  };
}
