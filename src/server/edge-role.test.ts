// The edge role's feed: routes from the store's current releases, upstreams from the health registry
// (a change there reaches the edge without a store query), a conflicting table refused, and `ward certs`
// names scoped to their app. No ACME here: the issuer always fails (test/integration/edge-server.test.ts
// runs Pebble).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { resolveServerConfig } from '../config/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { ephemeralSealingKeys } from '../secrets/index.ts';
import { HealthRegistry } from '../agent/health/index.ts';
import { appConfig, placeRelease, seedStore, waitFor } from '../agent/testing.ts';
import { IssuanceError } from '../edge/index.ts';
import { startEdgeRole, type EdgeRole } from './edge-role.ts';

const IMAGE = { digest: `sha256:${'a'.repeat(64)}` } as never;

describe('edge role', () => {
  let dir = '';
  let store: Store;
  let backend: Server;
  let backendPort = 0;
  let role: EdgeRole;
  const health = new HealthRegistry();

  const get = (host: string, path = '/') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: role.addresses().http!.port, path, headers: { host }, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-edge-role-'));
    store = await openStore({ dataDir: join(dir, 'data') });
    backend = createServer((req, res) => res.end(`backend ${req.headers.host}`));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    backendPort = (backend.address() as { port: number }).port;
    const config = resolveServerConfig({
      flags: { 'data-dir': join(dir, 'data'), roles: 'control,edge', 'http-listen': '127.0.0.1:0', 'https-listen': '127.0.0.1:0', 'log-level': 'silent' },
      env: {},
      cwd: process.cwd(),
    });
    role = await startEdgeRole(config, store, {
      health,
      sealing: ephemeralSealingKeys(),
      logger: pino({ level: 'silent' }),
      refreshMs: 100,
      issuer: { issue: async () => Promise.reject(new IssuanceError('no CA in this test')) },
    });
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
