import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { constants, link, lchown, lstat, lutimes, mkdir, open, readdir, rm, symlink, unlink } from 'node:fs/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { UserError } from '../../../core/index.ts';
import { shortDigest } from './digest.ts';
import { readTar, StreamInput, type TarHeader } from './tar.ts';

/**
 * The unpacker: applies image layers, bottom first, into an empty directory that becomes a rootfs
 * snapshot. Layers are untrusted, so this is where a hostile image would try to write on the host. The
 * rules (docs/images.md has them for users):
 *
 * - Names are cleaned (`./`, `//`, `.` dropped); a `..` component or an absolute name is refused (except
 *   `/` alone, which some writers use for the root directory itself).
 * - Nothing is written through a symlink: every parent of an entry is checked with lstat inside the
 *   rootfs and must be a real directory (a missing one is created); a parent that is a symlink is refused.
 *   The entry itself replaces whatever is at its name (unlink, then create with O_EXCL|O_NOFOLLOW), so an
 *   existing symlink or hardlink there is replaced, never written through.
 * - Symlinks may point anywhere (absolute targets are normal; the container resolves them in its own
 *   root), because the rule above makes them inert during unpacking.
 * - Hardlinks must name a regular file already in the rootfs, by a clean relative name reached without
 *   symlinks: absolute targets, `..`, missing targets, and links to symlinks, directories or devices are refused.
 * - Character and block devices, FIFOs, sparse files and unknown entry types are refused.
 * - setuid and setgid bits are stripped, and the sticky bit on anything but a directory; extended
 *   attributes (file capabilities among them) are not applied.
 * - Owners are mapped into the instances' user namespace: container id N is host id hostId+N; ids at or
 *   above the mapping's size are refused.
 * - Bounded: total decompressed bytes, entry count, and name and link-target length.
 * - Each layer's uncompressed digest must equal its DiffID from the image config.
 *
 * Any refusal is a UserError `image_invalid` naming the layer and entry; the caller removes the partial tree.
 */

/** IdMapping has the shape of the runtime's user-namespace mapping (src/agent/runtime/types.ts). */
export interface IdMapping {
  containerId: number;
  hostId: number;
  size: number;
}

/** UnpackLimits bound one image's unpacking (all layers together). */
export interface UnpackLimits {
  /** maxBytes caps the decompressed size of all layers (tar framing included). */
  maxBytes: number;
  /** maxEntries caps the number of tar entries in all layers. */
  maxEntries: number;
  /** maxPathLength caps an entry name or link target, in bytes (PATH_MAX). */
  maxPathLength: number;
}

export const DEFAULT_LIMITS: UnpackLimits = { maxBytes: 10 * 1024 ** 3, maxEntries: 500_000, maxPathLength: 4096 };
const NAME_MAX = 255;

/** LayerInput is one stored layer blob and the DiffID its uncompressed content must have. */
export interface LayerInput {
  digest: string;
  path: string;
  diffId: string;
}

export interface UnpackOptions {
  limits?: Partial<UnpackLimits>;
  /** idMapping chowns entries to hostId+uid; null keeps the unpacking process's ownership (non-root development). */
  idMapping: IdMapping | null;
  /** onLayer is told when each layer starts. */
  onLayer?: (index: number, layer: LayerInput) => void;
}

/** UnpackResult sums up a finished rootfs. */
export interface UnpackResult {
  /** size is the bytes of regular-file content in the rootfs as unpacked (before whiteouts removed any). */
  size: number;
  entries: number;
  /** stripped names entries whose setuid, setgid or sticky bits were removed (first 100). */
  stripped: string[];
  strippedCount: number;
}

type Compression = 'gzip' | 'zstd' | 'none';

/** detectCompression reads a blob's magic bytes; media types are not trusted to say it. */
export async function detectCompression(path: string): Promise<Compression> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'gzip';
    if (bytesRead === 4 && buf.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    await fh.close();
  }
}

