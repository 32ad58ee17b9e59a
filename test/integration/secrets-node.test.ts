// The vault in a whole single-node Ward, as root: `ward server` (control plane and agent in one process)
// whose agent runs real crun containers. A canary set with `secrets set` before a deploy reaches the
// container's environment and, asked for in [secrets] files, /run/secrets; changing it without --stage
// rolls the app onto a new release whose container has the new value, and the old one stops. While both
// values live in containers, the data dir, the run dir, the logs, /var, /tmp, /etc, /run and the checkout
// hold neither. Everything the test makes is swept afterwards (RuntimeHarness), even on failure.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { resolveServerConfig } from '../../src/config/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { defaultHooks, secretsHook, type HookDeps } from '../../src/agent/index.ts';
import { RuntimeHarness, cannotRunContainers } from './runtime-harness.ts';
import { ensureImageFixtures, type ImageFixtures } from '../fixtures/images.ts';
import { appPid, archiveOf, FAST_RESTART, PASSWORD, waitFor } from './agent-fixture.ts';
import { scanFiles, SYSTEM_SCAN_ROOTS, SYSTEM_SCAN_SKIP } from './canary-scan.ts';

const skip = cannotRunContainers();
const CHECKOUT = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
const TMPFS_MAGIC = 0x01021994;
const canaryOf = (label: string) => `wardcanary${label}${randomBytes(12).toString('hex')}`;

