import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { UserError } from '../../../core/index.ts';
import { writeTar, type TarWriteEntry } from './tar.ts';
import { unpackLayers, type LayerInput, type UnpackOptions } from './unpack.ts';

const isRoot = process.getuid?.() === 0;
const MAP = { containerId: 0, hostId: 100_000, size: 65_536 };
let tmp: string;
let n = 0;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ward-unpack-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** unpack writes each layer as a blob (compressed as asked) and unpacks them into a fresh root. */
async function unpack(layers: (TarWriteEntry[] | { entries: TarWriteEntry[]; compression: 'gzip' | 'zstd' | 'none'; diffId?: string })[], opts: Partial<UnpackOptions> = {}) {
  const root = join(tmp, `root-${n}`);
  await mkdir(root);
  const inputs: LayerInput[] = [];
  for (const [i, l] of layers.entries()) {
    const spec = Array.isArray(l) ? { entries: l, compression: 'gzip' as const } : l;
    const tar = writeTar(spec.entries);
    const blob = spec.compression === 'gzip' ? gzipSync(tar) : spec.compression === 'zstd' ? zstdCompressSync(tar) : tar;
    const path = join(tmp, `blob-${n}-${i}`);
    await writeFile(path, blob);
    inputs.push({ digest: `sha256:${createHash('sha256').update(blob).digest('hex')}`, path, diffId: 'diffId' in spec && spec.diffId ? spec.diffId : `sha256:${createHash('sha256').update(tar).digest('hex')}` });
  }
  n++;
  const result = await unpackLayers(root, inputs, { idMapping: MAP, ...opts });
  return { root, result };
}

const f = (path: string, data = path, more: Partial<TarWriteEntry> = {}): TarWriteEntry => ({ path, type: 'file', data, ...more });
const d = (path: string, more: Partial<TarWriteEntry> = {}): TarWriteEntry => ({ path, type: 'directory', ...more });
const l = (path: string, linkpath: string): TarWriteEntry => ({ path, type: 'symlink', linkpath });

test('files, directories, links, owners, modes and times', { skip: !isRoot && 'needs root' }, async () => {
  const { root, result } = await unpack([[
    d('./', { mode: 0o755 }),
    d('etc/', { mode: 0o750, uid: 0, gid: 10, mtime: 1_600_000_000 }),
    f('etc/conf', 'a=1\n', { mode: 0o640, uid: 1000, gid: 1000, mtime: 1_500_000_000 }),
    f('deep/implicit/file', 'x'),
    l('abs', '/etc/conf'),
    l('rel', 'etc/conf'),
    { path: 'etc/hard', type: 'hardlink', linkpath: 'etc/conf' },
  ]]);
  const conf = await stat(join(root, 'etc/conf'));
  assert.deepEqual([conf.mode & 0o7777, conf.uid, conf.gid, conf.mtimeMs / 1000], [0o640, 101_000, 101_000, 1_500_000_000]);
  const etc = await stat(join(root, 'etc'));
  assert.deepEqual([etc.mode & 0o7777, etc.uid, etc.gid, etc.mtimeMs / 1000], [0o750, 100_000, 100_010, 1_600_000_000], 'directory times are set after its children');
  const implicit = await stat(join(root, 'deep/implicit'));
  assert.deepEqual([implicit.mode & 0o7777, implicit.uid], [0o755, 100_000], 'missing parents are made 0755, owned by container root');
  assert.equal(await readlink(join(root, 'abs')), '/etc/conf', 'absolute symlinks are kept as links');
  assert.equal((await lstat(join(root, 'abs'))).uid, 100_000);
  assert.equal(await readFile(join(root, 'rel'), 'utf8'), 'a=1\n');
  assert.equal((await stat(join(root, 'etc/hard'))).ino, conf.ino);
  assert.equal(result.size, 'a=1\n'.length + 1);
  assert.equal(result.entries, 7);
});

test('whiteouts remove lower entries; opaque directories hide lower contents but keep this layer\'s', { skip: !isRoot && 'needs root' }, async () => {
  const { root } = await unpack([
    [d('a'), f('a/gone'), f('a/kept'), d('a/sub'), f('a/sub/lower'), d('b'), f('b/old'), d('b/dir'), f('b/dir/lower'), d('c'), f('c/old')],
    [f('a/.wh.gone', ''), f('a/.wh.missing', ''), f('.wh.nothing-here', ''), f('a/.wh..wh.plnk', '')],
    // Marker first (what most builders write), then new entries.
    [f('b/.wh..wh..opq', ''), f('b/new'), d('b/dir'), f('b/dir/new')],
    // Entries first, marker after: what this layer wrote is still kept.
    [f('c/new'), f('c/.wh..wh..opq', '')],
  ]);
  assert.deepEqual((await readdir(join(root, 'a'))).sort(), ['kept', 'sub']);
  assert.deepEqual((await readdir(join(root, 'b'))).sort(), ['dir', 'new']);
  assert.deepEqual(await readdir(join(root, 'b/dir')), ['new'], 'a directory recreated under an opaque one loses its lower contents');
  assert.deepEqual(await readdir(join(root, 'c')), ['new']);
});