/** decompressed yields a blob's uncompressed bytes; the streams are destroyed when the consumer stops. */
export async function* decompressed(path: string, compression: Compression): AsyncGenerator<Buffer> {
  const file = createReadStream(path, { highWaterMark: 1024 * 1024 });
  if (compression === 'none') {
    try {
      yield* file as AsyncIterable<Buffer>;
    } finally {
      file.destroy();
    }
    return;
  }
  const z = compression === 'gzip' ? createGunzip({ chunkSize: 256 * 1024 }) : createZstdDecompress({ chunkSize: 256 * 1024 });
  file.on('error', (e) => z.destroy(e));
  file.pipe(z);
  try {
    yield* z as AsyncIterable<Buffer>;
  } finally {
    file.destroy();
    z.destroy();
  }
}

interface State {
  root: string;
  limits: UnpackLimits;
  idMapping: IdMapping | null;
  bytes: number;
  entries: number;
  size: number;
  stripped: string[];
  strippedCount: number;
  /** dirs caches relative paths known to be real directories (cleared under anything removed). */
  dirs: Set<string>;
}

interface LayerState {
  label: string;
  /** written holds every path this layer created, and their parents: an opaque dir keeps these. */
  written: Set<string>;
  /** dirTimes are applied when the layer ends, since adding children changes a directory's mtime. */
  dirTimes: Map<string, number>;
}

/**
 * unpackLayers applies layers in order into root, an empty directory the caller made (and removes on
 * failure). It throws UserError `image_invalid` on any refused entry, broken limit or DiffID mismatch.
 */
export async function unpackLayers(root: string, layers: readonly LayerInput[], options: UnpackOptions): Promise<UnpackResult> {
  const st: State = {
    root,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    idMapping: options.idMapping,
    bytes: 0,
    entries: 0,
    size: 0,
    stripped: [],
    strippedCount: 0,
    dirs: new Set(['']),
  };
  for (const [i, layer] of layers.entries()) {
    options.onLayer?.(i, layer);
    await applyLayer(st, layer, i);
  }
  return { size: st.size, entries: st.entries, stripped: st.stripped, strippedCount: st.strippedCount };
}

function refuse(ls: LayerState, name: string, why: string, hint = 'the image contains an unsafe or unsupported entry; rebuild it without it'): UserError {
  return new UserError('image_invalid', `${ls.label}: entry ${JSON.stringify(name.slice(0, 300))} refused: ${why}`, { hint, details: { entry: name.slice(0, 4096) } });
}

async function applyLayer(st: State, layer: LayerInput, index: number): Promise<void> {
  const ls: LayerState = { label: `layer ${index + 1} (${shortDigest(layer.digest)})`, written: new Set(), dirTimes: new Map() };
  const compression = await detectCompression(layer.path);
  const hash = createHash('sha256');
  const counted = count(st, ls, decompressed(layer.path, compression), hash);
  const input = new StreamInput(counted, ls.label);
  try {
    await readLayer(st, ls, input);
  } finally {
    // Closes the file and decompressor when reading stopped early (a refused entry, a broken limit).
    await counted.return(undefined);
  }
  for (const [rel, mtime] of ls.dirTimes) {
    // A later entry of this layer may have replaced the directory or one of its parents (by a symlink,
    // even): date only what is still a real directory reached without symlinks.
    if (await isRealDir(st, rel)) await lutimes(abs(st, rel), mtime, mtime);
  }
  const diffId = `sha256:${hash.digest('hex')}`;
  if (diffId !== layer.diffId) {
    throw new UserError('image_invalid', `${ls.label}: uncompressed content has digest ${diffId}, the image config says ${layer.diffId}`, {
      hint: 'the layer does not match the image config; the image is corrupt or was tampered with',
    });
  }
}

async function isRealDir(st: State, rel: string): Promise<boolean> {
  let path = st.root;
  for (const c of rel === '' ? [] : rel.split('/')) {
    path = `${path}/${c}`;
    const s = await lstatOrNull(path);
    if (s === null || !s.isDirectory()) return false;
  }
  return true;
}

