// Backups of real encrypted volumes (issue "Volumes", part backups): the agent's VolumeManager (fscrypt
// here, LUKS2 where device-mapper exists) with keys from the control plane's VolumeKeyService, backed up
// through the API with real restic. It tries to break the promises end to end: a canary written into the
// volume is found on no disk file afterwards (loop file, repository, database, drill scratch), a restore
// into the volume brings back byte-identical files, and a drill of the volume passes. Needs root
// (mounts, loop devices) and python3 for fscrypt; every mount and loop device is removed afterwards.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApi } from '../../src/api/index.ts';
import { SqliteStore, type Store, type VolumeRecord } from '../../src/store/index.ts';
import { systemClock, toTimestamp } from '../../src/core/index.ts';
import { AppKeys, ephemeralKeyProvider } from '../../src/secrets/index.ts';
import { newLogger } from '../../src/server/index.ts';
import { VolumeKeyService, type VolumeHost } from '../../src/services/index.ts';
import { VolumeManager } from '../../src/agent/index.ts';
import { removeVolumeRoot } from '../fixtures/volumes.ts';
import { tmpfsScratch, treeDigestOf } from '../../src/backups/index.ts';
import { scanFiles } from './canary-scan.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (loop devices, mounts)' : !existsSync('/usr/bin/python3') ? '/usr/bin/python3 is missing: run scripts/bootstrap' : false;
const HOST_ID = 'hst_00000000000000000000000007';

describe('backups of encrypted volumes', { skip, timeout: 300_000 }, () => {
  let root = '';
  let store: Store;
  let api: FastifyInstance;
  let manager: VolumeManager;
  let token = '';
  let volume: VolumeRecord;
  const CANARY = `wardbackupcanary${randomBytes(12).toString('hex')}`;

  const call = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: object) =>
    api.inject({ method, url, ...(payload === undefined ? {} : { payload }), headers: { authorization: `Bearer ${token}` } });
  const body = (r: LightMyRequestResponse) => r.json() as any;
  const ok = (r: LightMyRequestResponse, what: string) => assert.ok(r.statusCode >= 200 && r.statusCode < 300, `${what}: ${r.statusCode} ${r.body}`);

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ward-backups-volumes-'));
    await chmod(root, 0o711);
    store = await SqliteStore.open({ dataDir: join(root, 'db') });
    const kek = ephemeralKeyProvider();
    const host: VolumeHost = {
      hostId: () => HOST_ID,
      withMounted: (v, purpose, fn) => manager.withMounted(v, purpose, fn),
      instancesUsing: (id) => manager.users(id).filter((u) => u.startsWith('ins_')),
      exec: async () => ({ code: 1, stdout: '', stderr: 'no instances in this test' }),
    };
    api = await buildApi({ store, clock: systemClock, keys: kek, logger: newLogger('silent'), version: '0.0.0-test', backups: { host: () => host, scratch: tmpfsScratch(join(root, 'scratch')) } });
    await api.ready();
    const source = new VolumeKeyService({ store, keys: new AppKeys(kek, () => toTimestamp(new Date())), audit: api.audit, clock: systemClock });
    manager = new VolumeManager({ root: join(root, 'volumes'), source, hostId: () => HOST_ID });
    const at = new Date().toISOString();
    await store.hosts.register({ id: HOST_ID, name: 'backup-volumes-host', region: 'local', status: 'ready', capacity: { memoryBytes: 8 * 1024 ** 3, cpus: 4 }, lastHeartbeat: at, createdAt: at });
    const s = await api.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: 'owner@example.com', password: 'correct horse battery staple', org: 'acme' } });
    ok(s, 'signup');
    token = body(s).session.token;
    ok(await call('POST', '/v1/apps', { name: 'portal', org: 'acme' }), 'app');
    ok(await call('POST', '/v1/apps/portal/volumes', { name: 'pgdata', size: '64mb' }), 'volume');
    const app = (await store.apps.findByName('portal'))!;
    volume = (await store.volumes.findByName(app.id, 'pgdata'))!;
    ok(await call('PUT', '/v1/orgs/acme/backups/target', { repository: join(root, 'repo') }), 'target');
  });

  after(async () => {
    const errors: unknown[] = [];
    await api?.close().catch((e: unknown) => errors.push(e));
    await store?.close().catch(() => {});
    if (root) errors.push(...(await removeVolumeRoot(root)));
    if (errors.length) throw new AggregateError(errors, 'backups-volumes cleanup failed');
  });

  test('back up, drill and restore an encrypted volume; the canary is on no disk file, the restore is byte-identical', async () => {
    // The first mount formats the volume (as an instance's first start would); 'restore' may do that, 'backup' not.
    const original = await manager.withMounted(volume, 'restore', async (dir) => {
      await writeFile(join(dir, 'patients.csv'), `id,name\n1,${CANARY}\n`);
      await writeFile(join(dir, 'blob.bin'), randomBytes(2 * 1024 * 1024));
      return treeDigestOf(dir);
    });
    const b = await call('POST', '/v1/apps/portal/volumes/pgdata/backups');
    assert.equal(b.statusCode, 201, b.body);
    assert.equal(body(b).run.consistency, 'stopped');
    assert.equal(manager.mountedPath(volume.id), undefined, 'the backup let go of the volume');

    const d = await call('POST', '/v1/apps/portal/volumes/pgdata/backups/verify', {});
    assert.equal(d.statusCode, 200, d.body);
    assert.equal(body(d).run.details.tree_sha256, original.digest, 'the drill restored exactly the volume');

    // Nothing on disk holds the canary: the loop file is ciphertext, the repository is encrypted, and the
    // drill restored into memory (its tmpfs is gone).
    const scan = await scanFiles([root], [Buffer.from(CANARY)]);
    assert.deepEqual(scan.hits[0], [], `canary found in ${scan.hits[0]}`);
    // The loop file (64 MiB) and the repository (over 2 MiB of packs) were read.
    assert.ok(scan.files >= 5 && scan.bytes > 64 * 1024 * 1024, JSON.stringify({ files: scan.files, bytes: scan.bytes, skipped: scan.skippedMemoryFs }));

    await manager.withMounted(volume, 'restore', async (dir) => {
      await writeFile(join(dir, 'patients.csv'), 'overwritten by a bad migration');
      await writeFile(join(dir, 'stray'), 'x');
    });
    const r = await call('POST', '/v1/apps/portal/volumes/pgdata/backups/restore', {});
    assert.equal(r.statusCode, 200, r.body);
    const after = await manager.withMounted(volume, 'restore', async (dir) => ({ digest: await treeDigestOf(dir), csv: await readFile(join(dir, 'patients.csv'), 'utf8') }));
    assert.deepEqual(after.digest, original);
    assert.equal(after.csv, `id,name\n1,${CANARY}\n`);
  });
});
