// Secrets from `ward secrets set` to a running instance, through the real pieces: the API and its
// services on a SQLite store, the agent (reconcile loop, supervisor, hooks) with ProcessRuntime (real
// host processes), the secrets hook with its own tmpfs for /run/secrets files, delivery tokens traded
// in-process, and the Deployer rolling the app onto new values when a secret changes. While the
// instances run, the canaries are in their environment (/proc/<pid>/environ) and on the tmpfs, and on
// no disk: not the data dir, the agent's journals and state, the server and agent logs, /var, /tmp,
// /etc, /run or the checkout. Needs root (it mounts a tmpfs), as CI runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApi } from '../../src/api/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { newId, systemClock, toTimestamp } from '../../src/core/index.ts';
import { newLogger } from '../../src/server/index.ts';
import { openLocalKeyProvider } from '../../src/secrets/index.ts';
import { ReleaseRollout } from '../../src/services/index.ts';
import { Deployer } from '../../src/scheduler/index.ts';
import { Agent, defaultHooks, deliveredSecrets, secretsHook, StoreControlPlane } from '../../src/agent/index.ts';
import { ProcessRuntime } from '../../src/agent/runtime/index.ts';
import { appConfig, freePort, LoopbackNetwork, MemoryImages, waitFor } from '../../src/agent/testing.ts';
import { run } from '../../src/exec/index.ts';
import { scanFiles, SYSTEM_SCAN_ROOTS, SYSTEM_SCAN_SKIP } from './canary-scan.ts';

const PASSWORD = 'correct horse battery staple';
const CHECKOUT = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
const TMPFS_MAGIC = 0x01021994;
const isRoot = process.getuid?.() === 0;

// The app: HTTP on $PORT with SO_REUSEPORT, so the new instance of a rollout can bind the port its
// predecessor still holds (both run on the host's loopback with ProcessRuntime); /healthz answers 200.
const APP = `'use strict';
const http = require('node:http');
const server = http.createServer((req, res) => res.end(req.url === '/healthz' ? 'h' : 'ok'));
server.listen({ port: Number(process.env.PORT), host: '127.0.0.1', reusePort: true }, () => console.log('listening'));
process.on('SIGTERM', () => { server.close(() => process.exit(0)); server.closeAllConnections(); });
`;

const canaryOf = (label: string) => `wardcanary${label}${randomBytes(12).toString('hex')}`;

