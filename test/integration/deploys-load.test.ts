// Zero failed requests during deploys, with split roles on PostgreSQL: a `ward server --roles control`
// child process (the API and the Deployer) and, in this process, `ward server --roles agent,edge` (no
// API, no Deployer) whose agent runs real crun containers (RuntimeHarness) behind the real edge, both on
// a database this test creates and drops. A few keep-alive GET loops hit the edge on loopback for the
// whole of each deploy, and every answer that is not a 200 is a failure: none may happen during
// rolling, canary and bluegreen deploys of a new version (which then answers), a deploy whose new
// version never turns healthy (it fails; the old keeps serving), a crash-looping version (refused; the
// old instances keep running, untouched), and a deploy during which the control plane is SIGKILLed and
// started again (the deploy resumes). One app, two instances, each version a busybox httpd image that
// answers its version (and a slow CGI path a stop without draining would cut). A second, smaller suite
// runs the default one-process node, where the Deployer's commit reaches the edge in-process.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent as HttpAgent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { resolveServerConfig } from '../../src/config/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import type { Instance } from '../../src/core/index.ts';
import type { Store } from '../../src/store/index.ts';
import { IssuanceError } from '../../src/edge/index.ts';
import { RuntimeHarness, cannotRunContainers } from './runtime-harness.ts';
import { FAST_RESTART, PASSWORD, waitFor } from './agent-fixture.ts';
import { tarDirectory } from '../fixtures/archives.ts';
import { freePort, tempDir, writeOciLayout } from '../fixtures/images.ts';
import { ROOT, WARD } from '../e2e/ward-cli.ts';

const skip = cannotRunContainers();
const ADMIN_URL = process.env.WARD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const APP = 'steady';
const HOST = 'steady.ward.test';

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** versionImage is busybox whose command is `sh -c SCRIPT`: one layer for every version, a config each. */
async function versionImage(script: string): Promise<Buffer> {
  const { dir, remove } = await tempDir('ward-load-image-');
  try {
    const busybox = await readFile('/bin/busybox');
    await writeOciLayout(dir, [{
      layers: [{ entries: [{ path: 'bin/', type: 'directory' }, { path: 'bin/busybox', type: 'file', mode: 0o755, data: busybox }, { path: 'bin/sh', type: 'symlink', linkpath: 'busybox' }, { path: 'tmp/', type: 'directory', mode: 0o1777 }] }],
      config: { Cmd: ['/bin/sh', '-c', script], Env: ['PATH=/bin'], StopSignal: 'SIGTERM' },
    }]);
    return await tarDirectory(dir);
  } finally {
    await remove();
  }
}

/**
 * serving answers `version` on / and ok on /healthz (busybox httpd, one connection per request), and on
 * /cgi-bin/slow sends its headers and a first line at once and the version 200 ms later: a request a
 * stop without draining would cut in the middle (the edge cannot retry a response it has begun).
 */
const serving = (version: string) =>
  [
    'mkdir -p /tmp/www/cgi-bin',
    `echo ${version} > /tmp/www/index.html`,
    'echo ok > /tmp/www/healthz',
    // CGI headers end in CRLF: the edge's HTTP parser refuses bare LFs.
    String.raw`printf '%s\n' '#!/bin/sh' "printf 'Content-Type: text/plain\\r\\n\\r\\nstarted\\n'" '/bin/busybox sleep 0.2' 'echo ${version}' > /tmp/www/cgi-bin/slow`,
    'chmod 755 /tmp/www/cgi-bin/slow',
    'exec /bin/busybox httpd -f -p 8080 -h /tmp/www',
  ].join(' && ');
