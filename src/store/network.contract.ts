import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { newId } from '../core/index.ts';
import { anOrg, aUser, rejectsConflict, type StoreFactory } from './store.contract.ts';
import type { Store, WireGuardPeerRecord } from './types.ts';

const T0 = '2026-03-01T10:00:00.000Z';
const T1 = '2026-03-01T10:05:00.123Z';

function aPeer(orgId: string, name: string, n: number, over: Partial<WireGuardPeerRecord> = {}): WireGuardPeerRecord {
  return { id: newId('wireguardPeer'), orgId, name, publicKey: `${String(n).padStart(42, 'A')}A=`, address: `fd00:1:2:8000::${n}`, createdBy: null, createdAt: T0, ...over };
}

/**
 * runNetworkContract runs the contract of the repos of issue "Private networking" (org network
 * settings, people's WireGuard peers) against one Store implementation.
 */
export function runNetworkContract(name: string, makeStore: StoreFactory): void {
  describe(`Network store contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let orgId: string;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      const org = anOrg();
      await store.orgs.create(org);
      orgId = org.id;
    });
    afterEach(async () => {
      await cleanup();
    });

    test('org network settings: none, put, replace, list', async () => {
      assert.equal(await store.orgNetworks.get(orgId), undefined);
      await store.orgNetworks.put({ orgId, prefix: 'fd12:3456:789a::/48', egress: 'allow', updatedAt: T0 });
      await store.orgNetworks.put({ orgId, prefix: 'fd12:3456:789a::/48', egress: 'deny', updatedAt: T1 });
      assert.deepEqual(await store.orgNetworks.get(orgId), { orgId, prefix: 'fd12:3456:789a::/48', egress: 'deny', updatedAt: T1 });
      assert.deepEqual((await store.orgNetworks.list()).map((n) => n.orgId), [orgId]);
    });

    test('wireguard peers: unique name and address per org, unique key, ordered, removed', async () => {
      const user = aUser();
      await store.users.create(user);
      const b = aPeer(orgId, 'laptop-b', 2, { createdBy: user.id });
      const a = aPeer(orgId, 'laptop-a', 1);
      await store.wireguardPeers.create(b);
      await store.wireguardPeers.create(a);
      await rejectsConflict(store.wireguardPeers.create(aPeer(orgId, 'laptop-a', 3)), 'wireguard_peers.org_name');
      await rejectsConflict(store.wireguardPeers.create(aPeer(orgId, 'laptop-c', 3, { address: a.address })), 'wireguard_peers.org_address');
      await rejectsConflict(store.wireguardPeers.create(aPeer(orgId, 'laptop-c', 1, { address: 'fd00:1:2:8000::9' })), 'wireguard_peers.public_key');
      await rejectsConflict(store.wireguardPeers.create({ ...aPeer(orgId, 'laptop-d', 4), id: a.id }), 'wireguard_peers.id');
      // The same name in another org is another peer.
      const other = anOrg();
      await store.orgs.create(other);
      await store.wireguardPeers.create(aPeer(other.id, 'laptop-a', 5, { address: a.address }));
      assert.deepEqual(await store.wireguardPeers.findByName(orgId, 'laptop-b'), b);
      assert.equal(await store.wireguardPeers.findByName(orgId, 'nope'), undefined);
      assert.deepEqual((await store.wireguardPeers.listForOrg(orgId)).map((p) => p.name), ['laptop-a', 'laptop-b']);
      assert.equal((await store.wireguardPeers.list()).length, 3);
      assert.equal(await store.wireguardPeers.remove(a.id), true);
      assert.equal(await store.wireguardPeers.remove(a.id), false);
      assert.deepEqual((await store.wireguardPeers.listForOrg(orgId)).map((p) => p.name), ['laptop-b']);
    });

    test('host mesh: one row per host, unique index and key, the index never changes, listed by index', async () => {
      const key = (n: number) => `${String(n).padStart(42, 'B')}A=`;
      const h1 = { hostId: newId('host'), index: 2, publicKey: key(1), endpoint: '192.0.2.1:51820', updatedAt: T0 };
      const h2 = { hostId: newId('host'), index: 1, publicKey: key(2), endpoint: '[2001:db8::2]:51820', updatedAt: T0 };
      assert.equal(await store.hostMesh.get(h1.hostId), undefined);
      await store.hostMesh.create(h1);
      await store.hostMesh.create(h2);
      await rejectsConflict(store.hostMesh.create({ ...h1, publicKey: key(3), index: 3 }), 'host_mesh.host_id');
      await rejectsConflict(store.hostMesh.create({ hostId: newId('host'), index: 2, publicKey: key(4), endpoint: 'h3:51820', updatedAt: T0 }), 'host_mesh.mesh_index');
      await rejectsConflict(store.hostMesh.create({ hostId: newId('host'), index: 5, publicKey: key(2), endpoint: 'h3:51820', updatedAt: T0 }), 'host_mesh.public_key');
      assert.equal(await store.hostMesh.update(h1.hostId, { publicKey: key(6), endpoint: 'h1.example:51820', updatedAt: T1 }), true);
      assert.equal(await store.hostMesh.update(newId('host'), { publicKey: key(7), endpoint: 'x:1', updatedAt: T1 }), false);
      await rejectsConflict(store.hostMesh.update(h2.hostId, { publicKey: key(6), endpoint: 'x:1', updatedAt: T1 }), 'host_mesh.public_key');
      assert.deepEqual(await store.hostMesh.get(h1.hostId), { ...h1, publicKey: key(6), endpoint: 'h1.example:51820', updatedAt: T1 });
      assert.deepEqual((await store.hostMesh.list()).map((h) => [h.hostId, h.index]), [[h2.hostId, 1], [h1.hostId, 2]]);
    });

    test('a transaction that fails leaves no peer behind', async () => {
      await assert.rejects(store.transaction(async (tx) => {
        await tx.wireguardPeers.create(aPeer(orgId, 'laptop', 7));
        throw new Error('boom');
      }), /boom/);
      assert.deepEqual(await store.wireguardPeers.listForOrg(orgId), []);
    });
  });
}
