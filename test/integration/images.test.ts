// The image store against the real tools: images built by umoci, converted by skopeo to oci-archive and
// docker-archive, and pushed to Debian's docker-registry (anonymous, basic auth, Bearer tokens, TLS).
import assert from 'node:assert/strict';
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../../src/core/index.ts';
import { ImageStore, type ImageEvent } from '../../src/agent/runtime/images/index.ts';
import {
  APP_PORT, ensureImageFixtures, makeCerts, push, startRegistry, startTokenServer, tempDir,
  type Certs, type ImageFixtures, type Registry, type TokenServer,
} from '../fixtures/images.ts';

const isRoot = process.getuid?.() === 0;

describe('ImageStore with real images', { skip: !isRoot && 'needs root (chown to mapped ids)' }, () => {
  let fx: ImageFixtures;
  let tmp: { dir: string; remove: () => Promise<void> };
  let anon: Registry;
  let basic: Registry;
  let token: Registry;
  let tls: Registry;
  let tokens: TokenServer;
  let certs: Certs;

  before(async () => {
    fx = await ensureImageFixtures();
    tmp = await tempDir();
    certs = await makeCerts(tmp.dir);
    tokens = await startTokenServer(tmp.dir, { alice: 's3cret' });
    [anon, basic, token, tls] = await Promise.all([
      startRegistry(), startRegistry({ htpasswd: { bob: 'hunter2' } }), startRegistry({ token: tokens }), startRegistry({ tls: certs }),
    ]);
    await Promise.all([
      push(fx.app.oci, anon, 'ward/app:1'),
      push(fx.multi, anon, 'ward/multi:1', { all: true }),
      push(fx.app.oci, basic, 'team/app:1', { creds: 'bob:hunter2' }),
      push(fx.app.oci, token, 'team/app:1', { creds: 'alice:s3cret' }),
      push(fx.app.oci, tls, 'ward/app:1', { tls: certs }),
    ]);
  });
  after(async () => {
    await Promise.all([anon?.stop(), basic?.stop(), token?.stop(), tls?.stop()]);
    await tokens?.stop();
    await tmp?.remove();
  });

  let n = 0;
  const newStore = (opts: Partial<ConstructorParameters<typeof ImageStore>[0]> = {}) => new ImageStore({ dataDir: join(tmp.dir, `data-${n++}`), ...opts });

  async function checkApp(rootfs: string) {
    assert.equal(await readFile(join(rootfs, 'www/index.html'), 'utf8'), 'ok\n');
    assert.equal(await readlink(join(rootfs, 'bin/sh')), 'busybox');
    const busybox = await stat(join(rootfs, 'bin/busybox'));
    assert.equal(busybox.mode & 0o7777, 0o755);
    assert.equal(busybox.uid, 100_000, 'container root is host uid 100000');
    const note = await stat(join(rootfs, 'home/app/note'));
    assert.deepEqual([note.uid, note.gid], [101_000, 101_000], 'container uid 1000 is host uid 101000');
    assert.equal((await stat(join(rootfs, 'tmp'))).mode & 0o7777, 0o1777);
    assert.equal((await stat(rootfs)).uid, 100_000);
  }

  const appConfig = {
    Entrypoint: ['/bin/busybox', 'httpd'],
    Cmd: ['-f', '-p', String(APP_PORT), '-h', '/www'],
    Env: ['PATH=/bin', 'APP=ward-test'],
    WorkingDir: '/www',
    ExposedPorts: [`${APP_PORT}/tcp`],
    StopSignal: 'SIGTERM',
    Labels: { 'org.example.fixture': 'app' },
  };

  test('oci: directory (umoci) with whiteouts and an opaque directory', async () => {
    const store = newStore();
    const img = await store.pull(fx.tiny.oci);
    const r = img.rootfs;
    assert.equal(await readFile(join(r, 'etc/keep'), 'utf8'), 'kept\n');
    await assert.rejects(lstat(join(r, 'etc/motd')), 'the whiteout removed /etc/motd');
    assert.deepEqual((await readdir(join(r, 'opt'))).sort(), ['new'], 'the opaque /opt hides what lower layers put there');
    assert.equal(await readlink(join(r, 'keep-link')), 'etc/keep');
    assert.deepEqual(img.config.Cmd, ['/bin/true']);
    assert.equal(img.layers, 3);
    assert.equal(img.platform, 'linux/amd64');
    store.close();
  });

  test('oci-archive and docker-archive written by skopeo give the same rootfs and config', async () => {
    const store = newStore();
    const events: ImageEvent[] = [];
    const a = await store.pull(fx.app.ociArchive, { onEvent: (e) => events.push(e) });
    const d = await store.pull(fx.app.dockerArchive);
    const o = await store.pull(fx.app.oci);
    assert.equal(a.digest, o.digest, 'oci-archive keeps the manifest digest');
    assert.notEqual(d.digest, a.digest, 'docker-archive has no registry manifest: Ward makes one');
    assert.equal(a.chainId, d.chainId, 'same layers, same snapshot');
    assert.equal(a.rootfs, d.rootfs);
    assert.deepEqual(a.config, appConfig);
    assert.deepEqual(d.config, appConfig);
    await checkApp(a.rootfs);
    const types = events.map((e) => e.type);
    assert.deepEqual([types[0], types.at(-1)], ['resolved', 'done']);
    assert.ok(types.includes('unpacked'));
    assert.equal((await store.list()).length, 2);
    store.close();
  });

  test('a registry on loopback over plain HTTP, anonymous', async () => {
    const store = newStore();
    const img = await store.pull(`${anon.host}/ward/app:1`);
    await checkApp(img.rootfs);
    assert.deepEqual(img.config, appConfig);
    // By digest: answered from the store, no registry needed.
    const again = await store.pull(`${anon.host}/ward/app@${img.digest}`);
    assert.equal(again.rootfs, img.rootfs);
    store.close();
  });

  test('a multi-platform index: linux/amd64 is chosen', async () => {
    const store = newStore();
    const img = await store.pull(`${anon.host}/ward/multi:1`);
    assert.ok(img.indexDigest, 'the index digest is kept');
    assert.deepEqual(img.config, appConfig);
    const byIndex = await store.get(img.indexDigest!);
    assert.equal(byIndex?.digest, img.digest);
    // The same index from the layout, without a registry.
    assert.equal((await store.pull(fx.multi)).digest, img.digest);
    store.close();
  });

  test('basic auth', async () => {
    const store = newStore({ registry: { credentials: { [basic.host]: { username: 'bob', password: 'hunter2' } } } });
    await checkApp((await store.pull(`${basic.host}/team/app:1`)).rootfs);
    store.close();
  });

  test('the Bearer token flow', async () => {
    const before = tokens.requests;
    const store = newStore({ registry: { credentials: { [token.host]: { username: 'alice', password: 's3cret' } } } });
    await checkApp((await store.pull(`${token.host}/team/app:1`)).rootfs);
    assert.ok(tokens.requests > before);
    store.close();
  });

  test('HTTPS with a configured CA; refused without it', async () => {
    const store = newStore({ registry: { caFile: certs.caFile } });
    await checkApp((await store.pull(`${tls.host}/ward/app:1`)).rootfs);
    store.close();
    const bare = newStore();
    await assert.rejects(bare.pull(`${tls.host}/ward/app:1`), (e: unknown) => e instanceof UserError && e.code === 'registry_tls' && /does not verify/.test(e.message));
    bare.close();
    const insecure = newStore({ registry: { insecure: [tls.host] } });
    await checkApp((await insecure.pull(`${tls.host}/ward/app:1`)).rootfs);
    insecure.close();
  });

  test('get, list, remove and gc', async () => {
    const store = newStore();
    const app = await store.pull(fx.app.oci);
    const tiny = await store.pull(fx.tiny.oci);
    assert.equal((await store.get(app.digest))?.rootfs, app.rootfs);
    assert.equal((await store.get(fx.app.oci))?.digest, app.digest, 'get by the reference it was pulled by');
    assert.equal(await store.get(`sha256:${'2'.repeat(64)}`), undefined);
    assert.deepEqual((await store.list()).map((i) => i.digest).sort(), [app.digest, tiny.digest].sort());
    assert.equal(await store.gc().then((r) => r.blobs + r.snapshots), 0, 'nothing to collect while both are recorded');

    assert.equal(await store.remove(tiny.digest), true);
    assert.equal(await store.remove(tiny.digest), false);
    const r = await store.gc();
    assert.equal(r.snapshots, 1);
    assert.equal(r.blobs, 3 /* layers */ + 2 /* config, manifest */);
    await assert.rejects(stat(tiny.rootfs));
    await checkApp(app.rootfs);

    // A snapshot that went missing is unpacked again from the stored blobs.
    const { rm } = await import('node:fs/promises');
    await rm(join(app.rootfs, '..'), { recursive: true });
    await checkApp((await store.get(app.digest))!.rootfs);
    store.close();
  });

  test('pull policy `missing` uses the stored image without asking the source', async () => {
    const store = newStore();
    const ref = `${anon.host}/ward/app:1`;
    const first = await store.pull(ref);
    const events: ImageEvent[] = [];
    const second = await store.pull(ref, { policy: 'missing', onEvent: (e) => events.push(e) });
    assert.equal(second.digest, first.digest);
    assert.ok(!events.some((e) => e.type === 'resolved'), 'the registry was not asked');
    store.close();
  });

  test('concurrent pulls of the same image share one snapshot', async () => {
    const store = newStore();
    const [a, b, c] = await Promise.all([store.pull(fx.app.oci), store.pull(fx.app.ociArchive), store.pull(`${anon.host}/ward/app:1`)]);
    assert.equal(a.rootfs, b.rootfs);
    assert.equal(b.rootfs, c.rootfs);
    await checkApp(a.rootfs);
    assert.deepEqual(await readdir(join(store.dir, 'tmp')), []);
    store.close();
  });
});
