/**
 * The secrets hook: delivers an app's secret values to an instance, right before each start.
 *
 * SecretsSource is the seam. Its contract:
 * - env(assignment) returns the secret values (NAME → plaintext) of the release's pinned
 *   `secretsVersion` (null: the app has none), decrypted only for an instance being started on this
 *   host; the control plane records the delivery in the audit log (`secret.deliver`: names and version,
 *   never values). deliveredSecrets below is the vault's implementation: a delivery token minted for
 *   the placement, traded for exactly that instance's values.
 * - It is called right before each start (first start and every restart): values live in memory and
 *   in the runtime's bundle on tmpfs only, never on disk, in logs, reports or error messages.
 * - It throws a UserError when the app's secrets cannot be delivered (the instance fails; no restart loop).
 *
 * The hook:
 * - prestart: ctx.secretEnv = await source.env(assignment), or {} without a source. The names listed in
 *   `[secrets] files` are also written to a directory of their own on a tmpfs Ward mounts
 *   (`<filesRoot>/<ins_…>/<NAME>`, mode 0400, owned by the app's user as the instance's user namespace
 *   maps it) and bind-mounted read-only at /run/secrets: memory only, like the bundle.
 * - exited / poststop: ctx.secretEnv = {} and the files are removed (no plaintext kept between runs).
 * - detach: ctx.secretEnv = {} only: the instance keeps running, and its files with it.
 */
import { chmod, chown, mkdir, open, rm, stat } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isId, UserError } from '../../core/index.ts';
import { run, type Argv } from '../../exec/index.ts';
import type { SecretsFetcher } from '../../secrets/index.ts';
import { DEFAULT_ID_MAPPING, type IdMapping } from '../runtime/index.ts';
import { resolveUser } from '../spec.ts';
import type { Assignment } from '../types.ts';
import type { HookContext, InstanceHook } from './types.ts';

export interface SecretsSource {
  env(assignment: Assignment): Promise<Record<string, string>>;
}

/** DeliveredSecretsOptions wires the vault's SecretsSource: how to get a token, and whom to trade it with. */
export interface DeliveredSecretsOptions {
  /**
   * mint asks the control plane for a delivery token for this instance, placed on this host. The control
   * plane checks the placement and binds the token to it (SecretDeliveryService.mint).
   */
  mint(instanceId: string, hostId: string): Promise<string>;
  /** fetcher trades the token: in-process on a single node, over the API with the host credential elsewhere. */
  fetcher: SecretsFetcher;
}

/**
 * deliveredSecrets is the vault's SecretsSource: for each start it gets a fresh single-use token bound
 * to the placement and trades it for the values. An answer for another instance or version is refused
 * (a confused control plane must not hand one instance another's secrets).
 */
export function deliveredSecrets(opts: DeliveredSecretsOptions): SecretsSource {
  return {
    async env(a) {
      if (a.release.secretsVersion === null) return {};
      const token = await opts.mint(a.instance.id, a.instance.hostId);
      const got = await opts.fetcher.fetch(token);
      if (got.instanceId !== a.instance.id || got.version !== a.release.secretsVersion) {
        throw new Error(`secrets delivery answered for instance ${got.instanceId} version ${got.version}, not ${a.instance.id} version ${a.release.secretsVersion}`);
      }
      return got.env;
    },
  };
}

/** TMPFS_MAGIC is statfs(2)'s f_type of a tmpfs (linux/magic.h). */
const TMPFS_MAGIC = 0x01021994;

/** SECRET_FILES_DIR is where the files appear inside an instance. */
export const SECRET_FILES_DIR = '/run/secrets';

/** DEFAULT_SECRET_FILES_ROOT is the host directory (a tmpfs Ward mounts) holding each instance's files. */
export const DEFAULT_SECRET_FILES_ROOT = '/run/ward/secrets';

/** secretsTmpfsArgv mounts the tmpfs for secret files: no devices, no setuid, nothing executable. */
export function secretsTmpfsArgv(target: string): Argv {
  return ['mount', '-t', 'tmpfs', '-o', 'mode=0711,nosuid,nodev,noexec,size=64m', 'ward-secrets', target];
}

export interface SecretsHookOptions {
  /** filesRoot holds the per-instance file trees; default DEFAULT_SECRET_FILES_ROOT, made a tmpfs if it is not one. */
  filesRoot?: string;
  /** mapping is the instances' user namespace (the files' owner is the app's user as the host sees it). */
  mapping?: IdMapping;
}

