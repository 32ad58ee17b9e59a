// Evil images: each kind of hostile layer or broken image the issue names, pulled through the real
// ImageStore. Every test asserts the refusal (a UserError with the right code, naming the entry) AND an
// untouched host: nothing new or changed outside the store, and no snapshot, temp file or bad blob left
// inside it.
//
// Targets on the real /etc use fresh `ward-evil-*` names (or are only read, like /etc/shadow), and the
// "overwrite a file through a symlink" cases aim at a sentinel file in the test's temp dir: a regression
// must fail the test, not damage the machine running it.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../../src/core/index.ts';
import { ImageStore, type TarWriteEntry, type UnpackLimits } from '../../src/agent/runtime/images/index.ts';
import {
  ensureImageFixtures, push, startRegistry, startTokenServer, tempDir, writeOciLayout,
  type ImageFixtures, type LayerSpec, type Registry, type TokenServer,
} from '../fixtures/images.ts';

const isRoot = process.getuid?.() === 0;

interface Host {
  dir: string;
  data: string;
  sentinel: string;
  etcName: string;
  remove: () => Promise<void>;
}

/** setup makes a temp dir with the store deep inside (so `../..` lands in the temp dir) and a sentinel dir beside it. */
async function setup(): Promise<Host> {
  const { dir, remove } = await tempDir('ward-evil-');
  const data = join(dir, 'a', 'b', 'data');
  const sentinel = join(dir, 'sentinel');
  await mkdir(data, { recursive: true });
  await mkdir(sentinel);
  await writeFile(join(sentinel, 'victim'), 'original\n');
  return { dir, data, sentinel, etcName: `ward-evil-${randomBytes(6).toString('hex')}`, remove };
}

/** listTree lists every path under dir with a content/identity fingerprint, skipping `skip` subtrees. */
async function listTree(dir: string, skip: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (p: string) => {
    if (skip.includes(p)) return;
    const s = await lstat(p);
    let fp = `${s.mode}:${s.uid}:${s.size}:${s.nlink}`;
    if (s.isFile()) fp += `:${createHash('sha256').update(await readFile(p)).digest('hex')}`;
    out.set(p, fp);
    if (s.isDirectory()) for (const n of await readdir(p)) await walk(join(p, n));
  };
  await walk(dir);
  return out;
}

async function hostFingerprint(): Promise<string> {
  const parts: string[] = [];
  for (const f of ['/etc/passwd', '/etc/shadow']) {
    const s = await stat(f);
    parts.push(`${f}:${s.nlink}:${s.mode}:${createHash('sha256').update(await readFile(f)).digest('hex')}`);
  }
  parts.push((await readdir('/etc')).filter((n) => n.startsWith('ward-evil')).join(','));
  return parts.join('\n');
}

async function storeLeftovers(data: string): Promise<string[]> {
  const left: string[] = [];
  for (const sub of ['snapshots', 'tmp']) {
    const names = await readdir(join(data, 'images', sub)).catch(() => [] as string[]);
    left.push(...names.map((n) => `${sub}/${n}`));
  }
  return left;
}

/**
 * expectRefused pulls ref and checks: a UserError with `code` whose message matches `message`, no
 * snapshot or temp file in the store, no blob with a digest in `notStored`, and nothing outside the
 * store changed (the temp dir, /etc/passwd, /etc/shadow, no new /etc/ward-evil-*).
 */
