import { createHash, randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, readlink, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { join, posix, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { UserError } from '../core/index.ts';
import { run, type Argv } from '../exec/index.ts';
import { hostPlatform, writeTar, type TarWriteEntry } from '../agent/runtime/images/index.ts';

/**
 * The image builder of `ward up`: an OCI image of a Node.js app made from what this machine already has,
 * with no registry, no base image and no network. The image is the host's Node.js binary with the shared
 * libraries `ldd` lists (the same recipe as the test suite's rootfs), a few /etc files, and the app's
 * folder at /app, run as `/usr/bin/node /app/<entry>`. It is built byte for byte the same from the same
 * inputs (sorted entries, zero timestamps and owners, no creation date), so the same app and Node.js give
 * the same digest and a second `ward up` can tell nothing changed.
 */

/** NodeImageOptions say what to build. */
export interface NodeImageOptions {
  /** appDir is copied to /app: regular files, folders and relative symlinks that stay inside it. */
  appDir: string;
  /** entry is the script under appDir that Node runs; default server.js. */
  entry?: string;
  /** node is the Node.js binary to put at /usr/bin/node; default the one running Ward. */
  node?: string;
  /** env is added to the image's Env (PATH is set already). */
  env?: Record<string, string>;
  /**
   * compression of the layers: none (default: the archive only crosses loopback to the server, and
   * gzip of Node's 120 MB takes 6–14 s on a small machine) or gzip, for an archive to ship elsewhere.
   */
  compression?: 'none' | 'gzip';
}

/** BuiltImage is a written oci-archive and what the server will call it. */
export interface BuiltImage {
  /** archive is the oci-archive's path; deploy it as `oci-archive:<archive>`. */
  archive: string;
  /** digest is the image manifest's sha256 digest, which the server reports after an upload. */
  digest: string;
  /** size is the archive's size in bytes. */
  size: number;
  /** layers are the layer digests: the runtime (Node.js and its libraries), then the app. */
  layers: string[];
}

/** lddArgv is the command that lists the shared libraries a binary loads. */
export function lddArgv(binary: string): Argv {
  return ['ldd', binary];
}

/**
 * parseLdd returns the absolute paths in `ldd` output: each resolved library and the dynamic loader
 * (`linux-vdso.so.1` has no file and is skipped).
 */
export function parseLdd(output: string): string[] {
  const paths: string[] = [];
  for (const line of output.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m && !paths.includes(m[1]!)) paths.push(m[1]!);
  }
  return paths;
}

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nnogroup:x:65534:\n';
/** MAX_APP_FILES bounds the app folder, so pointing the builder at / by mistake fails fast. */
const MAX_APP_FILES = 10_000;
/** SKIPPED names in the app folder that never belong in an image. */
const SKIPPED = new Set(['.git', '.ward', '.ward-dev']);

/** buildNodeImage writes the app's image as an oci-archive at `out` (atomically) and returns its digest. */
export async function buildNodeImage(options: NodeImageOptions, out: string): Promise<BuiltImage> {
  const appDir = resolve(options.appDir);
  const entry = options.entry ?? 'server.js';
  const entryStat = await lstat(join(appDir, entry)).catch(() => undefined);
  if (!entryStat?.isFile()) {
    throw new UserError('invalid_config', `${join(appDir, entry)} does not exist or is not a file`, { hint: `the app folder needs the script Node runs: ${entry}` });
  }
  const node = options.node ?? process.execPath;
  const runtime = writeTar(await runtimeEntries(node));
  const app = writeTar(await appEntries(appDir));
  const layers = [runtime, app].map((tar) => layer(tar, options.compression ?? 'none'));
  const env = ['PATH=/usr/local/bin:/usr/bin:/bin', ...Object.entries(options.env ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`)];
  const platform = hostPlatform();
  const config = json({
    architecture: platform.architecture,
    os: platform.os,
    config: { Cmd: ['/usr/bin/node', posix.join('/app', entry)], Env: env, WorkingDir: '/app', StopSignal: 'SIGTERM' },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  });
  const manifest = json({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length })),
  });
  const digest = sha256(manifest);
  const index = json({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  });
  const blobs = new Map<string, Buffer>([[sha256(config), config], [digest, manifest]]);
  for (const l of layers) blobs.set(l.digest, l.blob);
  const archive = writeTar([
    { path: 'oci-layout', type: 'file', data: json({ imageLayoutVersion: '1.0.0' }) },
    { path: 'index.json', type: 'file', data: index },
    { path: 'blobs/', type: 'directory' },
    { path: 'blobs/sha256/', type: 'directory' },
    ...[...blobs.keys()].sort().map((d): TarWriteEntry => ({ path: `blobs/sha256/${d.slice(7)}`, type: 'file', data: blobs.get(d)! })),
  ]);
  const tmp = `${out}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, archive, { mode: 0o644 });
    await rename(tmp, out);
  } finally {
    await rm(tmp, { force: true });
  }
  return { archive: out, digest, size: archive.length, layers: layers.map((l) => l.digest) };
}

/** runtimeEntries: /usr/bin/node, its libraries at the paths the loader looks for them, /etc, empty mount points. */
async function runtimeEntries(node: string): Promise<TarWriteEntry[]> {
  let libs: string[];
  try {
    libs = parseLdd((await run(lddArgv(node))).stdout);
  } catch (e) {
    throw new UserError('unavailable', `cannot list the libraries of ${node} with ldd: ${(e as Error).message}`, { hint: 'install libc-bin (ldd), or run Ward with a dynamically linked Node.js', cause: e });
  }
  const entries = new Map<string, TarWriteEntry>();
  const dir = (p: string, mode = 0o755) => entries.set(`${p}/`, { path: `${p}/`, type: 'directory', mode });
  const file = (p: string, data: Buffer | string, mode: number) => {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) dir(parts.slice(0, i).join('/'));
    entries.set(p, { path: p, type: 'file', data, mode });
  };
  // Mount points the runtime needs in a read-only root, and a writable /tmp.
  for (const d of ['app', 'dev', 'etc', 'proc', 'root', 'run', 'usr/bin']) dir(d);
  dir('tmp', 0o1777);
  file('usr/bin/node', await readFile(node), 0o755);
  for (const lib of libs) file(lib.replace(/^\/+/, ''), await readFile(await realpath(lib)), 0o755);
  file('etc/passwd', PASSWD, 0o644);
  file('etc/group', GROUP, 0o644);
  for (const f of ['etc/hosts', 'etc/resolv.conf', 'etc/hostname']) file(f, '', 0o644);
  return sorted(entries);
}