describe('secrets reach a running instance, and only it', { skip: !isRoot && 'needs root: the secrets hook mounts a tmpfs' }, () => {
  let root = '';
  let dataDir = '';
  let store: Store;
  let api: FastifyInstance;
  let agent: Agent;
  let deployer: Deployer;
  let runtime: ProcessRuntime;
  let filesRoot = '';
  let owner = '';
  let image: { digest: string };
  const C1 = canaryOf('first');
  const C2 = canaryOf('second');
  const CFILE = canaryOf('file');
  const CANARIES = [C1, C2, CFILE];

  const call = (method: 'GET' | 'POST', url: string, token?: string, payload?: object) =>
    api.inject({ method, url, ...(payload === undefined ? {} : { payload }), headers: token ? { authorization: `Bearer ${token}` } : {} });
  const body = (r: LightMyRequestResponse) => r.json() as any;
  const environ = async (pid: number) => (await readFile(`/proc/${pid}/environ`)).toString('utf8').split('\0');

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ward-secrets-agent-'));
    dataDir = join(root, 'data');
    filesRoot = join(root, 'secret-files');
    store = await openStore({ dataDir });
    const keys = await openLocalKeyProvider(join(dataDir, 'master.key'));
    api = await buildApi({ store, clock: systemClock, logger: newLogger('info', pino.destination({ dest: join(dataDir, 'server.log'), sync: true })), version: '0.0.0-test', keys });
    await api.ready();
    const link = new StoreControlPlane(store);
    deployer = new Deployer({ store, audit: api.audit, onDesiredChange: () => link.notify(), pollMs: 100 });
    await deployer.start();
    api.secrets.setRollout(new ReleaseRollout({ store, clock: systemClock, audit: api.audit, onRelease: (id) => deployer.track(id), onDesiredChange: () => link.notify() }));

    runtime = new ProcessRuntime({ stateDir: join(root, 'runtime') });
    const images = new MemoryImages();
    await mkdir(join(root, 'app'));
    await writeFile(join(root, 'app', 'server.js'), APP);
    image = await images.add(root, { Entrypoint: [process.execPath, join(root, 'app', 'server.js')] });
    agent = new Agent({
      link,
      runtime,
      network: new LoopbackNetwork(),
      images,
      dataDir: join(root, 'agent'),
      host: { name: 'host-a', region: 'local' },
      hooks: (d) => defaultHooks(d).map((h) => (h.name === 'secrets' ? secretsHook(d.secrets, { filesRoot }) : h)),
      secrets: deliveredSecrets({ mint: async (ins, host) => (await api.deliveries.mint(ins, host)).token, fetcher: api.deliveries.localFetcher(() => agent.hostId) }),
      restart: { initialDelayMs: 50, maxDelayMs: 200, stableAfterMs: 20_000, crashLoopLimit: 3 },
      capture: { pollMs: 20 },
      reconcileIntervalMs: 100,
      logger: newLogger('info', pino.destination({ dest: join(dataDir, 'agent.log'), sync: true })),
    });
    await agent.start();

    const r = await call('POST', '/v1/auth/signup', undefined, { email: 'owner@example.com', password: PASSWORD, org: 'acme' });
    assert.equal(r.statusCode, 201, r.body);
    owner = body(r).session.token;
    assert.equal((await call('POST', '/v1/apps', owner, { name: 'portal', org: 'acme' })).statusCode, 201);
  });

  after(async () => {
    await agent?.close({ stopInstances: true }).catch(() => {});
    for (const info of (await runtime?.recover().catch(() => [])) ?? []) await runtime.destroy(info.id).catch(() => {});
    deployer?.close();
    await api?.close().catch(() => {});
    await store?.close().catch(() => {});
    if (filesRoot) await run(['umount', '--lazy', filesRoot], { allowFailure: true }).catch(() => {});
    if (root) await rm(root, { recursive: true, force: true });
  });

  test('deliver, roll onto new values, and leave no trace on disk', async () => {
    const app = (await store.apps.findByName('portal'))!;
    const port = await freePort();
    const config = appConfig({ env: { PORT: String(port) }, http_service: { internal_port: port, checks: [{ path: '/healthz', interval: '1s', grace_period: '5s' }] }, secrets: { files: ['TLS_KEY'] } });

    // Secrets first; nothing runs yet, so nothing rolls.
    const set = await call('POST', '/v1/apps/portal/secrets', owner, { values: { CANARY: C1, TLS_KEY: CFILE } });
    assert.equal(set.statusCode, 200, set.body);
    assert.equal(body(set).rollout.status, 'none');

    // Release v1 pins secrets version 1 (what a deploy does), placed on this host's agent.
    const now = toTimestamp(new Date());
    const rel = { id: newId('release'), appId: app.id, version: 1, imageRef: image.digest, imageDigest: image.digest, config: JSON.stringify(config), secretsVersion: 1, strategy: 'immediate' as const, status: 'running' as const, reason: null, createdBy: null, createdAt: now, updatedAt: now };
    await store.releases.create(rel);
    const insId = newId('instance');
    await store.instances.create({ id: insId, appId: app.id, releaseId: rel.id, hostId: agent.hostId, region: 'local', desiredState: 'running', restartGeneration: 0, observedState: 'pending', health: 'unknown', privateIpv6: null, privateIpv4: null, pid: null, restarts: 0, lastExitCode: null, lastExitReason: null, lastExitAt: null, lastLog: null, startedAt: null, createdAt: now, updatedAt: now });
    deployer.track(rel.id);
    await agent.reconcile();
    const first = await waitFor('v1 healthy', async () => {
      const i = await store.instances.get(insId);
      return i?.health === 'passing' && i.pid ? i : undefined;
    }, 20_000);
    const env1 = await environ(first.pid!);
    assert.ok(env1.includes(`CANARY=${C1}`), 'the value is in the instance\'s environment');
    assert.ok(env1.includes(`TLS_KEY=${CFILE}`));
    assert.ok(env1.includes(`PORT=${port}`) && env1.some((e) => e.startsWith('WARD_INSTANCE_ID=')));

    // The file: on a tmpfs the hook mounted, 0400, in a directory of the instance's own.
    const fileDir = join(filesRoot, insId);
    assert.equal(Number(statfsSync(filesRoot).type), TMPFS_MAGIC, 'the files live on a tmpfs');
    assert.equal(await readFile(join(fileDir, 'TLS_KEY'), 'utf8'), CFILE);
    assert.equal((await stat(join(fileDir, 'TLS_KEY'))).mode & 0o777, 0o400);
    assert.equal((await stat(join(fileDir, 'TLS_KEY'))).uid, 100_000, 'owned by the app\'s user as the instance\'s user namespace maps it');
    assert.deepEqual(await readdir(fileDir), ['TLS_KEY'], 'only the names asked for');
    await waitFor('v1 succeeded', async () => (await store.releases.get(rel.id))?.status === 'succeeded');

    // Change a secret without --stage: a new release carries version 2; the old instance stops only
    // after the new one is healthy.
    const change = await call('POST', '/v1/apps/portal/secrets', owner, { values: { CANARY: C2 } });
    assert.equal(change.statusCode, 200, change.body);
    assert.equal(body(change).version, 2);
    assert.deepEqual([body(change).rollout.status, body(change).rollout.release, body(change).rollout.instances], ['started', 2, 1]);
    const v2 = (await store.releases.findByVersion(app.id, 2))!;
    assert.equal(v2.secretsVersion, 2);
    assert.equal(v2.imageDigest, rel.imageDigest);
    await waitFor('v2 succeeded', async () => (await store.releases.get(v2.id))?.status === 'succeeded', 20_000);
    const [fresh] = await store.instances.listForRelease(v2.id);
    const second = await waitFor('v2 instance running', async () => {
      const i = await store.instances.get(fresh!.id);
      return i?.health === 'passing' && i.pid ? i : undefined;
    });
    const env2 = await environ(second.pid!);
    assert.ok(env2.includes(`CANARY=${C2}`), 'the new instance has the new value');
    assert.ok(env2.includes(`TLS_KEY=${CFILE}`), 'and the unchanged one');
    await waitFor('v1 instance stopped', async () => (await store.instances.get(insId))?.observedState === 'stopped', 20_000);
    await waitFor('v1 files removed', async () => !(await readdir(filesRoot)).includes(insId));
    assert.equal(await readFile(join(filesRoot, fresh!.id, 'TLS_KEY'), 'utf8'), CFILE);

    const audit = (await store.audit.list({ chain: app.orgId })).map((e) => `${e.action}:${e.outcome}`);
    for (const a of ['secret.set:success', 'secret.deliver:success', 'secret.rollout:success', 'release.succeed:success']) assert.ok(audit.includes(a), `${a} in ${audit.join(', ')}`);
    assert.equal(audit.filter((a) => a === 'secret.deliver:success').length, 2, 'one delivery per start');

    // Nowhere on disk, while both live values exist in memory and on the tmpfs.
    const needles = CANARIES.map((c) => Buffer.from(c));
    const scan = await scanFiles([root, ...SYSTEM_SCAN_ROOTS, CHECKOUT], needles, { skip: [...SYSTEM_SCAN_SKIP, join(CHECKOUT, 'node_modules'), join(CHECKOUT, '.git')] });
    CANARIES.forEach((c, i) => assert.deepEqual(scan.hits[i], [], `${c.slice(0, 20)}… is on disk`));
    assert.ok(scan.skippedMemoryFs.includes(filesRoot), `the tmpfs was recognised and left out: ${scan.skippedMemoryFs.join(', ')}`);
    const logs = await readFile(join(dataDir, 'server.log'), 'utf8');
    assert.match(logs, /secrets delivered/);
  });
});
