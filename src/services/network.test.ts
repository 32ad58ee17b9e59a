// The control plane's side of the mesh and an org's network settings, against a real SQLite store in
// a temp dir: hosts get distinct, stable slice indices even when they register at the same moment;
// the network map gives each host its peers and people; a custom prefix is validated, unique and
// refused while addresses in the old one are in use.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../api/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { generateWireGuardKeyPair, ManualClock, newId, newPlacement } from '../core/index.ts';
import { newLogger } from '../server/index.ts';
import { deriveOrgPrefix, formatPrefix, hostSlice, parseOrgPrefix, peopleSlice } from '../agent/network/index.ts';
import { aRelease } from '../store/runtime.contract.ts';
import { MeshControlPlane } from './network.ts';

const PASSWORD = 'correct horse battery staple';
const key = () => generateWireGuardKeyPair().publicKey;

describe('MeshControlPlane and org network settings', () => {
  let dir: string;
  let store: Store;
  let api: FastifyInstance;
  const clock = new ManualClock(Date.UTC(2026, 10, 29, 8, 0, 0));
  let owner = '';
  let mesh: MeshControlPlane;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-mesh-'));
    store = await openStore({ dataDir: dir });
    api = await buildApi({ store, clock, logger: newLogger('silent'), version: '0.0.0-test' });
    await api.ready();
    mesh = new MeshControlPlane(store, clock);
    const r = await api.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: 'o@example.com', password: PASSWORD, org: 'acme' } });
    owner = (r.json() as { session: { token: string } }).session.token;
    assert.equal((await api.inject({ method: 'POST', url: '/v1/orgs', payload: { name: 'globex' }, headers: { authorization: `Bearer ${owner}` } })).statusCode, 201);
  });
  after(async () => {
    await api?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const put = (org: string, payload: object) => api.inject({ method: 'PUT', url: `/v1/orgs/${org}/network`, payload, headers: { authorization: `Bearer ${owner}` } });
  const orgId = async (name: string) => (await store.orgs.findByName(name))!.id;

  test('hosts get distinct indices, the lowest free first, kept across re-registration; racing hosts never share one', async () => {
    const h1 = newId('host');
    const k1 = key();
    assert.deepEqual(await mesh.registerMesh(h1, { publicKey: k1, endpoint: '192.0.2.1:51820' }), { index: 1 });
    // Ten new hosts at once: ten different indices, 2 … 11.
    const others = Array.from({ length: 10 }, () => newId('host'));
    const got = await Promise.all(others.map((h, i) => mesh.registerMesh(h, { publicKey: key(), endpoint: `192.0.2.${i + 10}:51820` })));
    assert.deepEqual(got.map((g) => g.index).sort((a, b) => a - b), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // A restart with a new endpoint (or key) keeps the index.
    const k1b = key();
    assert.deepEqual(await mesh.registerMesh(h1, { publicKey: k1b, endpoint: 'h1.example:51820' }), { index: 1 });
    assert.deepEqual(await mesh.gateway(h1), { hostIndex: 1, publicKey: k1b, endpoint: 'h1.example:51820' });
    assert.deepEqual((await mesh.gateway())?.hostIndex, 1, 'without a host of its own: the lowest-index host');
    await assert.rejects(mesh.registerMesh(newId('host'), { publicKey: k1b, endpoint: 'x:1' }), /another host registered this WireGuard public key/);
    await assert.rejects(mesh.registerMesh(newId('host'), { publicKey: 'nope', endpoint: 'x:1' }), /not a WireGuard key/);
    await assert.rejects(mesh.registerMesh(newId('host'), { publicKey: key(), endpoint: 'x y:1' }), /not host:port/);
  });

  test('the network map: peers limited to their slices of shared orgs, people at their gateway, published records only', async () => {
    const hosts = await store.hostMesh.list();
    const [a, b] = hosts;
    const acme = await orgId('acme');
    await store.hosts.register({ id: a!.hostId, name: 'map-a', region: 'ams', status: 'ready', capacity: { memoryBytes: 1, cpus: 1 }, lastHeartbeat: '2026-11-29T08:00:00.000Z', createdAt: '2026-11-29T08:00:00.000Z' });
    await store.hosts.register({ id: b!.hostId, name: 'map-b', region: 'ams', status: 'ready', capacity: { memoryBytes: 1, cpus: 1 }, lastHeartbeat: '2026-11-29T08:00:00.000Z', createdAt: '2026-11-29T08:00:00.000Z' });
    const created = await api.inject({ method: 'POST', url: '/v1/apps', payload: { name: 'mapweb', org: 'acme' }, headers: { authorization: `Bearer ${owner}` } });
    assert.equal(created.statusCode, 201);
    const app = (await store.apps.findByName('mapweb'))!;
    const rel = aRelease(app.id, 1);
    await store.releases.create(rel);
    const at = '2026-11-29T08:00:00.000Z';
    const onA = newId('instance');
    const onB = newId('instance');
    await store.instances.create(newPlacement({ id: onA, appId: app.id, releaseId: rel.id, hostId: a!.hostId, region: 'ams', at }));
    await store.instances.create(newPlacement({ id: onB, appId: app.id, releaseId: rel.id, hostId: b!.hostId, region: 'fra', at }));
    const prefix = parseOrgPrefix(deriveOrgPrefix('ward', acme));
    await store.instances.report(onB, { observedState: 'running', privateIpv6: '' + formatPrefix(hostSlice(prefix, b!.index)).replace('::/64', '::b') }, at);
    const person = key();
    await store.wireguardPeers.create({ id: newId('wireguardPeer'), orgId: acme, name: 'p', publicKey: person, address: formatPrefix(peopleSlice(prefix, a!.index)).replace('::/64', '::2'), createdBy: null, createdAt: at });
    const map = await mesh.networkMap(a!.hostId);
    assert.equal(map.hostIndex, a!.index);
    assert.deepEqual(map.orgs.map((o) => o.orgId), [acme]);
    const toB = map.peers.find((p) => p.publicKey === b!.publicKey)!;
    assert.deepEqual(toB.allowedIPs, [formatPrefix(hostSlice(prefix, b!.index))]);
    assert.equal(toB.endpoint, b!.endpoint);
    assert.deepEqual(map.peers.find((p) => p.publicKey === person)!.allowedIPs, [formatPrefix(peopleSlice(prefix, a!.index)).replace('::/64', '::2/128')]);
    // Hosts serving none of acme get no AllowedIPs for it.
    assert.ok(map.peers.filter((p) => p.publicKey !== b!.publicKey && p.publicKey !== person).every((p) => p.allowedIPs.length === 0));
    // Only the running instance is in DNS; it runs on b, so it is a remote record for a.
    assert.deepEqual(map.remoteRecords.map((r) => r.instanceId), [onB]);
    const fromB = await mesh.networkMap(b!.hostId);
    assert.deepEqual(fromB.peers.find((p) => p.publicKey === a!.publicKey)!.allowedIPs.sort(), [formatPrefix(hostSlice(prefix, a!.index)), formatPrefix(peopleSlice(prefix, a!.index))].sort());
    assert.deepEqual(fromB.remoteRecords, []);
    await assert.rejects(mesh.networkMap(newId('host')), /has not registered/);
  });

  test('a custom prefix: validated, audited, unique, and refused while the org has instances', async () => {
    const bad = await put('globex', { prefix: '2001:db8::/48' });
    assert.equal(bad.statusCode, 400);
    assert.equal((await put('globex', { prefix: 'fd00:1::/64' })).statusCode, 400);
    assert.equal((await put('globex', {})).statusCode, 400);
    const ok = await put('globex', { prefix: 'FD5E:1C2D:3B4A::/48' });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual((ok.json() as { network: { prefix: string; egress: string } }).network.prefix, 'fd5e:1c2d:3b4a::/48');
    const globex = await orgId('globex');
    const audit = (await store.audit.list({ chain: globex })).filter((e) => e.action === 'org.network.update');
    assert.deepEqual(audit.at(-1)!.details, { prefix: 'fd5e:1c2d:3b4a::/48', previous_prefix: deriveOrgPrefix('ward', globex) });
    // Egress alone keeps the prefix.
    assert.equal((await put('globex', { egress: 'deny' })).json().network.prefix, 'fd5e:1c2d:3b4a::/48');
    // Another org's prefix is taken.
    const taken = await put('acme', { prefix: 'fd5e:1c2d:3b4a::/48' });
    assert.equal(taken.statusCode, 409);
    assert.match(taken.body, /belongs to another org/);
    // acme has instances placed (the map test): its prefix cannot change under them.
    const busy = await put('acme', { prefix: 'fd11:2233:4455::/48' });
    assert.equal(busy.statusCode, 409);
    assert.match(busy.body, /cannot change under them/);
    // The same prefix again is no change, and allowed.
    assert.equal((await put('acme', { prefix: deriveOrgPrefix('ward', await orgId('acme')) })).statusCode, 200);
  });
});
