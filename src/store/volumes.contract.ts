import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { newId } from '../core/index.ts';
import { anApp, aUser, rejectsConflict, type StoreFactory } from './store.contract.ts';
import { aHost, seedOrgAppHost } from './runtime.contract.ts';
import type { Store, VolumeRecord } from './types.ts';

const T0 = '2026-03-01T10:00:00.000Z';
const T1 = '2026-03-01T10:05:00.123Z';

/** aVolume is a volume record of the app on the host (the backups contract builds on it too). */
export function aVolume(orgId: string, appId: string, hostId: string, name: string, over: Partial<VolumeRecord> = {}): VolumeRecord {
  return {
    id: newId('volume'),
    orgId,
    appId,
    name,
    region: 'local',
    hostId,
    // Above 2^32: the size column must not be a 32-bit integer.
    sizeBytes: 8 * 1024 ** 4,
    wrappedKey: `k1.wrapped-${name}`,
    sealedWith: 'app-data-key',
    encryption: null,
    formattedAt: null,
    createdBy: null,
    createdAt: T0,
    ...over,
  };
}

/** runVolumesContract runs the contract of the volumes repo (issue "Volumes") against one Store implementation. */
export function runVolumesContract(name: string, makeStore: StoreFactory): void {
  describe(`Volumes store contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let orgId: string;
    let appId: string;
    let hostId: string;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      const { org, app, host } = await seedOrgAppHost(store);
      orgId = org.id;
      appId = app.id;
      hostId = host.id;
    });
    afterEach(async () => {
      await cleanup();
    });

    test('create, get, find, list; a name is unique per app; an id once', async () => {
      const user = aUser();
      await store.users.create(user);
      const b = aVolume(orgId, appId, hostId, 'pgdata', { createdBy: user.id });
      const a = aVolume(orgId, appId, hostId, 'assets');
      await store.volumes.create(b);
      await store.volumes.create(a);
      await rejectsConflict(store.volumes.create(aVolume(orgId, appId, hostId, 'assets')), 'volumes.app_name');
      await rejectsConflict(store.volumes.create({ ...aVolume(orgId, appId, hostId, 'other'), id: a.id }), 'volumes.id');
      const otherApp = anApp(orgId);
      await store.apps.create(otherApp);
      await store.volumes.create(aVolume(orgId, otherApp.id, hostId, 'assets'));
      assert.deepEqual(await store.volumes.get(b.id), b);
      assert.deepEqual(await store.volumes.findByName(appId, 'assets'), a);
      assert.equal(await store.volumes.findByName(appId, 'nope'), undefined);
      assert.equal(await store.volumes.get(newId('volume')), undefined);
      assert.deepEqual((await store.volumes.listForApp(appId)).map((v) => v.name), ['assets', 'pgdata']);
      assert.equal((await store.volumes.listForHost(hostId)).length, 3);
      assert.deepEqual(await store.volumes.listForHost(aHost().id), []);
    });

    test('setFormatted records the backend once the host formats it', async () => {
      const v = aVolume(orgId, appId, hostId, 'data');
      await store.volumes.create(v);
      assert.equal(await store.volumes.setFormatted(v.id, 'fscrypt', T1), true);
      assert.deepEqual(await store.volumes.get(v.id), { ...v, encryption: 'fscrypt', formattedAt: T1 });
      assert.equal(await store.volumes.setFormatted(newId('volume'), 'fscrypt', T1), false);
    });

    test('remove destroys the row and its wrapped key; an app going takes its volumes', async () => {
      const v = aVolume(orgId, appId, hostId, 'data');
      await store.volumes.create(v);
      assert.equal(await store.volumes.remove(v.id), true);
      assert.equal(await store.volumes.remove(v.id), false);
      assert.equal(await store.volumes.get(v.id), undefined);
      const w = aVolume(orgId, appId, hostId, 'data2');
      await store.volumes.create(w);
      await store.apps.delete(appId);
      assert.equal(await store.volumes.get(w.id), undefined);
    });

    test('a transaction that fails leaves no volume behind', async () => {
      await assert.rejects(store.transaction(async (tx) => {
        await tx.volumes.create(aVolume(orgId, appId, hostId, 'data'));
        throw new Error('boom');
      }), /boom/);
      assert.deepEqual(await store.volumes.listForApp(appId), []);
    });
  });
}
