/**
 * What an instance runs, from its image and its release's config: the command line, the environment,
 * the working directory and the user. Pure functions (resolveUser reads the image's
 * own /etc/passwd and /etc/group), tested by equality in spec.test.ts.
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../core/index.ts';
import type { AppConfig } from '../config/index.ts';
import type { ImageConfig } from './runtime/index.ts';

/** DEFAULT_PATH is Docker's, for images that set no PATH. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** commandOf is the image's Entrypoint followed by its Cmd; an image with neither cannot run. */
export function commandOf(image: ImageConfig): string[] {
  const args = [...(image.Entrypoint ?? []), ...(image.Cmd ?? [])];
  if (args.length === 0 || args[0] === '') {
    throw new UserError('image_invalid', 'the image has no command to run (neither Entrypoint nor Cmd is set)', {
      hint: 'set ENTRYPOINT or CMD when building the image',
    });
  }
  return args;
}

/** parseImageEnv turns the image's `KEY=value` list into a record; entries without `=` are ignored. */
export function parseImageEnv(env: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    const eq = e.indexOf('=');
    if (eq > 0) out[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return out;
}

/** PlatformEnv names what Ward tells every instance about itself. */
export interface PlatformEnv {
  appName: string;
  instanceId: string;
  releaseVersion: number;
  region: string;
  hostName: string;
  privateIpv6: string | undefined;
  privateIpv4: string | undefined;
}

/** platformEnv is the WARD_* variables (Fly's FLY_* counterparts). */
export function platformEnv(p: PlatformEnv): Record<string, string> {
  const env: Record<string, string> = {
    WARD_APP_NAME: p.appName,
    WARD_INSTANCE_ID: p.instanceId,
    WARD_RELEASE_VERSION: String(p.releaseVersion),
    WARD_REGION: p.region,
    WARD_HOST: p.hostName,
  };
  if (p.privateIpv6) env.WARD_PRIVATE_IP = p.privateIpv6;
  if (p.privateIpv4) env.WARD_PRIVATE_IPV4 = p.privateIpv4;
  return env;
}

/**
 * instanceEnv layers the environment, later winning: the image's Env, then `[env]` of ward.toml, then
 * secrets, then WARD_* (which an app cannot be made to lie about). PATH defaults to Docker's.
 */
export function instanceEnv(image: ImageConfig, config: Pick<AppConfig, 'env'>, secrets: Record<string, string>, platform: Record<string, string>): Record<string, string> {
  const env = { ...parseImageEnv(image.Env), ...config.env, ...secrets, ...platform };
  env.PATH ??= DEFAULT_PATH;
  return env;
}

/** workingDir is the image's WorkingDir, or `/`. */
export function workingDir(image: ImageConfig): string {
  const w = image.WorkingDir?.trim();
  return w && w.startsWith('/') ? w : '/';
}

export interface UserIds {
  uid: number;
  gid: number;
  additionalGids?: number[];
}

/**
 * readImageFile reads a small file of the image's rootfs without following any symlink: a rootfs is
 * untrusted, and its /etc/passwd could be a link to the host's /etc/shadow. A missing file or a link
 * anywhere on the way gives undefined.
 */
async function readImageFile(rootfs: string, rel: string[]): Promise<string | undefined> {
  let p = rootfs;
  for (const [i, part] of rel.entries()) {
    p = join(p, part);
    const s = await lstat(p).catch(() => undefined);
    if (!s || s.isSymbolicLink()) return undefined;
    if (i < rel.length - 1 ? !s.isDirectory() : !s.isFile() || s.size > 4 * 1024 * 1024) return undefined;
  }
  return readFile(p, 'utf8');
}

function table(text: string | undefined): string[][] {
  return (text ?? '').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

/**
 * resolveUser turns the image's User (`name`, `uid`, `name:group`, `uid:gid`, empty for root) into
 * numeric ids, reading the image's /etc/passwd and /etc/group for names, as Docker does. A name the
 * image does not know is image_invalid; a numeric uid the image does not list gets gid 0 (as runc).
 */
export async function resolveUser(user: string | undefined, rootfs: string): Promise<UserIds> {
  const spec = user?.trim() ?? '';
  if (spec === '') return { uid: 0, gid: 0 };
  const [u, g] = spec.split(':', 2) as [string, string | undefined];
  // As runc: a numeric uid takes its gid from /etc/passwd when listed there, else 0.
  const passwd = /^\d+$/.test(u) && g !== undefined && /^\d+$/.test(g) ? [] : table(await readImageFile(rootfs, ['etc', 'passwd']));
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const entry = passwd.find((e) => e[2] === u);
    if (entry) gid = Number(entry[3]);
  } else {
    const entry = passwd.find((e) => e[0] === u);
    if (!entry) throw new UserError('image_invalid', `the image's user "${u}" is not in its /etc/passwd`, { hint: 'set USER to a numeric uid, or add the user to the image' });
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  }
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const entry = table(await readImageFile(rootfs, ['etc', 'group'])).find((e) => e[0] === g);
      if (!entry) throw new UserError('image_invalid', `the image's group "${g}" is not in its /etc/group`, { hint: 'set USER to numeric ids, or add the group to the image' });
      gid = Number(entry[2]);
    }
  }
  const ids = { uid, gid: gid ?? 0 };
  if (![ids.uid, ids.gid].every((n) => Number.isInteger(n) && n >= 0 && n < 65_536)) {
    throw new UserError('image_invalid', `the image's user ${spec} maps to ids outside 0–65535`, { hint: 'use a uid and gid below 65536' });
  }
  return ids;
}