export function secretsHook(source?: SecretsSource, options: SecretsHookOptions = {}): InstanceHook {
  const root = options.filesRoot ?? DEFAULT_SECRET_FILES_ROOT;
  const mapping = options.mapping ?? DEFAULT_ID_MAPPING;
  let rootReady: Promise<void> | undefined;

  const dirOf = (id: string) => {
    if (!isId(id, 'instance')) throw new TypeError(`not an instance id: ${id}`);
    return join(root, id);
  };
  const removeFiles = async (ctx: HookContext) => {
    await rm(dirOf(ctx.instanceId), { recursive: true, force: true });
  };
  const wipe = async (ctx: HookContext) => {
    ctx.secretEnv = {};
    await removeFiles(ctx);
  };

  /**
   * ensureRoot makes filesRoot a tmpfs of Ward's own: /run is not a tmpfs on every host (ARCHITECTURE.md
   * §7), and a secret written to a disk stays readable long after it was deleted.
   */
  const ensureRoot = () =>
    (rootReady ??= (async () => {
      await mkdir(root, { recursive: true, mode: 0o711 });
      // The instance's mapped root resolves the bind mount's source, so the run dir above needs x for
      // others (as CrunRuntime sets it for its own); directories further up are the host's business.
      const runDir = dirname(root);
      const mode = (await stat(runDir)).mode & 0o7777;
      if ((mode & 0o001) === 0) await chmod(runDir, mode | 0o001);
      if (statfsSync(root).type !== TMPFS_MAGIC) await run(secretsTmpfsArgv(root));
      if (statfsSync(root).type !== TMPFS_MAGIC) throw new Error(`${root} is not a tmpfs after mounting one`);
      await chmod(root, 0o711);
    })().catch((e: unknown) => {
      rootReady = undefined;
      throw new UserError('unavailable', `secret files need a tmpfs at ${root}, which cannot be made: ${(e as Error).message}`, {
        hint: 'run the agent as root, or remove [secrets] files from ward.toml to receive secrets as environment variables only',
        cause: e,
      });
    }));

  const writeFiles = async (ctx: HookContext, env: Record<string, string>) => {
    const names = ctx.config.secrets?.files ?? [];
    if (names.length === 0) return;
    const missing = names.filter((n) => !Object.hasOwn(env, n));
    if (missing.length) {
      throw new UserError('invalid_secret', `[secrets] files names ${missing.join(', ')}, which the app has no secret for in release ${ctx.assignment.release.version}`, {
        hint: `ward secrets set ${missing[0]}=- -a ${ctx.assignment.app.name} < FILE, or remove the name from [secrets] files`,
      });
    }
    if (!ctx.image) throw new Error('secrets hook: no image in the context (the image hook runs first)');
    await ensureRoot();
    const user = await resolveUser(ctx.image.config.User, ctx.image.rootfs);
    const uid = mapping.hostId + user.uid - mapping.containerId;
    const gid = mapping.hostId + user.gid - mapping.containerId;
    const dir = dirOf(ctx.instanceId);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o700 });
    const asRoot = process.getuid?.() === 0;
    for (const name of names) {
      const fh = await open(join(dir, name), 'wx', 0o400);
      try {
        await fh.writeFile(env[name]!, 'utf8');
        if (asRoot) await fh.chown(uid, gid);
      } finally {
        await fh.close();
      }
    }
    // The app's user owns the directory (it may list it); the mapped root reaches it through its
    // capabilities over ids of its own namespace. Nobody else on the host can.
    if (asRoot) await chown(dir, uid, gid);
    await chmod(dir, 0o500);
    ctx.mounts = [...ctx.mounts.filter((m) => m.destination !== SECRET_FILES_DIR), { source: dir, destination: SECRET_FILES_DIR, readOnly: true }];
  };

  return {
    name: 'secrets',
    async prestart(ctx) {
      const env = source ? await source.env(ctx.assignment) : {};
      ctx.secretEnv = env;
      try {
        await writeFiles(ctx, env);
      } catch (e) {
        await wipe(ctx);
        throw e;
      }
    },
    exited: wipe,
    poststop: wipe,
    async detach(ctx) {
      ctx.secretEnv = {};
    },
  };
}
