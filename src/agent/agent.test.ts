// The agent and its supervisor, with ProcessRuntime (real host processes, real exits and signals, no
// isolation) and the real Store: what the reconcile loop, the restart policy, restart requests, stops,
// and an agent restart do. Real containers: test/integration/agent*.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { SqliteStore, type Store } from '../store/index.ts';
import { Agent, StoreControlPlane } from './index.ts';
import { ProcessRuntime } from './runtime/index.ts';
import { appConfig, freePort, LoopbackNetwork, MemoryImages, placeRelease, seedStore, waitFor } from './testing.ts';

// stableAfterMs is long so a slow start on a loaded machine never counts as a stable run.
const FAST = { initialDelayMs: 50, maxDelayMs: 200, stableAfterMs: 20_000, crashLoopLimit: 3 };

describe('Agent with ProcessRuntime', () => {
  let root = '';
  let store: Store;
  const agents: Agent[] = [];
  const runtimes: ProcessRuntime[] = [];
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ward-agent-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });
  afterEach(async () => {
    // Stop what each test started, even when it failed.
    for (const a of agents.splice(0)) await a.close({ stopInstances: true }).catch(() => {});
    for (const r of runtimes.splice(0)) for (const info of await r.recover()) await r.destroy(info.id);
    await store?.close();
  });

  async function setUp(opts: { restart?: typeof FAST } = {}) {
    store = await SqliteStore.open({ file: ':memory:' });
    const dataDir = await mkdtemp(join(root, 'data-'));
    const stateDir = join(dataDir, 'runtime');
    const images = new MemoryImages();
    const network = new LoopbackNetwork();
    const link = new StoreControlPlane(store);
    const make = () => {
      const runtime = new ProcessRuntime({ stateDir });
      runtimes.push(runtime);
      const agent = new Agent({ link, runtime, network, images, dataDir, host: { name: 'test-host', region: 'local' }, restart: opts.restart ?? FAST, capture: { pollMs: 20 }, reconcileIntervalMs: 100 });
      agents.push(agent);
      return agent;
    };
    const agent = make();
    await agent.start();
    const seed = await seedStore(store, agent.hostId);
    return { agent, images, network, link, dataDir, seed, make };
  }

  const instance = (id: string) => store.instances.get(id);

  test('runs an assigned instance: running, healthy, output in the journal, address reported', async () => {
    const { agent, images, seed, link, network } = await setUp();
    const port = await freePort();
    const image = await images.add(root);
    const cfg = appConfig({ env: { PORT: String(port) }, http_service: { internal_port: port, checks: [{ path: '/healthz', interval: '1s', grace_period: '5s' }] } });
    const { instances: [ins] } = await placeRelease(store, seed, 1, image, cfg);
    link.notify();
    const got = await waitFor('healthy', async () => ((await instance(ins!.id))?.health === 'passing' ? instance(ins!.id) : undefined));
    assert.equal(got!.observedState, 'running');
    assert.ok(got!.pid! > 0);
    assert.equal(got!.privateIpv4, '127.0.0.1');
    assert.ok(got!.startedAt);
    assert.deepEqual(agent.health.upstreams(seed.appId).map((u) => [u.instanceId, u.address, u.port]), [[ins!.id, '127.0.0.1', port]]);
    const lines = await waitFor('output', async () => {
      const l = await agent.journal.read([ins!.id]);
      return l.some((e) => e.message === `listening on ${port}`) ? l : undefined;
    });
    assert.ok(lines.some((e) => e.stream === 'stdout' && e.message === `booting ${ins!.id}`), 'WARD_INSTANCE_ID reaches the app');
    assert.ok(lines.some((e) => e.stream === 'ward' && e.message.startsWith('running (pid')));
    // The org's network is ensured (by the reconcile pass and the network hook) before the instance is attached.
    const attachAt = network.calls.indexOf(`attach ${ins!.id}`);
    assert.ok(attachAt > 0 && network.calls.slice(0, attachAt).every((c) => c === `ensure ${seed.orgId}`), network.calls.join(', '));
  });

  test('a crash is restarted with backoff; the restarts counter rises; health fails while it is down', async () => {
    const { images, seed, link } = await setUp();
    const port = await freePort();
    const image = await images.add(root);
    const cfg = appConfig({ env: { PORT: String(port) }, http_service: { internal_port: port } });
    const { instances: [ins] } = await placeRelease(store, seed, 1, image, cfg);
    link.notify();
    const first = await waitFor('running', async () => ((await instance(ins!.id))?.health === 'passing' ? instance(ins!.id) : undefined));
    await fetch(`http://127.0.0.1:${port}/crash`).then((r) => r.text());
    const again = await waitFor('restarted', async () => {
      const i = await instance(ins!.id);
      return i && i.restarts === 1 && i.observedState === 'running' && i.health === 'passing' && i.pid !== first!.pid ? i : undefined;
    });
    assert.equal(again!.lastExitCode, 3);
    assert.equal(again!.lastExitReason, 'exit code 3');
    assert.equal((await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text())), 'ok');
  });

  test('a crash loop ends failed with the last exit code and log lines', async () => {
    const { images, seed, link, agent } = await setUp();
    const image = await images.add(root);
    const cfg = appConfig({ env: { CRASH: '1' }, restart: { policy: 'always' } });
    const { instances: [ins] } = await placeRelease(store, seed, 1, image, cfg);
    link.notify();
    const failed = await waitFor('failed', async () => ((await instance(ins!.id))?.observedState === 'failed' ? instance(ins!.id) : undefined));
    assert.equal(failed!.lastExitCode, 3);
    assert.match(failed!.lastExitReason!, /^crash loop: exit code 3, 3 times in a row/);
    assert.equal(failed!.restarts, 2);
    assert.ok(failed!.lastLog!.includes('[stderr] fatal: cannot start'), failed!.lastLog!.join('\n'));
    assert.equal(failed!.pid, null);
    // It stays failed: no further starts.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await instance(ins!.id))!.restarts, 2);
    assert.equal(agent.supervisor(ins!.id)?.phase, 'failed');
  });

  test('restart policy never: it stays stopped; on-failure leaves a clean exit alone', async () => {
    const { images, seed, link } = await setUp();
    const image = await images.add(root);
    const { instances: [never] } = await placeRelease(store, seed, 1, image, appConfig({ env: { CRASH: '1' }, restart: { policy: 'never' } }));
    const { instances: [clean] } = await placeRelease(store, seed, 2, image, appConfig({ env: { EXIT_CLEAN: '1' } }));
    link.notify();
    for (const id of [never!.id, clean!.id]) {
      const i = await waitFor('stopped', async () => ((await instance(id))?.observedState === 'stopped' ? instance(id) : undefined));
      assert.equal(i!.restarts, 0);
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await instance(never!.id))!.observedState, 'stopped');
    assert.equal((await instance(never!.id))!.lastExitCode, 3);
    assert.equal((await instance(clean!.id))!.lastExitCode, 0);
  });

  test('a restart request restarts it once (new pid, crash counter unchanged); desired stopped stops it with SIGKILL after kill_timeout', async () => {
    const { images, seed, link, network, agent } = await setUp();
    const port = await freePort();
    const image = await images.add(root);
    const cfg = appConfig({ env: { PORT: String(port), IGNORE_SIGTERM: '1' }, http_service: { internal_port: port }, kill_timeout: '300ms' });
    const { instances: [ins] } = await placeRelease(store, seed, 1, image, cfg);
    link.notify();
    const first = await waitFor('running', async () => ((await instance(ins!.id))?.health === 'passing' ? instance(ins!.id) : undefined));
    await store.instances.requestRestart(ins!.id, new Date().toISOString());
    link.notify();
    const second = await waitFor('restarted', async () => {
      const i = await instance(ins!.id);
      // pid null is the moment between the old process and the new one (the report of the exit).
      return i && i.observedState === 'running' && i.pid !== null && i.pid !== first!.pid ? i : undefined;
    });
    assert.equal(second!.restarts, 0);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await instance(ins!.id))!.pid, second!.pid, 'restarted once only');

    const t0 = Date.now();
    await store.instances.setDesired(ins!.id, 'stopped', new Date().toISOString());
    link.notify();
    const stopped = await waitFor('stopped', async () => ((await instance(ins!.id))?.observedState === 'stopped' ? instance(ins!.id) : undefined));
    assert.ok(Date.now() - t0 >= 300, 'SIGTERM was ignored, SIGKILL came after kill_timeout');
    assert.equal(stopped!.health, 'unknown');
    assert.ok(!network.attached.has(ins!.id), 'detached');
    assert.deepEqual(agent.health.upstreams(seed.appId), []);
    const log = (await agent.journal.read([ins!.id])).map((e) => e.message);
    assert.ok(log.includes('ignoring SIGTERM'));
  });

  test('an agent restart re-attaches to running instances without restarting them', async () => {
    const { images, seed, link, make, agent } = await setUp();
    const port = await freePort();
    const image = await images.add(root);
    const cfg = appConfig({ env: { PORT: String(port) }, http_service: { internal_port: port } });
    const { instances: [ins] } = await placeRelease(store, seed, 1, image, cfg);
    link.notify();
    const before = await waitFor('running', async () => ((await instance(ins!.id))?.health === 'passing' ? instance(ins!.id) : undefined));
    await agent.close();
    agents.splice(agents.indexOf(agent), 1);
    assert.equal(await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text()), 'ok', 'serves while no agent runs');

    const second = make();
    await second.start();
    assert.equal(second.hostId, agent.hostId, 'the host keeps its id');
    await waitFor('adopted', () => second.supervisor(ins!.id)?.phase === 'running');
    const after = await instance(ins!.id);
    assert.equal(after!.pid, before!.pid, 'same process');
    assert.equal(after!.restarts, 0);
    await waitFor('healthy again', () => second.health.upstreams(seed.appId).length === 1);
    // It is still supervised: a crash is restarted by the new agent.
    await fetch(`http://127.0.0.1:${port}/crash`).then((r) => r.text());
    await waitFor('restarted by the new agent', async () => ((await instance(ins!.id))?.restarts === 1 && (await instance(ins!.id))?.observedState === 'running'));
  });

  test('an image that is not on the host fails the instance at once; a deleted instance is removed', async () => {
    const { images, seed, link, agent } = await setUp();
    const image = await images.add(root);
    const missing = { ...image, digest: `sha256:${'0'.repeat(64)}` };
    const { instances: [bad] } = await placeRelease(store, seed, 1, missing, appConfig({}));
    link.notify();
    const failed = await waitFor('failed', async () => ((await instance(bad!.id))?.observedState === 'failed' ? instance(bad!.id) : undefined));
    assert.match(failed!.lastExitReason!, /is not on host/);
    assert.equal(failed!.restarts, 0);

    const port = await freePort();
    const { instances: [ins] } = await placeRelease(store, seed, 2, image, appConfig({ env: { PORT: String(port) }, http_service: { internal_port: port } }));
    link.notify();
    await waitFor('running', async () => (await instance(ins!.id))?.observedState === 'running');
    const pid = (await instance(ins!.id))!.pid!;
    await store.instances.delete(ins!.id);
    link.notify();
    await waitFor('removed', () => agent.supervisor(ins!.id) === undefined);
    await waitFor('process gone', () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
  });
});
