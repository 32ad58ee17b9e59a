// Encrypted volumes in real crun instances (issue "Volumes"): the volumes hook with the VolumeManager
// (fscrypt here: this machine has no device-mapper), keys from the control plane's VolumeKeyService on
// a real SQLite store, bind-mounted into instances started by the runtime harness's CrunRuntime as the
// image's user (uid 1000, host 101000). It tries to break the promises: data survives a restart and a
// redeploy; after poststop the mounted path is empty and the loop file holds no canary; without the key
// names and contents are ciphertext; another app's instance cannot get the volume; destroy leaves no key
// and no file. Needs root, crun and python3 (CI has them); every mount and loop device is removed
// afterwards, even on failure.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId, systemClock, UserError, type Instance } from '../../src/core/index.ts';
import { SqliteStore, type Store, type VolumeRecord } from '../../src/store/index.ts';
import { AuditService } from '../../src/audit/index.ts';
import { generateAuditKey } from '../../src/audit/chain.ts';
import { AppKeys, ephemeralKeyProvider } from '../../src/secrets/index.ts';
import { SEALED_WITH_APP_DATA_KEY, sealVolumeKey, VolumeKeyService, volumeKeyRef } from '../../src/services/index.ts';
import { assignedRelease, VolumeManager, volumesHook, type Assignment, type HookContext } from '../../src/agent/index.ts';
import { removeVolumeRoot } from '../fixtures/volumes.ts';
import type { Image } from '../../src/agent/runtime/index.ts';
import { anApp, anOrg } from '../../src/store/store.contract.ts';
import { aHost, aRelease, anInstance } from '../../src/store/runtime.contract.ts';
import { run } from '../../src/exec/index.ts';
import { RuntimeHarness, cannotRunContainers } from './runtime-harness.ts';

const skip = cannotRunContainers() || (!existsSync('/usr/bin/python3') && '/usr/bin/python3 is missing: run scripts/bootstrap');
const MOUNTS = [{ source: 'data', destination: '/data' }];
/** ENOKEY is Linux's "Required key not available" (126), which libuv has no name for. */
const ENOKEY = 126;