async function readLayer(st: State, ls: LayerState, input: StreamInput): Promise<void> {
  try {
    for await (const entry of readTar(input, ls.label)) {
      st.entries++;
      if (st.entries > st.limits.maxEntries) {
        throw refuse(ls, entry.header.path, `the image has more than ${st.limits.maxEntries} entries`, 'raise the entry limit, or make the image smaller');
      }
      try {
        await applyEntry(st, ls, entry.header, entry.body);
      } catch (e) {
        // File system answers an image can provoke (a hardlink whose target an earlier step of the same
        // entry removed, too many links to one file) are the image's fault, not Ward's.
        const code = errno(e);
        if (!(e instanceof UserError) && code && IMAGE_ERRNOS.has(code)) throw refuse(ls, entry.header.path, `it cannot be created (${code})`);
        throw e;
      }
    }
    // Hash what follows the end-of-archive marker too: the DiffID covers the whole stream.
    await input.drain();
  } catch (e) {
    if (e instanceof UserError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'Z_DATA_ERROR' || err.code === 'Z_BUF_ERROR' || err.code?.startsWith('ERR_ZSTD') || /zstd|incorrect header|unexpected end/i.test(err.message)) {
      throw new UserError('image_invalid', `${ls.label}: cannot decompress (${err.message})`, { hint: 'the layer is corrupt or truncated' });
    }
    throw e;
  }
}

/** count hashes and counts the decompressed stream, stopping at the byte limit: the decompression-bomb guard. */
async function* count(st: State, ls: LayerState, source: AsyncIterable<Buffer>, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    st.bytes += chunk.length;
    if (st.bytes > st.limits.maxBytes) {
      throw new UserError('image_invalid', `${ls.label}: the image unpacks to more than ${st.limits.maxBytes} bytes`, {
        hint: 'raise the image size limit, or make the image smaller',
        details: { limit: st.limits.maxBytes },
      });
    }
    hash.update(chunk);
    yield chunk;
  }
}

function abs(st: State, rel: string): string {
  return rel === '' ? st.root : `${st.root}/${rel}`;
}

/** cleanName splits a stored name (the entry's, or its hardlink target) into components, refusing `..`, absolute names and overlong ones. */
function cleanName(st: State, ls: LayerState, entry: string, name: string, what: string): string[] {
  if (name.startsWith('/')) {
    // Some writers (umoci) name the root directory "/": that one absolute name means the rootfs itself.
    if (name.split('/').every((c) => c === '' || c === '.')) return [];
    throw refuse(ls, entry, `${what} is an absolute path`);
  }
  if (Buffer.byteLength(name) > st.limits.maxPathLength) throw refuse(ls, entry, `${what} is longer than ${st.limits.maxPathLength} bytes`);
  const parts: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw refuse(ls, entry, `${what} has a ".." component`);
    if (Buffer.byteLength(c) > NAME_MAX) throw refuse(ls, entry, `${what} has a component longer than ${NAME_MAX} bytes`);
    parts.push(c);
  }
  return parts;
}

const IMAGE_ERRNOS = new Set(['ENOENT', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'ELOOP', 'EMLINK', 'ENAMETOOLONG']);

