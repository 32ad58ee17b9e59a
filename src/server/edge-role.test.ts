// The edge role's feed: routes from the store's current releases, upstreams from the health registry
// (a change there reaches the edge without a store query), a conflicting table refused, and `ward certs`
// names scoped to their app; a stopping instance drained (requests in flight finish, its keep-alive
// connections close); the bluegreen hold-back and switch. No ACME here: the issuer always fails (test/integration/edge-server.test.ts
// runs Pebble).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../store/index.ts';
import { toTimestamp } from '../core/index.ts';
import { HealthRegistry } from '../agent/health/index.ts';
import { appConfig, placeRelease, seedStore, waitFor } from '../agent/testing.ts';
import type { EdgeRole } from './edge-role.ts';
import { roleGet, startTestEdgeRole } from './edge-role-testing.ts';

const IMAGE = { digest: `sha256:${'a'.repeat(64)}` } as never;
const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('edge role', () => {
  let dir = '';
  let store: Store;
  let backend: Server;
  let backendPort = 0;
  let role: EdgeRole;
  const health = new HealthRegistry();

  const get = (host: string, path = '/') => roleGet(role, host, path);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-edge-role-'));
    store = await openStore({ dataDir: join(dir, 'data') });
    backend = createServer((req, res) => res.end(`backend ${req.headers.host}`));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    backendPort = (backend.address() as { port: number }).port;
    role = await startTestEdgeRole(join(dir, 'data'), store, { health, refreshMs: 100 });
  });

  after(async () => {
    await role?.close();
    await new Promise((r) => backend.close(r));
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('routes follow releases and upstreams follow health', async () => {
    assert.equal(role.state(), 'listening');
    const seed = await seedStore(store);
    const cfg = appConfig({ app: seed.appName, http_service: { internal_port: backendPort, hostnames: ['plain.ward.test'], force_https: false } });
    const { instances } = await placeRelease(store, seed, 1, IMAGE, cfg);
    await waitFor('the route', async () => (await get('plain.ward.test')).status === 503);
    assert.equal((await get('unknown.ward.test')).status, 404);
    health.set({ appId: seed.appId, instanceId: instances[0]!.id, releaseId: 'r', addresses: ['127.0.0.1'], address: '127.0.0.1', port: backendPort, health: 'passing' });
    await waitFor('the healthy instance', async () => (await get('plain.ward.test')).status === 200);
    assert.equal((await get('plain.ward.test')).body, 'backend plain.ward.test');
    health.remove(instances[0]!.id);
    await waitFor('no instance again', async () => (await get('plain.ward.test')).status === 503);

    // The hostname gets a managed certificate (failing here: no CA), owned by the app in ward certs.
    const listed = await waitFor('the managed name', async () => {
      const l = await role.certificates.list(seed.appName);
      return l.length === 1 && l[0]!.state !== 'pending' ? l : undefined;
    });
    assert.equal(listed[0]!.name, 'plain.ward.test');
    assert.equal(listed[0]!.state, 'failing');
    assert.match(listed[0]!.lastError ?? '', /no CA in this test/);
    assert.deepEqual(await role.certificates.list('other-app'), []);

    // A name added with ward certs routes to the app too.
    await role.certificates.add(seed.appName, 'added.ward.test');
    health.set({ appId: seed.appId, instanceId: instances[0]!.id, releaseId: 'r', addresses: ['127.0.0.1'], address: '127.0.0.1', port: backendPort, health: 'passing' });
    await waitFor('the added name', async () => (await get('added.ward.test')).status === 200);
    assert.equal((await role.certificates.show('added.ward.test'))?.app, seed.appName);
    assert.equal(await role.certificates.remove('added.ward.test'), true);
    await waitFor('the added name gone', async () => (await get('added.ward.test')).status === 404);
  });

  test('a hostname a second app also claims stays with the first; the rest of its routes apply', async () => {
    const other = await seedStore(store);
    const cfg = appConfig({ app: other.appName, http_service: { internal_port: backendPort, hostnames: ['plain.ward.test', 'mine.ward.test'], force_https: false } });
    await placeRelease(store, other, 1, IMAGE, cfg);
    await role.refresh();
    assert.equal((await get('plain.ward.test')).status, 200, 'still the first app (the second has no healthy instance)');
    assert.equal((await get('mine.ward.test')).status, 503, 'the second app\'s own name is routed to it');
  });

  test('an app without [http_service] gets no route', async () => {
    const seed = await seedStore(store);
    await placeRelease(store, seed, 1, IMAGE, appConfig({ app: seed.appName }));
    await role.refresh();
    assert.equal((await get(`${seed.appName}.ward.test`)).status, 404);
  });
});