test('an entry replaces what is at its name and never writes through it', { skip: !isRoot && 'needs root' }, async () => {
  const outside = join(tmp, 'outside-file');
  await writeFile(outside, 'original');
  const { root } = await unpack([
    [l('link', outside), f('file'), d('dir'), f('dir/child'), f('shared', 'shared'), { path: 'shared2', type: 'hardlink', linkpath: 'shared' }, l('dirlink', tmp)],
    [f('link', 'replaced'), d('file'), f('dir', 'now a file'), f('shared', 'new'), d('dirlink')],
  ]);
  assert.equal(await readFile(outside, 'utf8'), 'original', 'the symlink was replaced, not followed');
  assert.equal(await readFile(join(root, 'link'), 'utf8'), 'replaced');
  assert.ok((await lstat(join(root, 'file'))).isDirectory());
  assert.equal(await readFile(join(root, 'dir'), 'utf8'), 'now a file');
  assert.equal(await readFile(join(root, 'shared2'), 'utf8'), 'shared', 'the other name of a hardlinked file keeps its content');
  assert.ok((await lstat(join(root, 'dirlink'))).isDirectory());
  assert.ok((await lstat(tmp)).isDirectory());
});

test('gzip, zstd and uncompressed layers; DiffIDs are checked', { skip: !isRoot && 'needs root' }, async () => {
  const { root } = await unpack([
    { entries: [f('g')], compression: 'gzip' },
    { entries: [f('z')], compression: 'zstd' },
    { entries: [f('n')], compression: 'none' },
  ]);
  assert.deepEqual((await readdir(root)).sort(), ['g', 'n', 'z']);
  await assert.rejects(unpack([{ entries: [f('a')], compression: 'zstd', diffId: `sha256:${'0'.repeat(64)}` }]),
    (e: unknown) => e instanceof UserError && e.code === 'image_invalid' && /the image config says/.test(e.message));
});

test('the root may be named "/" or "./", and only as a directory', { skip: !isRoot && 'needs root' }, async () => {
  const { root } = await unpack([[d('/', { mode: 0o711 }), f('x')]]);
  assert.equal((await stat(root)).mode & 0o7777, 0o711);
  await assert.rejects(unpack([[f('.', 'x')]]), (e: unknown) => e instanceof UserError && /only a directory may name the root/.test(e.message));
  await assert.rejects(unpack([[d('/..')]]), (e: unknown) => e instanceof UserError && /absolute path/.test(e.message));
});

test('without an id mapping, ownership is left to the unpacking user', async () => {
  const { root } = await unpack([[f('x', 'x', { uid: 4242 })]], { idMapping: null });
  assert.equal((await stat(join(root, 'x'))).uid, process.getuid?.());
});

test('a hardlink whose target goes away when its own name is cleared is refused', { skip: !isRoot && 'needs root' }, async () => {
  await assert.rejects(unpack([[d('a'), f('a/t'), { path: 'a', type: 'hardlink', linkpath: 'a/t' }]]),
    (e: unknown) => e instanceof UserError && e.code === 'image_invalid' && /"a" refused: it cannot be created \(ENOENT\)/.test(e.message));
});

test('corrupt or truncated compressed layers are refused', { skip: !isRoot && 'needs root' }, async () => {
  for (const [name, compress] of [['gzip', gzipSync], ['zstd', zstdCompressSync]] as const) {
    const tar = writeTar([f('a', 'x'.repeat(100_000))]);
    const blob = compress(tar);
    const path = join(tmp, `cut-${name}`);
    await writeFile(path, blob.subarray(0, blob.length >> 1));
    const root = join(tmp, `cut-root-${name}`);
    await mkdir(root);
    await assert.rejects(unpackLayers(root, [{ digest: `sha256:${'0'.repeat(64)}`, path, diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}` }], { idMapping: MAP }),
      (e: unknown) => e instanceof UserError && e.code === 'image_invalid' && /cannot decompress|truncated/.test(e.message), name);
  }
});
