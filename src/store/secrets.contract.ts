import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { anApp, anOrg, aUser, rejectsConflict, type StoreFactory } from './store.contract.ts';
import { aHost, anInstance, aRelease } from './runtime.contract.ts';
import type { SecretValueRecord, SecretVersionRecord, Store } from './types.ts';

const T0 = '2026-03-01T10:00:00.000Z';
const T1 = '2026-03-01T10:05:00.123Z';
const T2 = '2026-03-01T11:00:00.456Z';

function aVersion(appId: string, version: number, over: Partial<SecretVersionRecord> = {}): SecretVersionRecord {
  return { appId, version, change: 'set', staged: false, names: [], createdAt: T0, createdBy: null, ...over };
}

function aValue(appId: string, name: string, version: number, sealed: string | null = `s1.${name}.${version}`): SecretValueRecord {
  return { appId, name, version, sealed, digest: sealed === null ? null : `d${version}`.padEnd(16, '0'), createdAt: T0 };
}

/**
 * runSecretsContract runs the contract of the repos of issue "Secrets" (data keys, versioned secret
 * values, delivery tokens, host credentials) against one Store implementation.
 */
export function runSecretsContract(name: string, makeStore: StoreFactory): void {
  describe(`Secrets store contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let appId: string;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      const org = anOrg();
      await store.orgs.create(org);
      const app = anApp(org.id);
      await store.apps.create(app);
      appId = app.id;
    });
    afterEach(async () => {
      await cleanup();
    });

    test('data keys: one per owner, conditional re-wrap, gone with their app', async () => {
      assert.equal(await store.dataKeys.get(appId), undefined);
      await store.dataKeys.create({ owner: 'server', appId: null, wrapped: 'w1.server', kekId: 'k1', createdAt: T0, rewrappedAt: null });
      await store.dataKeys.create({ owner: appId, appId, wrapped: 'w1.app', kekId: 'k1', createdAt: T0, rewrappedAt: null });
      await rejectsConflict(store.dataKeys.create({ owner: appId, appId, wrapped: 'w1.other', kekId: 'k1', createdAt: T0, rewrappedAt: null }), 'data_keys.owner');
      assert.deepEqual(await store.dataKeys.get(appId), { owner: appId, appId, wrapped: 'w1.app', kekId: 'k1', createdAt: T0, rewrappedAt: null });
      assert.equal((await store.dataKeys.list()).length, 2);
      assert.equal(await store.dataKeys.rewrap(appId, 'w1.stale', 'w1.new', 'k2', T1), false, 'only if still as expected');
      assert.equal(await store.dataKeys.rewrap(appId, 'w1.app', 'w1.new', 'k2', T1), true);
      assert.deepEqual(await store.dataKeys.get(appId), { owner: appId, appId, wrapped: 'w1.new', kekId: 'k2', createdAt: T0, rewrappedAt: T1 });
      await store.apps.delete(appId);
      assert.equal(await store.dataKeys.get(appId), undefined, 'destroying the app shreds its key');
      assert.ok(await store.dataKeys.get('server'));
    });

    test('versions and values: the secrets as of a version are the newest record per name, unsets left out', async () => {
      assert.equal(await store.secrets.latestVersion(appId), 0);
      assert.deepEqual(await store.secrets.at(appId, 5), []);
      await store.secrets.addVersion(aVersion(appId, 1, { names: ['B_KEY', 'A_KEY'], staged: true, createdAt: T0 }));
      await store.secrets.putValues([aValue(appId, 'B_KEY', 1), aValue(appId, 'A_KEY', 1)]);
      await store.secrets.addVersion(aVersion(appId, 2, { names: ['A_KEY'], createdAt: T1 }));
      await store.secrets.putValues([aValue(appId, 'A_KEY', 2)]);
      await store.secrets.addVersion(aVersion(appId, 3, { change: 'unset', names: ['B_KEY'], createdAt: T2 }));
      await store.secrets.putValues([aValue(appId, 'B_KEY', 3, null)]);
      await store.secrets.putValues([]);
      assert.equal(await store.secrets.latestVersion(appId), 3);
      const view = async (v: number) => (await store.secrets.at(appId, v)).map((r) => `${r.name}@${r.version}:${r.sealed}`);
      assert.deepEqual(await view(1), ['A_KEY@1:s1.A_KEY.1', 'B_KEY@1:s1.B_KEY.1']);
      assert.deepEqual(await view(2), ['A_KEY@2:s1.A_KEY.2', 'B_KEY@1:s1.B_KEY.1']);
      assert.deepEqual(await view(3), ['A_KEY@2:s1.A_KEY.2']);
      assert.deepEqual((await store.secrets.at(appId, 2))[0], aValue(appId, 'A_KEY', 2));
      assert.deepEqual(await store.secrets.getVersion(appId, 1), aVersion(appId, 1, { names: ['B_KEY', 'A_KEY'], staged: true, createdAt: T0 }));
      assert.equal(await store.secrets.getVersion(appId, 9), undefined);
      assert.deepEqual((await store.secrets.listVersions(appId)).map((v) => [v.version, v.change]), [[3, 'unset'], [2, 'set'], [1, 'set']]);
      assert.deepEqual((await store.secrets.listVersions(appId, 1)).map((v) => v.version), [3]);
      await rejectsConflict(store.secrets.addVersion(aVersion(appId, 3)), 'secret_versions.app_version');
      await rejectsConflict(store.secrets.putValues([aValue(appId, 'A_KEY', 2)]), 'secret_values.app_name_version');
      // Names sort in byte order on both databases (PostgreSQL's collation would put "_" elsewhere).
      await store.secrets.addVersion(aVersion(appId, 4));
      await store.secrets.putValues([aValue(appId, 'a_lower', 4), aValue(appId, 'Z_UPPER', 4), aValue(appId, '_UNDER', 4)]);
      assert.deepEqual((await store.secrets.at(appId, 4)).map((r) => r.name), ['A_KEY', 'Z_UPPER', '_UNDER', 'a_lower']);
      await store.apps.delete(appId);
      assert.equal(await store.secrets.latestVersion(appId), 0, 'gone with the app');
    });

    test('changes of one app are serialized: two transactions racing for the next version both land', async () => {
      const bump = () =>
        store.transaction(async (tx) => {
          const v = (await tx.secrets.latestVersion(appId)) + 1;
          await new Promise((r) => setTimeout(r, 20));
          await tx.secrets.addVersion(aVersion(appId, v));
          return v;
        });
      const got = await Promise.all([bump(), bump(), bump()]);
      assert.deepEqual([...got].sort(), [1, 2, 3]);
    });

    test('delivery tokens: single use, expire, race to exactly one winner, go with their instance', async () => {
      const user = aUser();
      await store.users.create(user);
      const host = aHost();
      await store.hosts.register(host);
      const rel = aRelease(appId, 1, { createdBy: user.id });
      await store.releases.create(rel);
      const ins = anInstance(appId, rel.id, host.id);
      await store.instances.create(ins);
      const d = { tokenHash: 'a'.repeat(64), appId, instanceId: ins.id, hostId: host.id, secretsVersion: 2, createdAt: T0, expiresAt: T1, usedAt: null };
      await store.secretDeliveries.create(d);
      await rejectsConflict(store.secretDeliveries.create(d), 'secret_deliveries.token_hash');
      assert.deepEqual(await store.secretDeliveries.find(d.tokenHash), d);
      assert.equal(await store.secretDeliveries.take(d.tokenHash, T1), undefined, 'expired at expiresAt');
      const takes = await Promise.all([0, 1, 2, 3].map(() => store.secretDeliveries.take(d.tokenHash, T0)));
      assert.equal(takes.filter(Boolean).length, 1, 'exactly one take wins');
      assert.deepEqual(takes.find(Boolean), { ...d, usedAt: T0 });
      assert.equal(await store.secretDeliveries.take(d.tokenHash, T0), undefined, 'spent');
      assert.equal(await store.secretDeliveries.take('b'.repeat(64), T0), undefined, 'unknown');
      const e = { ...d, tokenHash: 'c'.repeat(64) };
      await store.secretDeliveries.create(e);
      assert.equal(await store.secretDeliveries.deleteExpired(T0), 0);
      assert.equal(await store.secretDeliveries.deleteExpired(T2), 2, 'both had expired by then, spent or not');
      await store.secretDeliveries.create({ ...d, tokenHash: 'e'.repeat(64), expiresAt: T2 });
      await store.instances.delete(ins.id);
      assert.equal(await store.secretDeliveries.find('e'.repeat(64)), undefined, 'gone with the instance');
    });

    test('host credentials: one per host, replaced on re-issue, removable', async () => {
      const host = aHost();
      await store.hosts.register(host);
      await store.hostCredentials.put({ hostId: host.id, tokenHash: 'a'.repeat(64), createdAt: T0 });
      assert.deepEqual(await store.hostCredentials.findByTokenHash('a'.repeat(64)), { hostId: host.id, tokenHash: 'a'.repeat(64), createdAt: T0 });
      await store.hostCredentials.put({ hostId: host.id, tokenHash: 'b'.repeat(64), createdAt: T1 });
      assert.equal(await store.hostCredentials.findByTokenHash('a'.repeat(64)), undefined, 'the old credential no longer works');
      assert.equal((await store.hostCredentials.findByTokenHash('b'.repeat(64)))?.hostId, host.id);
      const other = aHost();
      await store.hosts.register(other);
      await rejectsConflict(store.hostCredentials.put({ hostId: other.id, tokenHash: 'b'.repeat(64), createdAt: T1 }), 'host_credentials.token_hash');
      await store.hostCredentials.remove(host.id);
      assert.equal(await store.hostCredentials.findByTokenHash('b'.repeat(64)), undefined);
    });
  });
}