describe('secrets in a single-node Ward with crun', { skip, timeout: 300_000 }, () => {
  const h = new RuntimeHarness();
  let dataDir = '';
  let server: RunningServer;
  let token = '';
  let images: ImageFixtures;
  const app = 'vaulted';
  const C1 = canaryOf('before');
  const C2 = canaryOf('after');
  const CFILE = canaryOf('file');
  const CANARIES = [C1, C2, CFILE];
  const filesRoot = () => join(h.runDir, 'secrets');

  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(server.apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : undefined };
  };
  const settled = (version: number) =>
    waitFor(`release v${version}`, async () => {
      const r = await api('GET', `/v1/apps/${app}/releases/${version}`);
      return r.status === 200 && r.body.release.status !== 'running' ? r.body : undefined;
    }, 120_000);
  const environ = async (initPid: number) => (await readFile(`/proc/${await appPid(initPid)}/environ`)).toString('utf8').split('\0');

  before(async () => {
    images = await ensureImageFixtures();
    await h.setUp();
    dataDir = await mkdtemp(join(tmpdir(), `${h.prefix}-data-`));
    const config = resolveServerConfig({
      flags: { 'data-dir': dataDir, 'api-listen': '127.0.0.1:0', roles: 'control,agent', 'log-level': 'info', hostname: `${h.prefix}-host` },
      env: {},
      cwd: process.cwd(),
    });
    server = await startServer(config, {
      logDestination: pino.destination({ dest: join(h.logDir, 'server.log'), sync: true }),
      runtime: {
        runtime: h.runtime,
        network: h.network,
        restart: FAST_RESTART,
        // The server's own wiring, with the files root under this test's run dir instead of /run/ward.
        hooks: (d: HookDeps) => defaultHooks(d).map((x) => (x.name === 'secrets' ? secretsHook(d.secrets, { filesRoot: filesRoot() }) : x)),
        agent: { reconcileIntervalMs: 500, capture: { pollMs: 50 } },
      },
    });
    const signup = await fetch(`${server.apiUrl}/v1/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'owner@example.com', password: PASSWORD, org: 'acme' }),
    });
    token = ((await signup.json()) as { session: { token: string } }).session.token;
    assert.equal((await api('POST', '/v1/apps', { name: app })).status, 201);
  });

  after(async () => {
    try {
      await server?.close({ stopInstances: true }).catch(() => {});
    } finally {
      await h.cleanup().catch(() => {});
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('set, deploy, roll: the values are in the containers and on no disk', async () => {
    const set = await api('POST', `/v1/apps/${app}/secrets`, { values: { CANARY: C1, TLS_KEY: CFILE } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.equal(set.body.rollout.status, 'none', 'nothing runs yet');

    const up = await fetch(`${server.apiUrl}/v1/apps/${app}/images?format=oci-archive`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: await archiveOf(images.app.ociArchive),
    });
    const digest = ((await up.json()) as { image: { digest: string } }).image.digest;
    const wardToml = {
      app,
      http_service: { internal_port: 8080, checks: [{ path: '/healthz', interval: '2s', grace_period: '10s' }] },
      resources: { memory: '64MB', cpus: 0.5 },
      secrets: { files: ['TLS_KEY'] },
    };
    const d = await api('POST', `/v1/apps/${app}/deploy`, { image: digest, config: wardToml });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    const v1 = await settled(1);
    assert.equal(v1.release.status, 'succeeded', v1.release.reason);
    const ins1 = (await server.store.instances.get(v1.instances[0].id))!;
    assert.equal((await server.store.releases.get(ins1.releaseId))!.secretsVersion, 1, 'the deploy pinned the newest secrets version');

    const env1 = await environ(ins1.pid!);
    assert.ok(env1.includes(`CANARY=${C1}`), 'the value is in the container\'s environment');
    const app1 = await appPid(ins1.pid!);
    assert.equal(await readFile(`/proc/${app1}/root/run/secrets/TLS_KEY`, 'utf8'), CFILE, '/run/secrets inside the container');
    const bundle = join(h.runDir, 'runtime', 'instances', ins1.id, 'config.json');
    assert.ok((await readFile(bundle, 'utf8')).includes(C1), 'the OCI config holds the env');
    const { statfsSync } = await import('node:fs');
    assert.equal(Number(statfsSync(bundle).type), TMPFS_MAGIC, 'and lives on a tmpfs');
    assert.equal(Number(statfsSync(filesRoot()).type), TMPFS_MAGIC);

    const change = await api('POST', `/v1/apps/${app}/secrets`, { values: { CANARY: C2 } });
    assert.equal(change.status, 200, JSON.stringify(change.body));
    assert.deepEqual([change.body.rollout.status, change.body.rollout.release], ['started', 2]);
    const v2 = await settled(2);
    assert.equal(v2.release.status, 'succeeded', v2.release.reason);
    const ins2 = (await server.store.instances.get(v2.instances[0].id))!;
    const env2 = await environ(ins2.pid!);
    assert.ok(env2.includes(`CANARY=${C2}`), 'the new container has the new value');
    await waitFor('the old instance to stop', async () => (await server.store.instances.get(ins1.id))?.observedState === 'stopped');

    const needles = CANARIES.map((c) => Buffer.from(c));
    const scan = await scanFiles([dataDir, h.runDir, h.logDir, ...SYSTEM_SCAN_ROOTS, CHECKOUT], needles, { skip: [...SYSTEM_SCAN_SKIP, join(CHECKOUT, 'node_modules'), join(CHECKOUT, '.git')] });
    CANARIES.forEach((c, i) => assert.deepEqual(scan.hits[i], [], `${c.slice(0, 20)}… is on disk`));
    assert.ok(scan.skippedMemoryFs.includes(join(h.runDir, 'runtime')) && scan.skippedMemoryFs.includes(filesRoot()), scan.skippedMemoryFs.join(', '));
    const log = await readFile(join(h.logDir, 'server.log'), 'utf8');
    assert.match(log, /secrets delivered/);
    const audit = (await server.store.audit.list({ orgId: (await server.store.apps.findByName(app))!.orgId })).map((e) => e.action);
    for (const a of ['secret.set', 'app.deploy', 'secret.deliver', 'secret.rollout']) assert.ok(audit.includes(a), `${a} in ${audit.join(', ')}`);
  });
});