describe('encrypted volumes in crun instances', { skip, timeout: 300_000 }, () => {
  const h = new RuntimeHarness();
  let root = '';
  let store: Store;
  let keys: AppKeys;
  let source: VolumeKeyService;
  let manager: VolumeManager;
  let hostId = '';
  let appA: { id: string; name: string; orgId: string };
  let appB: { id: string; name: string; orgId: string };
  let volume: VolumeRecord;
  const CANARY = `wardvolumecanary${randomBytes(12).toString('hex')}`;
  const FILE_NAME = `secretname${randomBytes(6).toString('hex')}`;

  /** release makes a release of app mounting MOUNTS and an instance of it placed on the host. */
  async function placed(app: { id: string; name: string; orgId: string }, version: number, over: Partial<Instance> = {}): Promise<Assignment> {
    const release = aRelease(app.id, version, { config: JSON.stringify({ ...baseConfig(), mounts: MOUNTS }), status: 'running' });
    await store.releases.create(release);
    const instance = anInstance(app.id, release.id, over.hostId ?? hostId, over);
    await store.instances.create(instance);
    return { instance, release: assignedRelease(release), app };
  }

  function baseConfig() {
    return { env: {}, mounts: [], resources: { memoryBytes: 256 * 1024 * 1024, cpus: 1 }, killSignal: 'SIGTERM', killTimeoutMs: 5000 };
  }

  function context(a: Assignment): HookContext {
    return {
      instanceId: a.instance.id,
      assignment: a,
      config: a.release.config,
      host: { id: hostId, name: 'test', region: 'local' },
      note() {},
      report() {},
      image: { config: { User: '1000:1000' }, rootfs: h.rootfs } as unknown as Image,
      mounts: [],
      secretEnv: {},
      health: 'unknown',
    };
  }

  /** start runs the instance in crun with the mounts the hook made (uid 1000 inside, mapped to 101000). */
  async function start(ctx: HookContext): Promise<void> {
    const spec = h.spec({ uid: 1000, network: false, args: ['/bin/sleep', '3600'] }, undefined, ctx.instanceId);
    spec.mounts = ctx.mounts;
    h.ids.add(ctx.instanceId);
    if (await h.runtime.inspect(ctx.instanceId)) await h.runtime.destroy(ctx.instanceId);
    await h.runtime.start(spec);
  }

  const exec = async (id: string, script: string) => h.runtime.exec(id, ['sh', '-c', script]);

  /** waitUntil polls cond (every 100 ms, up to 60 s: namespaces of other tests' containers go when they go). */
  async function waitUntil(what: string, cond: () => Promise<boolean>): Promise<void> {
    const end = Date.now() + 60_000;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  before(async () => {
    await h.setUp();
    root = await mkdtemp(join(tmpdir(), `${h.prefix}-volumes-`));
    await chmod(root, 0o711);
    store = await SqliteStore.open({ dataDir: join(root, 'db') });
    keys = new AppKeys(ephemeralKeyProvider(), () => new Date().toISOString());
    const audit = new AuditService({ store, clock: systemClock, key: generateAuditKey() });
    await audit.init();
    source = new VolumeKeyService({ store, keys, audit, clock: systemClock });
    const org = anOrg();
    await store.orgs.create(org);
    const a = anApp(org.id);
    const b = anApp(org.id);
    await store.apps.create(a);
    await store.apps.create(b);
    appA = { id: a.id, name: a.name, orgId: org.id };
    appB = { id: b.id, name: b.name, orgId: org.id };
    const host = aHost();
    await store.hosts.register(host);
    hostId = host.id;
    manager = new VolumeManager({ root: join(root, 'volumes'), source, hostId: () => hostId });
    assert.equal(manager.backend.kind, 'fscrypt', 'this machine has no device-mapper');
    const id = newId('volume');
    volume = {
      id, orgId: org.id, appId: a.id, name: 'data', region: 'local', hostId, sizeBytes: 64 * 1024 ** 2,
      wrappedKey: await sealVolumeKey(keys, store, { orgId: org.id, appId: a.id, id }, randomBytes(32)), sealedWith: SEALED_WITH_APP_DATA_KEY,
      encryption: null, formattedAt: null, createdBy: null, createdAt: new Date().toISOString(),
    };
    await store.volumes.create(volume);
  });

  after(async () => {
    const errors: unknown[] = [];
    await h.cleanup().catch((e: unknown) => errors.push(e));
    await store?.close().catch(() => {});
    // Every mount under our root (volumes, and the look without a key below), then the root; no loop device left.
    if (root) errors.push(...(await removeVolumeRoot(root)));
    if (errors.length) throw new AggregateError(errors, 'volumes test cleanup failed');
  });

  test('data written by the app survives a restart and a redeploy; after poststop only ciphertext remains', async () => {
    const hook = volumesHook({ manager, source });
    const first = context(await placed(appA, 1));
    await hook.prestart!(first);
    const data = join(root, 'volumes', volume.id, 'mnt', 'data');
    assert.deepEqual(first.mounts, [{ source: data, destination: '/data', readOnly: false }]);
    assert.equal((await store.volumes.get(volume.id))!.encryption, 'fscrypt', 'the host reported the backend it formatted with');
    const img = await stat(join(root, 'volumes', volume.id, 'volume.img'));
    assert.equal(img.size, 64 * 1024 ** 2, 'the loop file has the volume\'s size');
    assert.ok(img.blocks * 512 < img.size, 'and is sparse');

    await start(first);
    const write = await exec(first.instanceId, `id -u && echo ${CANARY} > /data/${FILE_NAME} && mkdir /data/dir && cat /data/${FILE_NAME}`);
    assert.equal(write.code, 0, write.stderr);
    assert.deepEqual(write.stdout.trim().split('\n'), ['1000', CANARY], 'the app\'s user writes its volume');
    // The host sees the plaintext through the mount only, owned by the app's mapped uid.
    assert.equal((await stat(join(data, FILE_NAME))).uid, 101_000);

    // A restart: the run ends, prestart runs again (idempotent), a new run sees the data.
    await h.runtime.stop(first.instanceId, { signal: 'SIGKILL', timeoutMs: 1000 });
    await hook.prestart!(first);
    await start(first);
    assert.equal((await exec(first.instanceId, `cat /data/${FILE_NAME}`)).stdout.trim(), CANARY);

    // The agent restarts while the instance runs: a fresh manager and hook adopt the mount (recover changes
    // nothing and asks for no key), and the instance keeps its files.
    const delivered = async () => (await store.audit.list({ limit: 1000 })).filter((e) => e.action === 'volume.key_deliver').length;
    const before = await delivered();
    const manager2 = new VolumeManager({ root: join(root, 'volumes'), source, hostId: () => hostId });
    const hook2 = volumesHook({ manager: manager2, source });
    const info = (await h.runtime.inspect(first.instanceId))!;
    const recovered = { ...context(first.assignment), mounts: [] };
    await hook2.recover!(recovered, info);
    assert.deepEqual(recovered.mounts, first.mounts);
    assert.deepEqual(manager2.users(volume.id), [first.instanceId]);
    assert.equal(await delivered(), before, 'recover asked for no key');
    assert.equal((await exec(first.instanceId, `cat /data/${FILE_NAME}`)).stdout.trim(), CANARY);

    // A redeploy: the old instance leaves for good (poststop, by the restarted agent's hook: the volume is
    // closed, as its last user left), and a new instance of a new release opens it again.
    await h.runtime.destroy(first.instanceId);
    await store.instances.setDesired(first.instanceId, 'stopped', new Date().toISOString());
    await hook2.poststop!(recovered);
    assert.equal(manager2.mountedPath(volume.id), undefined);
    // From here on the restarted agent's manager is the one (the old one is gone with its process).
    manager = manager2;
    const second = context(await placed(appA, 2));
    await hook2.prestart!(second);
    await start(second);
    assert.equal((await exec(second.instanceId, `cat /data/${FILE_NAME}`)).stdout.trim(), CANARY, 'the data survived the redeploy');

    // poststop: the key is removed and the volume unmounted; the mounted path is empty.
    await h.runtime.destroy(second.instanceId);
    await hook2.poststop!(second);
    assert.equal(manager.mountedPath(volume.id), undefined);
    assert.deepEqual(await readdir(join(root, 'volumes', volume.id, 'mnt')), [], 'nothing is left at the mount point');
    // The raw loop file holds no plaintext: neither the canary nor the file's name.
    const raw = await readFile(join(root, 'volumes', volume.id, 'volume.img'));
    assert.equal(raw.indexOf(CANARY), -1, 'the canary is not in the loop file');
    assert.equal(raw.indexOf(FILE_NAME), -1, 'the file name is not in the loop file');

    // The loop device goes with the file system's last reference. Other mount namespaces may hold a copy
    // of the mount for a moment (crun copies the host's mounts when it starts any container); the key was
    // removed from the file system itself first, so such a copy shows ciphertext too.
    const loopFile = join(root, 'volumes', volume.id, 'volume.img');
    await waitUntil('the loop device to be released', async () => (await run(['losetup', '--noheadings', '--associated', loopFile])).stdout.trim() === '');

    // Mounted without the key (what anyone holding the file could do): names and contents are ciphertext.
    const look = join(root, 'look');
    await mkdir(look);
    await run(['mount', '-t', 'ext4', '-o', 'loop,ro,nosuid,nodev,noexec', join(root, 'volumes', volume.id, 'volume.img'), look]);
    try {
      const names = await readdir(join(look, 'data'));
      assert.equal(names.length, 2);
      assert.ok(!names.includes(FILE_NAME) && !names.includes('dir'), `names are encrypted: ${names.join(', ')}`);
      for (const n of names) {
        const s = await stat(join(look, 'data', n));
        if (s.isFile()) await assert.rejects(readFile(join(look, 'data', n)), (e: NodeJS.ErrnoException) => e.errno === -ENOKEY, 'contents cannot be read without the key');
      }
    } finally {
      await run(['umount', look]);
    }
  });

  test('another app\'s instance, or an instance on another host, cannot get the volume or its key', async () => {
    // App B's release mounts "data": B has no such volume, so nothing is granted, whatever the assignment claims.
    const b = await placed(appB, 1);
    await assert.rejects(source.grantForInstance(b, hostId), (e: unknown) => e instanceof UserError && e.code === 'not_found');
    const forged: Assignment = { ...b, app: appA };
    await assert.rejects(source.grantForInstance(forged, hostId), (e: unknown) => e instanceof UserError && /has no volume "data"/.test(e.message));
    // App A's instance placed on another host gets nothing from this one's key service.
    const other = aHost();
    await store.hosts.register(other);
    const elsewhere = await placed(appA, 3, { hostId: other.id });
    await assert.rejects(source.grantForInstance(elsewhere, hostId), (e: unknown) => e instanceof UserError && /not placed on this host/.test(e.message));
    await assert.rejects(source.grantForInstance(elsewhere, other.id), (e: unknown) => e instanceof UserError && /lives on another host/.test(e.message));
    // The hook refuses the start: no mount, nothing unlocked.
    const hook = volumesHook({ manager, source });
    const ctx = context(b);
    await assert.rejects(hook.prestart!(ctx));
    assert.deepEqual(ctx.mounts, []);
    assert.equal(manager.mountedPath(volume.id), undefined);
    // A sealed key copied to another volume's or app's row does not open there (org, app and volume are bound in).
    const dataKey = (await keys.get(store, { id: appA.id, orgId: appA.orgId }))!;
    assert.throws(() => dataKey.open(volumeKeyRef(appA.orgId, appA.id, newId('volume')), volume.wrappedKey));
    const moved = { ...volume, id: newId('volume'), name: 'moved' };
    await store.volumes.create(moved);
    await assert.rejects(source.grantForHost(moved.id, hostId, 'backup'), (e: unknown) => e instanceof UserError && e.code === 'secrets_unreadable');
    await store.volumes.remove(moved.id);
  });

  test('withMounted (for backups) shares or makes the mount and always lets go', async () => {
    const seen = await manager.withMounted(volume, 'backup', async (dir) => {
      assert.equal(manager.mountedPath(volume.id), dir);
      return (await readdir(dir)).sort();
    });
    assert.equal(seen.length, 2, 'the backup sees the files by their names');
    assert.ok(seen.includes(FILE_NAME));
    assert.equal(manager.mountedPath(volume.id), undefined, 'unmounted again afterwards');
    await assert.rejects(manager.withMounted(volume, 'backup', async () => {
      throw new Error('backup failed');
    }), /backup failed/);
    assert.equal(manager.mountedPath(volume.id), undefined, 'unmounted after a failure too');
  });

  test('destroy: the key goes from the store, then the file from the host', async () => {
    assert.equal(await store.volumes.remove(volume.id), true);
    await manager.remove(volume.id);
    assert.equal(await store.volumes.get(volume.id), undefined);
    assert.equal(existsSync(join(root, 'volumes', volume.id)), false);
    await assert.rejects(source.grantForHost(volume.id, hostId, 'restore'), (e: unknown) => e instanceof UserError && e.code === 'not_found');
  });
});