/** neverHealthy serves / but has no /healthz: its check never passes. */
const neverHealthy = (version: string) => `mkdir -p /tmp/www && echo ${version} > /tmp/www/index.html && exec /bin/busybox httpd -f -p 8080 -h /tmp/www`;
const CRASHING = 'echo crashing on purpose; exit 3';
/** NO_ACME is the edge's certificate issuer here: no CA (the load goes over plain HTTP). */
const NO_ACME = { issue: async () => Promise.reject(new IssuanceError('no CA in this test')) };

/**
 * Load is a few GET loops through the edge, each on its own keep-alive connection: half of them ask for
 * /, half for the slow path. Everything that is not a complete 200 (an error included) is recorded as a
 * failure; 200 bodies are counted per version (their last line).
 */
class Load {
  total = 0;
  readonly failures: string[] = [];
  readonly versions = new Map<string, number>();
  /** firstSeen is when each version's first answer arrived (ms since the epoch). */
  readonly firstSeen = new Map<string, number>();
  #stopping = false;
  readonly #loops: Promise<void>[] = [];
  readonly #port: number;
  readonly #started = Date.now();

  constructor(port: number, loops = 4, paths = ['/', '/cgi-bin/slow']) {
    this.#port = port;
    for (let i = 0; i < loops; i++) this.#loops.push(this.#loop(paths[i % paths.length]!));
  }

  async #loop(path: string): Promise<void> {
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    try {
      while (!this.#stopping) {
        const r = await this.#get(agent, path);
        this.total++;
        const version = r.body.split('\n').at(-1)!;
        if (r.status === 200 && /^v\d+$/.test(version)) {
          this.versions.set(version, (this.versions.get(version) ?? 0) + 1);
          if (!this.firstSeen.has(version)) this.firstSeen.set(version, Date.now());
        }
        else this.failures.push(`+${Date.now() - this.#started}ms ${path} ${r.status} ${r.body.slice(0, 120)}`);
        // Bounded: a short pause keeps the loops from taking the machine.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      agent.destroy();
    }
  }

  #get(agent: HttpAgent, path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: this.#port, path, headers: { host: HOST }, agent, timeout: 15_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
        res.on('error', (e) => resolve({ status: 0, body: `response error: ${e.message}` }));
        res.on('aborted', () => resolve({ status: 0, body: `response cut after ${JSON.stringify(body)}` }));
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (e) => resolve({ status: 0, body: `request error: ${e.message}` }));
      req.end();
    });
  }

  async stop(): Promise<this> {
    this.#stopping = true;
    await Promise.all(this.#loops);
    return this;
  }
}

/** wardToml is the app's ward.toml: two instances behind HOST, HTTP checks on /healthz. */
const wardToml = (extra: { grace?: string; waitTimeout?: string } = {}) => ({
  app: APP,
  kill_timeout: '5s',
  http_service: {
    internal_port: 8080,
    hostnames: [HOST],
    force_https: false,
    min_instances: 2,
    checks: [{ path: '/healthz', interval: '2s', timeout: '2s', grace_period: extra.grace ?? '2s' }],
  },
  deploy: { wait_timeout: extra.waitTimeout ?? '60s' },
  resources: { memory: '32MB', cpus: 0.25 },
});