// Both ways the edge runs: in the server's process, and as two worker processes (edge_workers).
for (const workers of ['1', '2']) describe(`edge role: draining and the bluegreen switch (edge_workers = ${workers})`, () => {
  let dir = '';
  let store: Store;
  let role: EdgeRole;
  const health = new HealthRegistry();
  const backends: Array<{ server: Server; port: number; sockets: Set<Socket>; hung: Array<() => void>; busy: { n: number } }> = [];

  /** backend answers its name; /slow after 300 ms; /hang only when the test lets it go. busy.n counts those two in progress. */
  const backend = async (name: string) => {
    const sockets = new Set<Socket>();
    const hung: Array<() => void> = [];
    const busy = { n: 0 };
    const server = createServer((req, res) => {
      if (req.url === '/slow' || req.url === '/hang') {
        busy.n++;
        res.once('finish', () => busy.n--);
      }
      if (req.url === '/slow') return void setTimeout(() => res.end(`${name} slow`), 300);
      if (req.url === '/hang') return void hung.push(() => res.end(`${name} hung`));
      res.end(name);
    });
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const b = { server, port: (server.address() as { port: number }).port, sockets, hung, busy };
    backends.push(b);
    return b;
  };
  const get = (host: string, path = '/') => roleGet(role, host, path);
  const release = async (appId: string, version: number, strategy: 'immediate' | 'bluegreen', config: unknown) => {
    const now = toTimestamp(new Date());
    const r = { id: `rel_${version}${Math.random().toString(36).slice(2, 10)}`, appId, version, imageRef: DIGEST, imageDigest: DIGEST, config: JSON.stringify(config), secretsVersion: null, strategy, status: 'running' as const, reason: null, createdBy: null, createdAt: now, updatedAt: now };
    await store.releases.create(r as never);
    return r;
  };
  const succeed = (id: string) => store.releases.transition(id, ['running'], 'succeeded', null, toTimestamp(new Date()));
  const passing = (appId: string, instanceId: string, releaseId: string, port: number) =>
    health.set({ appId, instanceId, releaseId, addresses: ['127.0.0.1'], address: '127.0.0.1', port, health: 'passing' });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-edge-drain-'));
    store = await openStore({ dataDir: join(dir, 'data') });
    // A slow refresh: every change below must come from refresh() (the Deployer's event) or drain().
    role = await startTestEdgeRole(join(dir, 'data'), store, { health, refreshMs: 60_000, flags: { 'edge-workers': workers } });
  });

  after(async () => {
    for (const b of backends) b.hung.forEach((f) => f());
    await role?.close();
    for (const b of backends) {
      b.server.closeAllConnections();
      await new Promise((r) => b.server.close(r));
    }
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a stopping instance is drained: the request in flight finishes first, then its connections close', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const seed = await seedStore(store);
    const cfg = appConfig({ app: seed.appName, http_service: { internal_port: a.port, hostnames: ['drain.ward.test'], force_https: false } });
    const r1 = await release(seed.appId, 1, 'immediate', cfg);
    await succeed(r1.id);
    passing(seed.appId, 'ins_a', r1.id, a.port);
    passing(seed.appId, 'ins_b', r1.id, b.port);
    await role.refresh();
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await get('drain.ward.test')).body);
    assert.deepEqual([...seen].sort(), ['a', 'b']);

    // A slow request to a, then a is withdrawn (the health hook's prestop) and drained.
    let slow: Promise<{ status: number; body: string }> | undefined;
    for (let i = 0; i < 10 && a.busy.n === 0; i++) {
      slow = get('drain.ward.test', '/slow');
      await waitFor('the request in flight', () => a.busy.n + b.busy.n > 0);
      if (a.busy.n === 0) await slow;
    }
    assert.equal(a.busy.n, 1, 'a slow request is in flight to a');
    if (workers === '1') assert.equal(role.edge!.inFlight('ins_a'), 1, 'the edge counts it');
    health.remove('ins_a');
    const drained = await role.drain('ins_a', 10_000);
    // The instance answered before the drain resolved (the edge may still be passing the answer on: the
    // client's copy can arrive a moment after).
    assert.equal(a.busy.n, 0, 'drain resolves only after the request in flight finished');
    assert.deepEqual(await slow, { status: 200, body: 'a slow' });
    assert.equal(drained.inFlight, 0);
    for (let i = 0; i < 4; i++) assert.equal((await get('drain.ward.test')).body, 'b', 'new requests go to b only');
    await waitFor('no keep-alive connection from the edge to a', () => a.sockets.size === 0);

    // A request that outlives the budget: drain gives up and says how many are left.
    const hang = get('drain.ward.test', '/hang');
    await waitFor('the hanging request', () => b.busy.n === 1);
    health.remove('ins_b');
    const late = await role.drain('ins_b', 200);
    assert.equal(late.inFlight, 1);
    b.hung.forEach((f) => f());
    assert.equal((await hang).status, 200, 'a timed-out drain does not cut the request: the kill signal will');
  });

  test('bluegreen: the new set waits outside the pool, joins it at the switch, and the pool never goes empty', async () => {
    const blue = await backend('blue');
    const green = await backend('green');
    const seed = await seedStore(store);
    const cfg = appConfig({ app: seed.appName, http_service: { internal_port: blue.port, hostnames: ['bg.ward.test'], force_https: false } });
    const v1 = await release(seed.appId, 1, 'immediate', cfg);
    await succeed(v1.id);
    passing(seed.appId, 'ins_blue', v1.id, blue.port);
    const v2 = await release(seed.appId, 2, 'bluegreen', cfg);
    passing(seed.appId, 'ins_green', v2.id, green.port);
    await role.refresh();
    for (let i = 0; i < 6; i++) assert.equal((await get('bg.ward.test')).body, 'blue', 'held back while the deploy runs');

    // The Deployer commits the switch (release succeeded; the old set's desired state is stopped in the
    // same transaction) and tells the edge role in-process: the new set is in before the old one goes.
    await succeed(v2.id);
    await role.refresh();
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await get('bg.ward.test')).body);
    assert.ok(seen.has('green'), 'green serves after the switch');
    health.remove('ins_blue');
    await role.drain('ins_blue', 5_000);
    for (let i = 0; i < 4; i++) assert.equal((await get('bg.ward.test')).body, 'green');

    // A bluegreen deploy whose old set is gone (it crashed): the new set serves rather than nobody.
    const v3 = await release(seed.appId, 3, 'bluegreen', cfg);
    passing(seed.appId, 'ins_blue3', v3.id, blue.port);
    await role.refresh();
    health.remove('ins_green');
    await waitFor('the held-back set serving', async () => (await get('bg.ward.test')).body === 'blue');
  });
});