function forget(st: State, rel: string): void {
  for (const d of st.dirs) if (d === rel || d.startsWith(`${rel}/`)) st.dirs.delete(d);
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

async function lstatOrNull(path: string) {
  try {
    return await lstat(path);
  } catch (e) {
    if (errno(e) === 'ENOENT') return null;
    throw e;
  }
}

/**
 * walkParents checks each parent of parts with lstat: a real directory passes, a missing one is created
 * (when create) or ends the walk (returns false), anything else (a symlink above all) is refused.
 */
async function walkParents(st: State, ls: LayerState, name: string, parts: readonly string[], create: boolean, what = 'its parent'): Promise<boolean> {
  let rel = '';
  for (const c of parts.slice(0, -1)) {
    rel = rel === '' ? c : `${rel}/${c}`;
    if (st.dirs.has(rel)) continue;
    const s = await lstatOrNull(abs(st, rel));
    if (s === null) {
      if (!create) return false;
      await mkdir(abs(st, rel), { mode: 0o755 });
      await ownDir(st, rel, 0, 0, 0o755);
    } else if (s.isSymbolicLink()) {
      throw refuse(ls, name, `${what} ${JSON.stringify(rel)} is a symlink, and nothing is written through a symlink`);
    } else if (!s.isDirectory()) {
      throw refuse(ls, name, `${what} ${JSON.stringify(rel)} is not a directory`);
    }
    st.dirs.add(rel);
  }
  return true;
}

function hostIds(st: State, ls: LayerState, h: TarHeader): [number, number] {
  const m = st.idMapping;
  if (m === null) return [-1, -1];
  for (const [kind, id] of [['uid', h.uid], ['gid', h.gid]] as const) {
    if (id < m.containerId || id >= m.containerId + m.size) {
      throw refuse(ls, h.path, `its ${kind} ${id} is outside the instances' id range ${m.containerId}–${m.containerId + m.size - 1}`, 'use ids below 65536 in the image');
    }
  }
  return [h.uid - m.containerId + m.hostId, h.gid - m.containerId + m.hostId];
}

/** safeMode strips setuid and setgid, and sticky except on directories, recording what it stripped. */
function safeMode(st: State, h: TarHeader, dir: boolean): number {
  const keep = dir ? 0o1777 : 0o777;
  if (h.mode & ~keep & 0o7000) {
    st.strippedCount++;
    if (st.stripped.length < 100) st.stripped.push(h.path);
  }
  return h.mode & keep;
}

async function ownDir(st: State, rel: string, uid: number, gid: number, mode: number): Promise<void> {
  // Through a descriptor opened without following links: the chmod and chown land on this directory.
  const fh = await open(abs(st, rel), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    if (st.idMapping) await fh.chown(uid - st.idMapping.containerId + st.idMapping.hostId, gid - st.idMapping.containerId + st.idMapping.hostId);
    await fh.chmod(mode);
  } finally {
    await fh.close();
  }
}

/** clear removes whatever is at rel (a file, a link, a whole tree), never following a symlink. */
async function clear(st: State, rel: string): Promise<void> {
  const s = await lstatOrNull(abs(st, rel));
  if (s === null) return;
  if (s.isDirectory()) await rm(abs(st, rel), { recursive: true, force: true });
  else await unlink(abs(st, rel));
  forget(st, rel);
}

function markWritten(ls: LayerState, parts: readonly string[]): void {
  let rel = '';
  for (const c of parts) {
    rel = rel === '' ? c : `${rel}/${c}`;
    ls.written.add(rel);
  }
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

async function applyEntry(st: State, ls: LayerState, h: TarHeader, body: () => AsyncIterable<Buffer>): Promise<void> {
  const parts = cleanName(st, ls, h.path, h.path, 'its name');
  const base = parts[parts.length - 1] ?? '';
  if (base.startsWith(WHITEOUT)) return whiteout(st, ls, h, parts, base);
  const rel = parts.join('/');
  switch (h.type) {
    case 'char':
    case 'block':
      throw refuse(ls, h.path, `it is a ${h.type === 'char' ? 'character' : 'block'} device`, 'images may not contain device nodes; the runtime provides /dev');
    case 'fifo':
      throw refuse(ls, h.path, 'it is a FIFO', 'images may not contain FIFOs; create it when the app starts');
    case 'other':
      throw refuse(ls, h.path, `its type ${JSON.stringify(h.typeflag)} is not supported (only files, directories, symlinks and hardlinks)`);
    default:
  }
  if (rel === '' && h.type !== 'directory') throw refuse(ls, h.path, 'only a directory may name the root');
  const [uid, gid] = hostIds(st, ls, h);
  if (h.type === 'symlink' || h.type === 'hardlink') {
    if (h.linkpath === '') throw refuse(ls, h.path, 'its link target is empty');
    if (Buffer.byteLength(h.linkpath) > st.limits.maxPathLength) throw refuse(ls, h.path, `its link target is longer than ${st.limits.maxPathLength} bytes`);
  }
  if (h.type === 'file' && st.bytes + h.size > st.limits.maxBytes) {
    throw new UserError('image_invalid', `${ls.label}: entry ${JSON.stringify(h.path)} (${h.size} bytes) would take the image over ${st.limits.maxBytes} bytes`, {
      hint: 'raise the image size limit, or make the image smaller',
      details: { limit: st.limits.maxBytes },
    });
  }
  await walkParents(st, ls, h.path, parts, true);
  const target = abs(st, rel);
  const mtime = h.mtime;

  if (h.type === 'directory') {
    const s = await lstatOrNull(target);
    if (s !== null && !s.isDirectory()) await clear(st, rel);
    if (s === null || !s.isDirectory()) await mkdir(target, { mode: 0o700 });
    await ownDir(st, rel, h.uid, h.gid, safeMode(st, h, true));
    st.dirs.add(rel);
    ls.dirTimes.set(rel, mtime);
    markWritten(ls, parts);
    return;
  }

  if (h.type === 'hardlink') {
    const tparts = cleanName(st, ls, h.path, h.linkpath, 'its hardlink target');
    const trel = tparts.join('/');
    if (trel === '') throw refuse(ls, h.path, 'its hardlink target is the root');
    if (trel === rel) throw refuse(ls, h.path, 'it is a hardlink to itself');
    if (!(await walkParents(st, ls, h.path, tparts, false, "its hardlink target's parent"))) {
      throw refuse(ls, h.path, `its hardlink target ${JSON.stringify(trel)} does not exist`);
    }
    const ts = await lstatOrNull(abs(st, trel));
    if (ts === null) throw refuse(ls, h.path, `its hardlink target ${JSON.stringify(trel)} does not exist`);
    if (!ts.isFile()) throw refuse(ls, h.path, `its hardlink target ${JSON.stringify(trel)} is not a regular file`);
    await clear(st, rel);
    await link(abs(st, trel), target);
    markWritten(ls, parts);
    return;
  }

  await clear(st, rel);
  if (h.type === 'symlink') {
    await symlink(h.linkpath, target);
    if (st.idMapping) await lchown(target, uid, gid);
    await lutimes(target, mtime, mtime);
    markWritten(ls, parts);
    return;
  }

  // A regular file: created fresh (O_EXCL, O_NOFOLLOW), owned and moded through its descriptor.
  const fh = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    let written = 0;
    for await (const chunk of body()) {
      written += chunk.length;
      await fh.write(chunk);
    }
    if (written !== h.size) throw refuse(ls, h.path, `it has ${written} bytes, its header says ${h.size}`);
    if (st.idMapping) await fh.chown(uid, gid);
    await fh.chmod(safeMode(st, h, false));
    await fh.utimes(mtime, mtime);
  } finally {
    await fh.close();
  }
  st.size += h.size;
  markWritten(ls, parts);
}

/**
 * whiteout applies `.wh.NAME` (remove NAME from lower layers) and `.wh..wh..opq` (hide everything lower
 * layers put in this directory), as the OCI image spec defines them. Other `.wh..wh.` names are aufs
 * bookkeeping and are skipped. What this same layer wrote is kept: whiteouts only hide lower layers.
 */
async function whiteout(st: State, ls: LayerState, h: TarHeader, parts: string[], base: string): Promise<void> {
  const parentParts = parts.slice(0, -1);
  const parentRel = parentParts.join('/');
  if (base === OPAQUE) {
    if (!(await walkParents(st, ls, h.path, parts, false))) return;
    const s = await lstatOrNull(abs(st, parentRel));
    if (s === null || !s.isDirectory()) return;
    markWritten(ls, parentParts);
    await clearOpaque(st, ls, parentRel);
    return;
  }
  if (base.startsWith(`${WHITEOUT}${WHITEOUT}`)) return;
  const name = base.slice(WHITEOUT.length);
  if (name === '' || name === '.' || name === '..') throw refuse(ls, h.path, 'it is a whiteout for an invalid name');
  const rel = parentRel === '' ? name : `${parentRel}/${name}`;
  if (ls.written.has(rel)) return;
  if (!(await walkParents(st, ls, h.path, parts, false))) return;
  await clear(st, rel);
}

async function clearOpaque(st: State, ls: LayerState, dirRel: string): Promise<void> {
  for (const name of await readdir(abs(st, dirRel))) {
    const rel = dirRel === '' ? name : `${dirRel}/${name}`;
    if (!ls.written.has(rel)) {
      await clear(st, rel);
      continue;
    }
    const s = await lstat(abs(st, rel));
    if (s.isDirectory()) await clearOpaque(st, ls, rel);
  }
}