async function expectRefused(h: Host, ref: string, code: string, message: RegExp, opts: { limits?: Partial<UnpackLimits>; registry?: ConstructorParameters<typeof ImageStore>[0]['registry']; notStored?: string[] } = {}): Promise<UserError> {
  const beforeTree = await listTree(h.dir, [h.data]);
  const beforeHost = await hostFingerprint();
  const store = new ImageStore({ dataDir: h.data, limits: opts.limits, registry: opts.registry });
  let caught: unknown;
  try {
    await store.pull(ref);
  } catch (e) {
    caught = e;
  } finally {
    store.close();
  }
  assert.ok(caught instanceof UserError, `expected a UserError, got ${caught instanceof Error ? caught.stack : String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, message);
  assert.ok(caught.hint, 'the error has a hint');
  assert.deepEqual(await storeLeftovers(h.data), [], 'no snapshot or temp file left in the store');
  for (const d of opts.notStored ?? []) {
    await assert.rejects(stat(join(h.data, 'images', 'blobs', 'sha256', d.slice(7))), 'a blob that failed verification is not stored');
  }
  assert.deepEqual(await listTree(h.dir, [h.data]), beforeTree, 'nothing outside the store changed');
  assert.equal(await hostFingerprint(), beforeHost, '/etc is untouched');
  await assert.rejects(stat(join('/etc', h.etcName)));
  return caught;
}

/** evilLayout writes an OCI layout with these layers (gzip) and returns its `oci:` reference. */
async function evilLayout(h: Host, layers: TarWriteEntry[][] | LayerSpec[], extra: { diffIds?: string[] } = {}) {
  const specs: LayerSpec[] = layers.map((l) => (Array.isArray(l) ? { entries: l } : l));
  const layout = await writeOciLayout(join(h.dir, 'layout'), [{ layers: specs, ...extra }]);
  return { ref: `oci:${layout.dir}`, layout };
}

const file = (path: string, data: Buffer | string = 'x', more: Partial<TarWriteEntry> = {}): TarWriteEntry => ({ path, type: 'file', data, ...more });
const dir = (path: string, more: Partial<TarWriteEntry> = {}): TarWriteEntry => ({ path, type: 'directory', ...more });

describe('evil layers are refused and leave the host untouched', { skip: !isRoot && 'needs root (chown to mapped ids)' }, () => {
  let h: Host;
  const fresh = async () => {
    if (h) await h.remove();
    h = await setup();
  };
  after(async () => h && (await h.remove()));

  test('`..` path: ../../etc/x', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[dir('etc'), file(`../../etc/${h.etcName}`), file('../../sentinel/victim', 'pwned')]]);
    await expectRefused(h, ref, 'image_invalid', /"\.\.\/\.\.\/etc\/ward-evil-[0-9a-f]+" refused: its name has a "\.\." component/);
  });

  test('`..` in the middle of a path: etc/../../x', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[file(`etc/../../../../sentinel/victim`, 'pwned')]]);
    await expectRefused(h, ref, 'image_invalid', /"\.\." component/);
  });

  test('absolute path: /etc/x', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[file(`/etc/${h.etcName}`)]]);
    await expectRefused(h, ref, 'image_invalid', /"\/etc\/ward-evil-[0-9a-f]+" refused: its name is an absolute path/);
  });

  test('absolute path in a pax long name', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[file(`/etc/${h.etcName}-${'y'.repeat(120)}`)]]);
    await expectRefused(h, ref, 'image_invalid', /absolute path/);
  });

  test('symlink a -> /etc, then a/x', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[{ path: 'a', type: 'symlink', linkpath: '/etc' }, file(`a/${h.etcName}`)]]);
    await expectRefused(h, ref, 'image_invalid', /refused: its parent "a" is a symlink, and nothing is written through a symlink/);
  });

  test('symlink a -> <host dir> (absolute), then a/victim overwrites nothing', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[{ path: 'a', type: 'symlink', linkpath: h.sentinel }, file('a/victim', 'pwned')]]);
    await expectRefused(h, ref, 'image_invalid', /"a\/victim" refused: its parent "a" is a symlink/);
  });

  test('symlink a -> ../../.., then a/x', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[{ path: 'a', type: 'symlink', linkpath: '../../..' }, file('a/x'), file('a/sentinel/victim', 'pwned')]]);
    await expectRefused(h, ref, 'image_invalid', /"a\/x" refused: its parent "a" is a symlink/);
  });

  test('symlink from a lower layer, written through by a later layer', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [
      [dir('etc'), { path: 'etc/conf', type: 'symlink', linkpath: h.sentinel }],
      [file('etc/conf/victim', 'pwned')],
    ]);
    await expectRefused(h, ref, 'image_invalid', /layer 2 .*"etc\/conf\/victim" refused: its parent "etc\/conf" is a symlink/);
  });

  test('symlink, then a whiteout through it (would delete outside)', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[{ path: 'a', type: 'symlink', linkpath: h.sentinel }], [file('a/.wh.victim', '')]]);
    await expectRefused(h, ref, 'image_invalid', /"a\/\.wh\.victim" refused: its parent "a" is a symlink/);
  });

  test('symlink, then an opaque marker through it (would empty a host dir)', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[{ path: 'a', type: 'symlink', linkpath: h.sentinel }], [file('a/.wh..wh..opq', '')]]);
    await expectRefused(h, ref, 'image_invalid', /"a\/\.wh\.\.wh\.\.opq" refused: its parent "a" is a symlink/);
  });

  test('hardlink to /etc/shadow', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[{ path: 'shadow', type: 'hardlink', linkpath: '/etc/shadow' }]]);
    await expectRefused(h, ref, 'image_invalid', /"shadow" refused: its hardlink target is an absolute path/);
  });

  test('hardlink to ../outside', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[{ path: 'x', type: 'hardlink', linkpath: '../../../../sentinel/victim' }]]);
    await expectRefused(h, ref, 'image_invalid', /"x" refused: its hardlink target has a "\.\." component/);
  });

  test('hardlink through a symlink to a host file', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[{ path: 'a', type: 'symlink', linkpath: h.sentinel }, { path: 'x', type: 'hardlink', linkpath: 'a/victim' }]]);
    await expectRefused(h, ref, 'image_invalid', /"x" refused: its hardlink target's parent "a" is a symlink/);
  });

  test('hardlink to a symlink that escapes', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[{ path: 's', type: 'symlink', linkpath: '/etc/shadow' }, { path: 'x', type: 'hardlink', linkpath: 's' }]]);
    await expectRefused(h, ref, 'image_invalid', /"x" refused: its hardlink target "s" is not a regular file/);
  });

  test('character device', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[dir('dev'), { path: 'dev/mem', type: 'char', devmajor: 1, devminor: 1 }]]);
    await expectRefused(h, ref, 'image_invalid', /"dev\/mem" refused: it is a character device/);
  });

  test('block device', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[{ path: 'sda', type: 'block', devmajor: 8, devminor: 0 }]]);
    await expectRefused(h, ref, 'image_invalid', /"sda" refused: it is a block device/);
  });

  test('FIFO', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[{ path: 'pipe', type: 'fifo' }]]);
    await expectRefused(h, ref, 'image_invalid', /"pipe" refused: it is a FIFO/);
  });

  test('uid outside the user namespace mapping', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[file('x', 'x', { uid: 70000 })]]);
    await expectRefused(h, ref, 'image_invalid', /"x" refused: its uid 70000 is outside/);
  });

  test('gzip bomb over the size cap', async () => {
    await fresh();
    // 64 MiB of zeros gzip to about 64 KiB; the cap is 16 MiB. The header says the size, so this stops early.
    const { ref } = await evilLayout(h, [[file('bomb', Buffer.alloc(64 * 1024 * 1024))]]);
    await expectRefused(h, ref, 'image_invalid', /would take the image over 16777216 bytes/, { limits: { maxBytes: 16 * 1024 * 1024 } });
  });

  test('gzip bomb of many small files over the size cap (counted while decompressing)', async () => {
    await fresh();
    const entries = Array.from({ length: 40 }, (_, i) => file(`f${i}`, Buffer.alloc(1024 * 1024)));
    const { ref } = await evilLayout(h, [entries]);
    await expectRefused(h, ref, 'image_invalid', /over 16777216 bytes|more than 16777216 bytes/, { limits: { maxBytes: 16 * 1024 * 1024 } });
  });

  test('too many entries', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [Array.from({ length: 300 }, (_, i) => file(`f${i}`, ''))]);
    await expectRefused(h, ref, 'image_invalid', /more than 200 entries/, { limits: { maxEntries: 200 } });
  });

  test('overlong path', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[file(`${'d/'.repeat(2100)}x`)]]);
    await expectRefused(h, ref, 'image_invalid', /longer than 4096 bytes/);
  });

  test('setuid binary: stripped, not refused', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[dir('bin'), file('bin/su', '#!/bin/sh\n', { mode: 0o4755 }), file('bin/sg', 'x', { mode: 0o2755 }), dir('tmp', { mode: 0o1777 }), file('sticky', 'x', { mode: 0o1644 })]]);
    const store = new ImageStore({ dataDir: h.data });
    const events: string[] = [];
    const img = await store.pull(ref, { onEvent: (e) => e.type === 'unpacked' && events.push(...e.stripped) });
    assert.equal((await stat(join(img.rootfs, 'bin/su'))).mode & 0o7777, 0o755);
    assert.equal((await stat(join(img.rootfs, 'bin/sg'))).mode & 0o7777, 0o755);
    assert.equal((await stat(join(img.rootfs, 'sticky'))).mode & 0o7777, 0o644);
    assert.equal((await stat(join(img.rootfs, 'tmp'))).mode & 0o7777, 0o1777, 'the sticky bit stays on directories');
    assert.deepEqual(events.sort(), ['bin/sg', 'bin/su', 'sticky']);
    store.close();
  });

  test('layer digest mismatch (a byte changed in the blob)', async () => {
    await fresh();
    const { ref, layout } = await evilLayout(h, [[file('a', 'hello')]]);
    const p = layout.blobPath(layout.layerDigests[0]![0]!);
    const bytes = await readFile(p);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0xff;
    await writeFile(p, bytes);
    const e = await expectRefused(h, ref, 'image_invalid', /failed verification/, { notStored: [layout.layerDigests[0]![0]!] });
    assert.equal(e.details?.expected, layout.layerDigests[0]![0]);
  });

  test('config DiffID mismatch (a layer other than the config says)', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [[file('a', 'hello')]], { diffIds: [`sha256:${'0'.repeat(64)}`] });
    await expectRefused(h, ref, 'image_invalid', /uncompressed content has digest .* the image config says sha256:0000/);
  });

  test('lying tar header: more bytes declared than the layer holds (truncated layer)', async () => {
    await fresh();
    const { ref } = await evilLayout(h, [{ entries: [file('a', 'short', { size: 4096 })], compression: 'none' }]);
    await expectRefused(h, ref, 'image_invalid', /truncated|bad tar header/);
  });

  test('truncated gzip layer (its descriptor matches the truncated bytes, so only decompression notices)', async () => {
    await fresh();
    const { layerBlob } = await import('../fixtures/images.ts');
    const full = layerBlob({ entries: [file('a', randomBytes(200_000).toString('hex'))] });
    const { ref } = await evilLayout(h, [{ tar: full.tar, blob: full.blob.subarray(0, full.blob.length >> 1) }]);
    await expectRefused(h, ref, 'image_invalid', /cannot decompress|truncated/);
  });
});

describe('broken and unavailable images are refused cleanly', { skip: !isRoot && 'needs root' }, () => {
  let fx: ImageFixtures;
  let h: Host;
  let reg: Registry;
  let basicReg: Registry;
  let tokenReg: Registry;
  let tokens: TokenServer;
  before(async () => {
    fx = await ensureImageFixtures();
    h = await setup();
    tokens = await startTokenServer(h.sentinel, { alice: 'right' });
    [reg, basicReg, tokenReg] = await Promise.all([startRegistry(), startRegistry({ htpasswd: { bob: 'right' } }), startRegistry({ token: tokens })]);
    await push(fx.app.oci, reg, 'ward/app:1');
    await push(fx.armIndex, reg, 'ward/arm:1', { all: true });
    await push(fx.armSingle, reg, 'ward/arm-single:1');
    await push(fx.app.oci, basicReg, 'ward/app:1', { creds: 'bob:right' });
    await push(fx.app.oci, tokenReg, 'ward/app:1', { creds: 'alice:right' });
  });
  after(async () => {
    await Promise.all([reg?.stop(), basicReg?.stop(), tokenReg?.stop()]);
    await tokens?.stop();
    await h?.remove();
  });

  test('truncated oci-archive', async () => {
    const path = join(h.dir, 'cut.oci.tar');
    await writeFile(path, await readFile(fx.app.ociArchive.slice('oci-archive:'.length)));
    await truncate(path, Math.floor((await stat(path)).size * 0.6));
    await expectRefused(h, `oci-archive:${path}`, 'image_invalid', /truncated|missing from the archive|has \d+ bytes/);
    await truncate(path, 0);
  });

  test('truncated docker-archive', async () => {
    const path = join(h.dir, 'cut.docker.tar');
    await writeFile(path, await readFile(fx.app.dockerArchive.slice('docker-archive:'.length)));
    await truncate(path, Math.floor((await stat(path)).size * 0.5));
    await expectRefused(h, `docker-archive:${path}`, 'image_invalid', /truncated|missing from the archive/);
    await truncate(path, 0);
  });

  test('unknown image: registry tag, repository, archive path, layout tag', async () => {
    await expectRefused(h, `${reg.host}/ward/app:nope`, 'image_not_found', /not found/);
    await expectRefused(h, `${reg.host}/ward/nothing:1`, 'image_not_found', /not found/);
    await expectRefused(h, `oci-archive:${join(h.dir, 'missing.tar')}`, 'image_not_found', /no such file/);
    await expectRefused(h, `oci:${fx.layoutDir}:nope`, 'image_not_found', /no image named "nope"/);
  });

  test('wrong registry credentials: basic auth', async () => {
    await expectRefused(h, `${basicReg.host}/ward/app:1`, 'registry_auth', /refused the credentials/, { registry: { credentials: { [basicReg.host]: { username: 'bob', password: 'wrong' } } } });
    await expectRefused(h, `${basicReg.host}/ward/app:1`, 'registry_auth', /requires credentials/);
  });

  test('wrong registry credentials: Bearer token flow', async () => {
    const before = tokens.requests;
    await expectRefused(h, `${tokenReg.host}/ward/app:1`, 'registry_auth', /refused the credentials/, { registry: { credentials: { [tokenReg.host]: { username: 'alice', password: 'wrong' } } } });
    assert.ok(tokens.requests > before, 'the client asked the token server');
  });

  test('a manifest for another platform only: index without linux/amd64', async () => {
    const e = await expectRefused(h, `${reg.host}/ward/arm:1`, 'image_invalid', /has no image for linux\/amd64 \(it has linux\/arm64\)/);
    assert.deepEqual(e.details?.offered, ['linux/arm64']);
  });

  test('a manifest for another platform only: single arm64 manifest', async () => {
    await expectRefused(h, `${reg.host}/ward/arm-single:1`, 'image_invalid', /is for linux\/arm64, not linux\/amd64/);
    await expectRefused(h, fx.armSingle, 'image_invalid', /is for linux\/arm64, not linux\/amd64/);
  });

  test('registry digest mismatch: a pinned digest the registry content does not have', async () => {
    // Asking by a digest the registry does not know is "not found"; a registry cannot serve other bytes
    // under a digest without Ward noticing (followToManifest checks), which the unit tests cover.
    await expectRefused(h, `${reg.host}/ward/app@sha256:${'1'.repeat(64)}`, 'image_not_found', /not found/);
  });
});
