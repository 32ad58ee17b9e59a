// MeshSync's own logic, with recording stand-ins for the device, network and control plane (the real
// ones meet in test/integration/network/mesh.test.ts): registration hands the index to the network,
// a sync applies orgs before peers, an unchanged map changes nothing, a map for another index is
// refused, and nudges during a sync fold into one more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateWireGuardKeyPair } from '../../core/index.ts';
import { MeshSync } from './mesh-sync.ts';
import type { NetworkMap } from './mesh.ts';

function harness(map: () => NetworkMap) {
  const calls: string[] = [];
  const publicKey = generateWireGuardKeyPair().publicKey;
  let maps = 0;
  const sync = new MeshSync({
    endpoint: 'h1:51820',
    link: {
      registerMesh: async (hostId, r) => {
        calls.push(`register ${hostId} ${r.publicKey === publicKey} ${r.endpoint}`);
        return { index: 3 };
      },
      networkMap: async () => {
        maps++;
        await new Promise((r) => setTimeout(r, 5));
        return map();
      },
    },
    device: {
      publicKey: async () => publicKey,
      exists: async () => false,
      up: async () => void calls.push('up'),
      configure: async (peers) => void calls.push(`configure ${peers.map((p) => p.allowedIPs.join('+')).join(',')}`),
    },
    network: {
      setHostIndex: async (i) => void calls.push(`index ${i}`),
      ensure: async (orgId, o) => void calls.push(`ensure ${orgId} ${o?.ipv6Prefix} ${o?.egress}`),
    },
    resolver: { setRemoteRecords: (r) => void calls.push(`records ${r.map((x) => x.instanceId).join(',')}`) },
    intervalMs: 60_000,
  });
  return { sync, calls, maps: () => maps };
}

const MAP: NetworkMap = {
  hostIndex: 3,
  orgs: [{ orgId: 'org_a', prefix6: 'fd00:1:2::/48', egress: 'deny' }],
  peers: [{ publicKey: generateWireGuardKeyPair().publicKey, allowedIPs: ['fd00:1:2:8003::2/128'] }],
  records: [],
  remoteRecords: [{ orgId: 'org_a', app: 'web', instanceId: 'ins_x', region: 'ams', ipv6: 'fd00:1:2:4::9' }],
};

test('register gives the network the index; a sync ensures orgs, then peers, then remote records', async () => {
  const h = harness(() => MAP);
  await assert.rejects(h.sync.start(), /before register/);
  assert.equal(await h.sync.register('hst_1'), 3);
  assert.equal(h.sync.index, 3);
  await h.sync.start();
  assert.deepEqual(h.calls, ['register hst_1 true h1:51820', 'index 3', 'ensure org_a fd00:1:2::/48 deny', 'up', 'configure fd00:1:2:8003::2/128', 'records ins_x']);
  // The same map again: read, nothing applied.
  await h.sync.sync();
  assert.equal(h.calls.length, 6);
  await h.sync.close();
});

test('a host with no peer runs no interface; the first peer brings it up', async () => {
  let peers: NetworkMap['peers'] = [];
  const h = harness(() => ({ ...MAP, peers }));
  await h.sync.register('hst_1');
  await h.sync.start();
  assert.ok(!h.calls.includes('up'), 'no interface for nobody');
  peers = MAP.peers;
  await h.sync.sync();
  assert.deepEqual(h.calls.slice(-3), ['up', 'configure fd00:1:2:8003::2/128', 'records ins_x']);
  await h.sync.close();
});

test('a map for another index is refused; concurrent syncs fold into one more', async () => {
  let index = 3;
  const h = harness(() => ({ ...MAP, hostIndex: index }));
  await h.sync.register('hst_1');
  index = 4;
  await assert.rejects(h.sync.sync(), /slice index 4, registered as 3/);
  index = 3;
  const before = h.maps();
  await Promise.all([h.sync.sync(), h.sync.sync(), h.sync.sync(), h.sync.sync()]);
  assert.equal(h.maps() - before, 2, 'one sync, then one more for the calls that came during it');
  await h.sync.close();
});
