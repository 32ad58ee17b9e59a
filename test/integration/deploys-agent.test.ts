// Deploy strategies against a real single-node Ward (crun containers, real health checks): rolling 3→3
// stops an old instance only after a new one is healthy and survives a control-plane restart half-way; a canary
// that never gets healthy fails at wait_timeout with the old instances untouched (same processes);
// bluegreen switches once the whole new set is healthy; `ward scale count`/`show` and
// `ward releases rollback` through the CLI.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../../src/cli/testing.ts';
import { cannotRunContainers } from './runtime-harness.ts';
import { ensureImageFixtures } from '../fixtures/images.ts';
import { archiveOf, serves, settled, startNode, waitFor, type WardNode } from './agent-fixture.ts';

const skip = cannotRunContainers();

describe('deploy strategies (crun)', { skip }, () => {
  let node: WardNode;
  let dir = '';
  let image = '';
  const app = 'roller';
  const toml = (over: Record<string, unknown> = {}) => ({
    app,
    http_service: { internal_port: 8080, min_instances: 3, checks: [{ path: '/healthz', interval: '1s', grace_period: '5s' }] },
    resources: { memory: '64MB', cpus: 0.25 },
    ...over,
  });
  const ward = (argv: string[]) => runCli(argv, { env: { WARD_API_URL: node.server.apiUrl, WARD_API_TOKEN: node.token, WARD_CONFIG_DIR: join(dir, 'cfg') }, cwd: dir });
  const pidOf = async (id: string) => (await node.server.store.instances.get(id))!.pid;
  /** healthyNow: the app's instances that want to run and pass their checks (null while the API restarts). */
  const healthyNow = async (): Promise<any[] | null> => {
    try {
      const st = await node.api('GET', `/v1/apps/${app}/status`);
      return st.body.instances.filter((i: any) => i.desired_state === 'running' && i.state === 'running' && i.health === 'passing');
    } catch {
      return null;
    }
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-deploys-agent-'));
    const images = await ensureImageFixtures();
    node = await startNode();
    assert.equal((await node.api('POST', '/v1/apps', { name: app })).status, 201);
    const up = await node.upload(app, await archiveOf(images.app.ociArchive), 'oci-archive');
    assert.equal(up.status, 201, JSON.stringify(up.body));
    image = up.body.image.digest;
  });
  after(async () => {
    await node?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('release 1: three instances (min_instances), all started at once, all serve', async () => {
    const d = await node.api('POST', `/v1/apps/${app}/deploy`, { image, config: toml() });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    assert.equal(d.body.release.strategy, 'rolling');
    assert.equal(d.body.instances.length, 3, 'nothing to replace: all at once');
    const v1 = await settled(node, app, 1);
    assert.equal(v1.release.status, 'succeeded', v1.release.reason);
    for (const i of v1.instances) assert.deepEqual(await serves(i, '/healthz'), ['200 healthy', '200 healthy']);
  });

  test('rolling 3→3: an old instance stops only after a new one was healthy; the control plane restarts half-way and the deploy resumes', async () => {
    const d = await node.api('POST', `/v1/apps/${app}/deploy`, { image, config: toml() });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    assert.equal(d.body.instances.length, 1, 'one new instance first');
    // The Deployer's contract, sampled from the store (health checks themselves may blip on a loaded
    // machine): at least 3 instances always meant to run, and no more v1 instances told to stop than
    // v2 instances seen healthy.
    const everHealthy = new Set<string>();
    const violations: string[] = [];
    let samples = 0;
    let restarted = false;
    const a = (await node.server.store.apps.findByName(app))!;
    await waitFor('release 2 to finish', async () => {
      const all = await node.server.store.instances.listForApp(a.id);
      const v2 = (await node.server.store.releases.findByVersion(a.id, 2))!;
      for (const i of all) if (i.releaseId === v2.id && i.observedState === 'running' && i.health === 'passing') everHealthy.add(i.id);
      const v1 = (await node.server.store.releases.findByVersion(a.id, 1))!;
      const v1Stopped = all.filter((i) => i.releaseId === v1.id && i.desiredState === 'stopped').length;
      const meant = all.filter((i) => i.desiredState === 'running').length;
      samples++;
      if (meant < 3 || v1Stopped > everHealthy.size) violations.push(`meant to run ${meant}, v1 stopped ${v1Stopped}, v2 seen healthy ${everHealthy.size}`);
      if (!restarted && v2.progress === '1/3 replaced') {
        restarted = true;
        await node.restartServer();
      }
      return v2.status !== 'running' ? v2 : undefined;
    }, 120_000);
    assert.ok(restarted, 'the control plane restarted during the deploy');
    assert.ok(samples > 0);
    assert.deepEqual(violations, []);
    const v2 = await settled(node, app, 2);
    assert.equal(v2.release.status, 'succeeded', v2.release.reason);
    assert.equal(v2.release.progress, '3/3 replaced');
    assert.equal(v2.instances.filter((i: any) => i.desired_state === 'running').length, 3);
    for (const i of v2.instances) assert.deepEqual(await serves(i, '/healthz'), ['200 healthy', '200 healthy']);
    const v1 = (await node.api('GET', `/v1/apps/${app}/releases/1`)).body;
    assert.deepEqual(v1.instances.map((i: any) => i.desired_state), ['stopped', 'stopped', 'stopped']);
  });

  test('a canary that never gets healthy fails at wait_timeout; the old instances keep their processes', async () => {
    const before = (await node.api('GET', `/v1/apps/${app}/status`)).body.instances.filter((i: any) => i.desired_state === 'running');
    assert.equal(before.length, 3);
    const pids = await Promise.all(before.map((i: any) => pidOf(i.id)));
    const sick = toml({ http_service: { internal_port: 8080, checks: [{ path: '/missing', interval: '1s', grace_period: '1s' }] }, deploy: { wait_timeout: '8s' } });
    const d = await node.api('POST', `/v1/apps/${app}/deploy`, { image, config: sick, strategy: 'canary' });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    const v3 = await settled(node, app, 3);
    assert.equal(v3.release.status, 'failed');
    // Failing its checks (or, on a loaded machine, still starting) when the 8 s are up.
    assert.match(v3.release.reason, /^not every instance was healthy within wait_timeout \(8s\): ins_\w+ (running, health (failing|unknown)|starting)/);
    assert.equal(v3.instances.length, 1, 'only the canary was started');
    assert.deepEqual(await Promise.all(before.map((i: any) => pidOf(i.id))), pids);
    for (const i of before) assert.deepEqual(await serves(i, '/healthz'), ['200 healthy', '200 healthy']);
  });

  test('bluegreen: the whole new set gets healthy, then the old set stops in one step', async () => {
    const d = await node.api('POST', `/v1/apps/${app}/deploy`, { image, config: toml({ deploy: { strategy: 'bluegreen' } }) });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    assert.equal(d.body.instances.length, 3);
    const v4 = await settled(node, app, 4);
    assert.equal(v4.release.status, 'succeeded', v4.release.reason);
    assert.equal(v4.release.progress, '3/3 healthy, switched');
    assert.deepEqual((await node.api('GET', `/v1/apps/${app}/releases/2`)).body.instances.map((i: any) => i.desired_state), ['stopped', 'stopped', 'stopped']);
  });

  test('ward scale count and show; ward releases rollback follows the new release', async () => {
    const up = await ward(['scale', 'count', '4', '-a', app]);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /Starting 1 instance of roller\./);
    const shown = JSON.parse((await ward(['scale', 'show', '-a', app, '--json'])).stdout);
    assert.deepEqual([shown.count, shown.release, shown.min_instances], [4, 4, 3]);
    const low = await ward(['scale', 'count', '2', '-a', app]);
    assert.equal(low.code, 1);
    assert.match(low.stderr, /needs at least 3 instances/);
    await waitFor('4 healthy', async () => (await healthyNow())?.length === 4);
    const rb = await ward(['releases', 'rollback', 'v2', '-a', app]);
    assert.equal(rb.code, 0, rb.stderr);
    assert.match(rb.stderr, /--> Release v5 created from v2 \(bluegreen\): starting 4 instances/);
    assert.match(rb.stderr, /--> Instance ins_\w+ healthy after \d+\.\ds/);
    assert.match(rb.stderr, /--> Switched to the new set; the old instances stop/);
    assert.match(rb.stderr, /--> Release v5 succeeded in/);
    const bad = await ward(['releases', 'rollback', '3', '-a', app]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /release v3 never ran/);
  });
});