/** Ward is one Ward under test as the tests see it: its API (as the owner), its store, its edge port. */
class Ward {
  apiUrl = '';
  token = '';
  httpPort = 0;
  appId = '';
  store: Store | undefined;

  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const r = await fetch(this.apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : undefined };
  }

  /** signUp makes the owner's account and the app. */
  async signUp(): Promise<void> {
    const signup = await fetch(`${this.apiUrl}/v1/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'owner@example.com', password: PASSWORD, org: 'acme' }),
    });
    this.token = ((await signup.json()) as { session: { token: string } }).session.token;
    assert.equal((await this.api('POST', '/v1/apps', { name: APP })).status, 201);
    this.appId = (await this.store!.apps.findByName(APP))!.id;
  }

  async upload(script: string): Promise<string> {
    const r = await fetch(`${this.apiUrl}/v1/apps/${APP}/images?format=oci-archive`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/octet-stream' },
      body: await versionImage(script),
    });
    const body = (await r.json()) as { image: { digest: string } };
    assert.equal(r.status, 201, JSON.stringify(body));
    return body.image.digest;
  }

  /** deploy uploads the version's image, starts a release with it and returns the release's number. */
  async deploy(script: string, strategy: string, extra: Parameters<typeof wardToml>[0] = {}): Promise<number> {
    const image = await this.upload(script);
    const d = await this.api('POST', `/v1/apps/${APP}/deploy`, { image, config: wardToml(extra), strategy });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    return d.body.release.version;
  }

  settled(v: number): Promise<any> {
    return waitFor(`release v${v} to settle`, async () => {
      const r = await this.api('GET', `/v1/apps/${APP}/releases/${v}`);
      return r.status === 200 && r.body.release.status !== 'running' ? r.body.release : undefined;
    }, 120_000);
  }

  async running(): Promise<Instance[]> {
    return (await this.store!.instances.listForApp(this.appId, { active: true })).filter((i) => i.desiredState === 'running');
  }

  /** answers waits until every answer for half a second is `body` (old instances may still drain). */
  answers(body: string): Promise<boolean> {
    return waitFor(`the edge to answer ${body}`, async () => {
      const l = new Load(this.httpPort, 2);
      await new Promise((r) => setTimeout(r, 500));
      await l.stop();
      return l.failures.length === 0 && l.versions.size === 1 && l.versions.has(body);
    }, 90_000);
  }

  /** underLoad runs fn with the load on and asserts that no request failed. */
  async underLoad<T>(t: TestContext, what: string, fn: () => Promise<T>): Promise<{ result: T; load: Load }> {
    const load = new Load(this.httpPort);
    let result: T;
    try {
      result = await fn();
    } finally {
      await load.stop();
    }
    t.diagnostic(`${what}: ${load.total} requests, ${load.failures.length} failed; 200s by version: ${JSON.stringify(Object.fromEntries(load.versions))}`);
    assert.deepEqual(load.failures, [], `${what}: ${load.failures.length} of ${load.total} requests failed`);
    assert.ok(load.total > 20, `${what}: the load ran (${load.total} requests)`);
    return { result, load };
  }

  /** replaces deploys `version` with `strategy` under load and checks every instance was replaced. */
  async replaces(t: TestContext, strategy: string, version: string): Promise<void> {
    const before = (await this.running()).map((i) => i.id);
    const { result, load } = await this.underLoad(t, strategy, async () => {
      const r = await this.settled(await this.deploy(serving(version), strategy));
      assert.equal(r.status, 'succeeded', r.reason);
      await this.answers(version);
      return r;
    });
    const after = await this.running();
    assert.equal(after.length, 2);
    assert.ok(after.every((i) => !before.includes(i.id)), 'every instance was replaced');
    if (strategy === 'bluegreen') {
      // The new set stays out of the pool until the switch commits (the release's last update).
      assert.ok(load.firstSeen.get(version)! >= Date.parse(result.updated_at), `${version} answered before the switch`);
    }
  }
}

describe('deploys under load: split roles on PostgreSQL, crun, the edge', { skip, timeout: 600_000 }, () => {
  const h = new RuntimeHarness();
  const ward = new Ward();
  const dbName = `ward_test_load_${randomBytes(4).toString('hex')}`;
  let dbUrl = '';
  let dataDir = '';
  let apiPort = 0;
  let control: ChildProcess | undefined;
  let node: RunningServer | undefined;

  /** startControl runs `ward server --roles control` as a child on the shared database and data dir. */
  const startControl = async () => {
    const log = openSync(join(h.logDir, 'control.log'), 'a');
    try {
      control = spawn(process.execPath, [WARD, 'server', '--roles', 'control', '--database-url', dbUrl, '--data-dir', dataDir, '--api-listen', `127.0.0.1:${apiPort}`, '--log-level', 'info'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: dataDir },
        stdio: ['ignore', log, log],
      });
    } finally {
      closeSync(log);
    }
    const child = control;
    await waitFor('the control plane to answer', async () => {
      if (child.exitCode !== null) throw new Error(`the control plane exited with ${child.exitCode}: ${await readFile(join(h.logDir, 'control.log'), 'utf8')}`);
      return (await fetch(`${ward.apiUrl}/v1/health`).catch(() => undefined))?.status === 200;
    }, 120_000);
  };
  const killControl = async () => {
    const child = control;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  };

  before(async () => {
    await h.setUp();
    dataDir = await mkdtemp(join(tmpdir(), `${h.prefix}-data-`));
    await admin(`create database ${dbName}`);
    const url = new URL(ADMIN_URL);
    url.pathname = `/${dbName}`;
    dbUrl = url.toString();
    apiPort = await freePort();
    ward.apiUrl = `http://127.0.0.1:${apiPort}`;
    ward.httpPort = await freePort();
    // The control plane first: it migrates the database and makes the keys the agent's vault shares.
    await startControl();
    const config = resolveServerConfig({
      flags: {
        'data-dir': dataDir,
        'database-url': dbUrl,
        roles: 'agent,edge',
        'http-listen': `127.0.0.1:${ward.httpPort}`,
        'https-listen': `127.0.0.1:${await freePort()}`,
        'log-level': 'info',
        hostname: `${h.prefix}-host`,
      },
      env: {},
      cwd: process.cwd(),
    });
    // Polls a minute apart: what this process does during a deploy, it does because the control plane's
    // changes reach it through the database (Store.desiredChanges: PostgreSQL LISTEN/NOTIFY).
    node = await startServer(config, {
      logDestination: pino.destination({ dest: join(h.logDir, 'agent-edge.log'), sync: true }),
      runtime: { runtime: h.runtime, network: h.network, restart: FAST_RESTART, agent: { reconcileIntervalMs: 60_000, capture: { pollMs: 50 } } },
      edge: { refreshMs: 60_000, issuer: NO_ACME },
    });
    ward.store = node.store;
    await ward.signUp();
  });

  after(async () => {
    try {
      await killControl().catch(() => {});
      await node?.close({ stopInstances: true }).catch(() => {});
    } finally {
      await h.cleanup().catch(() => {});
      await admin(`drop database if exists ${dbName} with (force)`).catch(() => {});
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('the agent/edge process serves no API and runs no Deployer; the control plane has no agent', async () => {
    assert.equal(node!.apiUrl, '');
    assert.ok(node!.agent && node!.edge);
    const r = await ward.settled(await ward.deploy(serving('v1'), 'immediate'));
    assert.equal(r.status, 'succeeded', r.reason);
    assert.equal((await ward.running()).length, 2);
    await ward.answers('v1');
  });

  test('immediate: zero failed requests, and the new version answers', async (t) => {
    await ward.replaces(t, 'immediate', 'v2');
  });

  test('a new version that never turns healthy fails; the old one serves throughout', async (t) => {
    const before = (await ward.running()).map((i) => i.id).sort();
    await ward.underLoad(t, 'never healthy', async () => {
      const r = await ward.settled(await ward.deploy(neverHealthy('v3'), 'rolling', { waitTimeout: '8s' }));
      assert.equal(r.status, 'failed');
      assert.match(r.reason ?? '', /wait_timeout|health/);
    });
    assert.deepEqual((await ward.running()).map((i) => i.id).sort(), before, 'the old instances are the ones running');
    await ward.answers('v2');
  });

  test('a crash-looping version is refused without starving the old instances', async (t) => {
    const before = await ward.running();
    await ward.underLoad(t, 'crash loop', async () => {
      const r = await ward.settled(await ward.deploy(CRASHING, 'rolling'));
      assert.equal(r.status, 'failed');
      assert.match(r.reason ?? '', /crash|exit/i);
    });
    const after = await ward.running();
    assert.deepEqual(after.map((i) => i.id).sort(), before.map((i) => i.id).sort());
    for (const i of after) {
      assert.equal(i.observedState, 'running');
      assert.equal(i.health, 'passing');
      const was = before.find((b) => b.id === i.id)!;
      assert.deepEqual([i.pid, i.restarts, i.startedAt], [was.pid, was.restarts, was.startedAt], 'the old instances were never restarted');
    }
    await ward.answers('v2');
  });

  test('the control plane SIGKILLed mid-deploy and started again: the deploy resumes, no request fails', async (t) => {
    await ward.underLoad(t, 'control plane killed', async () => {
      const v = await ward.deploy(serving('v5'), 'rolling', { grace: '3s' });
      const release = await waitFor('the new release', async () => (await node!.store.releases.listForApp(ward.appId)).find((r) => r.version === v));
      await waitFor('a new instance to run', async () => (await node!.store.instances.listForRelease(release.id)).some((i) => i.observedState === 'running'), 90_000);
      await killControl();
      assert.equal((await node!.store.releases.get(release.id))!.status, 'running', 'killed mid-deploy');
      await new Promise((r) => setTimeout(r, 1000));
      await startControl();
      const r = await ward.settled(v);
      assert.equal(r.status, 'succeeded', r.reason);
      await ward.answers('v5');
    });
  });

  for (const [strategy, v] of [['rolling', 'v6'], ['canary', 'v7'], ['bluegreen', 'v8']] as const) {
    test(`${strategy}: zero failed requests, every instance replaced, and the new version answers`, async (t) => {
      await ward.replaces(t, strategy, v);
    });
  }
});

describe('deploys under load: one node (control, agent and edge in one process), crun, the edge', { skip, timeout: 300_000 }, () => {
  // The default `ward server`: the Deployer's commit reaches the edge in-process (the bluegreen switch).
  const h = new RuntimeHarness();
  const ward = new Ward();
  let dataDir = '';
  let node: RunningServer | undefined;

  before(async () => {
    await h.setUp();
    dataDir = await mkdtemp(join(tmpdir(), `${h.prefix}-data-`));
    ward.httpPort = await freePort();
    const config = resolveServerConfig({
      flags: {
        'data-dir': dataDir,
        'api-listen': '127.0.0.1:0',
        'http-listen': `127.0.0.1:${ward.httpPort}`,
        'https-listen': `127.0.0.1:${await freePort()}`,
        'log-level': 'info',
        hostname: `${h.prefix}-host`,
      },
      env: {},
      cwd: process.cwd(),
    });
    node = await startServer(config, {
      logDestination: pino.destination({ dest: join(h.logDir, 'server.log'), sync: true }),
      runtime: { runtime: h.runtime, network: h.network, restart: FAST_RESTART, agent: { reconcileIntervalMs: 300, capture: { pollMs: 50 } } },
      // A slow route refresh: the switch must reach the edge through the Deployer's event or the drain.
      edge: { refreshMs: 30_000, issuer: NO_ACME },
    });
    ward.apiUrl = node.apiUrl;
    ward.store = node.store;
    await ward.signUp();
    const r = await ward.settled(await ward.deploy(serving('v1'), 'immediate'));
    assert.equal(r.status, 'succeeded', r.reason);
    await ward.answers('v1');
  });

  after(async () => {
    try {
      await node?.close({ stopInstances: true }).catch(() => {});
    } finally {
      await h.cleanup().catch(() => {});
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    }
  });

  for (const [strategy, v] of [['bluegreen', 'v2'], ['rolling', 'v3']] as const) {
    test(`${strategy}: zero failed requests, every instance replaced, and the new version answers`, async (t) => {
      await ward.replaces(t, strategy, v);
    });
  }
});