/** appEntries lists the app folder under /app: files keep their executable bit, nothing else of the host. */
async function appEntries(appDir: string): Promise<TarWriteEntry[]> {
  const entries = new Map<string, TarWriteEntry>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(appDir, rel))).sort()) {
      if (SKIPPED.has(name)) continue;
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(appDir, r));
      if (entries.size >= MAX_APP_FILES) throw new UserError('invalid_config', `${appDir} has more than ${MAX_APP_FILES} files`, { hint: 'point the build at the app folder only' });
      if (st.isDirectory()) {
        entries.set(`app/${r}/`, { path: `app/${r}/`, type: 'directory', mode: 0o755 });
        await walk(r);
      } else if (st.isFile()) {
        entries.set(`app/${r}`, { path: `app/${r}`, type: 'file', data: await readFile(join(appDir, r)), mode: st.mode & 0o111 ? 0o755 : 0o644 });
      } else if (st.isSymbolicLink()) {
        const target = await readlink(join(appDir, r));
        // An absolute link or one that climbs out would point at something of the host, not of the app.
        if (target.startsWith('/') || posix.normalize(posix.join(posix.dirname(r), target)).startsWith('..')) {
          throw new UserError('invalid_config', `${join(appDir, r)} links outside the app folder (${target})`, { hint: 'copy the file into the app folder instead' });
        }
        entries.set(`app/${r}`, { path: `app/${r}`, type: 'symlink', linkpath: target });
      }
      // Sockets, fifos and devices are skipped: they are not part of an app's code.
    }
  };
  await walk('');
  return sorted(entries);
}

function sorted(entries: Map<string, TarWriteEntry>): TarWriteEntry[] {
  return [...entries.keys()].sort().map((k) => entries.get(k)!);
}

function layer(tar: Buffer, compression: 'none' | 'gzip'): { blob: Buffer; digest: string; diffId: string; mediaType: string } {
  const diffId = sha256(tar);
  if (compression === 'none') return { blob: tar, digest: diffId, diffId, mediaType: 'application/vnd.oci.image.layer.v1.tar' };
  // gzip's header has no timestamp or name here (zlib writes mtime 0), so the blob is as stable as the tar.
  const blob = gzipSync(tar);
  return { blob, digest: sha256(blob), diffId, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' };
}

function json(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v));
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}
