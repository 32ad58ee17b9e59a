// Deploys through the API without containers (no root needed): releases and instances as the control
// plane writes them, the strategies (rolling, canary, bluegreen, immediate) driven by the Deployer from
// reported instance state, failures (never healthy, crash loop, half-way), a Deployer that restarts
// mid-deploy and resumes, restarts, status, releases, logs, and the audit trail.
// The agent's side is played by writing reports to the store, as an agent would.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/index.ts';
import { ManualClock, toTimestamp } from '../../src/core/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { newLogger } from '../../src/server/index.ts';
import { LogJournal } from '../../src/agent/index.ts';
import { Deployer } from '../../src/scheduler/index.ts';
import { AuditService, generateAuditKey } from '../../src/audit/index.ts';
import type { DeployImage } from '../../src/services/index.ts';

const PASSWORD = 'correct horse battery staple';

describe('deploys API (no containers)', () => {
  let dir = '';
  let store: Store;
  let api: FastifyInstance;
  let token = '';
  let notified = 0;
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0));
  const images = new Map<string, DeployImage>();
  const pulled: string[] = [];
  const digest = (n: number) => `sha256:${String(n).padStart(64, '0')}`;
  images.set('registry.example.com/web:1', { digest: digest(1), config: { Cmd: ['/app'], StopSignal: 'SIGQUIT' }, layers: 1, size: 10 });
  images.set('registry.example.com/web:2', { digest: digest(2), config: { Entrypoint: ['/app'] }, layers: 1, size: 10 });
  images.set('registry.example.com/nocmd:1', { digest: digest(3), config: {}, layers: 1, size: 10 });

  const call = async (method: 'GET' | 'POST', url: string, payload?: object) => {
    const r = await api.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
    return { status: r.statusCode, body: r.body ? (r.json() as any) : undefined };
  };
  const appId = async (name: string) => (await store.apps.findByName(name))!.id;
  const report = async (instanceId: string, r: Parameters<Store['instances']['report']>[1]) => store.instances.report(instanceId, r, toTimestamp(clock.now()));
  const healthy = async (instanceId: string) => report(instanceId, { observedState: 'running', health: 'passing', pid: 42 });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-deploys-api-'));
    store = await openStore({ dataDir: dir });
    api = await buildApi({
      store,
      clock,
      logger: newLogger('silent'),
      version: '0.0.0-test',
      deploys: {
        images: {
          pull: async (ref) => {
            pulled.push(ref);
            const img = images.get(ref);
            if (!img) throw Object.assign(new Error('nope'), { code: 'X' });
            return img;
          },
          get: async (d) => [...images.values()].find((i) => i.digest === d),
        },
        logs: new LogJournal({ dir: join(dir, 'logs') }),
        uploadDir: join(dir, 'uploads'),
        onDesiredChange: () => notified++,
      },
    });
    await api.ready();
    const s = await api.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: 'o@example.com', password: PASSWORD, org: 'acme' } });
    token = s.json().session.token;
    const at = toTimestamp(clock.now());
    await store.hosts.register({ id: 'hst_00000000000000000000000001', name: 'h1', region: 'local', status: 'ready', capacity: { memoryBytes: 2 * 1024 ** 3, cpus: 2 }, lastHeartbeat: at, createdAt: at });
    for (const name of ['web', 'other']) assert.equal((await call('POST', '/v1/apps', { name })).status, 201);
  });
  after(async () => {
    await api?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** agents plays the agents' part for instances told to stop: they report stopped. */
  const agents = async (app: string) => {
    for (const i of await store.instances.listForApp(await appId(app), { active: true })) if (i.desiredState === 'stopped') await report(i.id, { observedState: 'stopped', pid: null });
  };
  const releaseOf = async (app: string, version: number) => (await call('GET', `/v1/apps/${app}/releases/${version}`)).body;
  /** serving: the app's instances that want to run and are healthy, by release version. */
  const serving = async (app: string) => (await call('GET', `/v1/apps/${app}/status`)).body.instances.filter((i: any) => i.desired_state === 'running' && i.state === 'running' && i.health === 'passing').map((i: any) => i.release);
  const web3 = { app: 'web', http_service: { internal_port: 8080, min_instances: 3 } };

  test('deploy with the default strategy (rolling): release 1 running with its target; nothing to replace, so all start at once', async () => {
    const before = notified;
    await api.deployer.start();
    const r = await call('POST', '/v1/apps/web/deploy', { image: 'registry.example.com/web:1', config: web3 });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.release.version, 1);
    assert.equal(r.body.release.status, 'running');
    assert.equal(r.body.release.digest, digest(1));
    assert.equal(r.body.release.strategy, 'rolling');
    assert.equal(r.body.release.target_count, 3);
    assert.equal(r.body.release.progress, '0/3 replaced');
    assert.deepEqual(r.body.instances.map((i: any) => [i.host, i.state, i.desired_state, i.health, i.release]), Array(3).fill(['h1', 'pending', 'running', 'unknown', 1]));
    assert.ok(notified > before, 'agents were told');
    const rel = (await store.releases.findByVersion(await appId('web'), 1))!;
    assert.equal(JSON.parse(rel.config).killSignal, 'SIGQUIT');
    // One deploy at a time per app.
    const again = await call('POST', '/v1/apps/web/deploy', { image: 'registry.example.com/web:1' });
    assert.equal(again.status, 409);
    assert.match(again.body.error.message, /release v1 of "web" is still being deployed/);
  });

  test('the Deployer succeeds the release once every instance runs healthy; audit records both', async () => {
    const ins = await store.instances.listForApp(await appId('web'));
    await healthy(ins[0]!.id);
    await api.deployer.stepAll();
    assert.equal((await releaseOf('web', 1)).release.status, 'running', 'one of three is not enough');
    assert.equal((await releaseOf('web', 1)).release.progress, '1/3 replaced');
    for (const i of ins) await healthy(i.id);
    await api.deployer.stepAll();
    assert.equal((await releaseOf('web', 1)).release.status, 'succeeded');
    assert.equal((await releaseOf('web', 1)).release.progress, '3/3 replaced');
    const entries = await store.audit.list({ orgId: (await store.orgs.findByName('acme'))!.id });
    const actions = entries.map((e) => e.action);
    assert.ok(actions.includes('app.deploy') && actions.includes('release.succeed'), actions.join(','));
    const dep = entries.find((e) => e.action === 'app.deploy')!;
    assert.equal(dep.details.version, 1);
    assert.equal(dep.details.instances, 3);
  });

  test('rolling 3→3: one new at a time, an old one stops only once a new one is healthy; a new Deployer resumes half-way', async () => {
    const r = await call('POST', '/v1/apps/web/deploy', { image: 'registry.example.com/web:2', config: { app: 'web', http_service: { internal_port: 8080 } } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.release.target_count, 3, 'as many as run now');
    assert.equal(r.body.instances.length, 1, 'max_unavailable 1: one new instance first');
    const audit = new AuditService({ store, clock, key: generateAuditKey(), logger: newLogger('silent') });
    await audit.init();
    let deployer: Deployer = api.deployer;
    const seen: string[] = [];
    for (let round = 0; round < 10; round++) {
      const rel = await releaseOf('web', 2);
      const oldRunning = (await releaseOf('web', 1)).instances.filter((i: any) => i.desired_state === 'running').length;
      seen.push(`${rel.release.status} ${rel.release.progress}, old ${oldRunning}`);
      if (rel.release.status !== 'running') break;
      const pending = rel.instances.filter((i: any) => i.desired_state === 'running' && i.health !== 'passing');
      assert.ok(pending.length <= 1, `at most max_unavailable new instances in flight: ${pending.length}`);
      assert.ok((await serving('web')).length >= 3, 'never fewer healthy instances than before');
      for (const i of pending) await healthy(i.id);
      if (round === 1) {
        // Half-way, the control plane "restarts": a new Deployer over the same store picks the deploy up.
        api.deployer.close();
        deployer = new Deployer({ store, clock, audit });
        await deployer.start();
      }
      await deployer.stepAll();
      await agents('web');
    }
    if (deployer !== api.deployer) {
      deployer.close();
      await api.deployer.start();
    }
    assert.deepEqual(seen, ['running 0/3 replaced, old 3', 'running 1/3 replaced, old 2', 'running 2/3 replaced, old 1', 'succeeded 3/3 replaced, old 0']);
    const done = await releaseOf('web', 2);
    assert.equal(done.release.status, 'succeeded');
    assert.equal(done.release.progress, '3/3 replaced');
    assert.deepEqual(await serving('web'), [2, 2, 2]);
    assert.deepEqual((await call('GET', '/v1/apps/web/status')).body.release.version, 2);
  });

  test('canary (the flag wins over ward.toml): one new instance first; once healthy it stays and the rest roll', async () => {
    const r = await call('POST', '/v1/apps/web/deploy', { image: 'registry.example.com/web:1', config: { app: 'web', deploy: { strategy: 'bluegreen', max_unavailable: 2 } }, strategy: 'canary' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.release.strategy, 'canary');
    assert.equal(r.body.instances.length, 1);
    assert.equal(r.body.release.progress, 'canary: 0/3 replaced');
    await api.deployer.stepAll();
    assert.equal((await releaseOf('web', 3)).instances.length, 1, 'nothing more until the canary is healthy');
    await healthy(r.body.instances[0].id);
    await api.deployer.stepAll();
    const mid = await releaseOf('web', 3);
    assert.equal(mid.instances.length, 3, 'then max_unavailable (2) at a time');
    assert.ok(mid.instances.some((i: any) => i.id === r.body.instances[0].id && i.desired_state === 'running'), 'the canary stays');
    assert.equal((await releaseOf('web', 2)).instances.filter((i: any) => i.desired_state === 'running').length, 2, 'one old instance replaced by the canary');
    for (const i of mid.instances) await healthy(i.id);
    await api.deployer.stepAll();
    await agents('web');
    assert.equal((await releaseOf('web', 3)).release.status, 'succeeded');
    assert.deepEqual(await serving('web'), [3, 3, 3]);
  });

  test('bluegreen: the full new set first; the release says running+bluegreen until every one is healthy, then the old set stops at once', async () => {
    const r = await call('POST', '/v1/apps/web/deploy', { image: 'registry.example.com/web:2', config: { app: 'web', deploy: { strategy: 'bluegreen' } } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.release.strategy, 'bluegreen');
    assert.equal(r.body.instances.length, 3);
    for (const i of r.body.instances.slice(0, 2)) await healthy(i.id);
    await api.deployer.stepAll();
    const mid = await releaseOf('web', 4);
    assert.deepEqual([mid.release.status, mid.release.strategy, mid.release.progress], ['running', 'bluegreen', '2/3 healthy']);
    assert.deepEqual((await releaseOf('web', 3)).instances.map((i: any) => i.desired_state), ['running', 'running', 'running'], 'the old set serves until the switch');
    await healthy(r.body.instances[2].id);
    await api.deployer.stepAll();
    assert.deepEqual([(await releaseOf('web', 4)).release.status, (await releaseOf('web', 4)).release.progress], ['succeeded', '3/3 healthy, switched']);
    assert.deepEqual((await releaseOf('web', 3)).instances.map((i: any) => i.desired_state), ['stopped', 'stopped', 'stopped']);
    await agents('web');
  });

  test('a version that never gets healthy fails at wait_timeout with its last log lines; the old are untouched', async () => {
    const r = await call('POST', '/v1/apps/web/deploy', { image: 'registry.example.com/web:1', config: { app: 'web', deploy: { wait_timeout: '30s' } } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const [n] = r.body.instances;
    await report(n.id, { observedState: 'running', health: 'failing' });
    await new LogJournal({ dir: join(dir, 'logs') }).append(n.id, [{ time: toTimestamp(clock.now()), stream: 'stderr', message: 'cannot reach the database' }]);
    await api.deployer.stepAll();
    assert.equal((await releaseOf('web', 5)).release.status, 'running');
    clock.advance(31_000);
    await api.deployer.stepAll();
    const rel = await releaseOf('web', 5);
    assert.equal(rel.release.status, 'failed');
    assert.equal(rel.release.reason, `not every instance was healthy within wait_timeout (30s): ${n.id} running, health failing\nlast log lines of ${n.id}:\n  cannot reach the database`);
    assert.deepEqual(rel.instances.map((i: any) => i.desired_state), ['stopped']);
    assert.deepEqual((await releaseOf('web', 4)).instances.map((i: any) => i.desired_state), ['running', 'running', 'running']);
    await agents('web');
    assert.deepEqual(await serving('web'), [4, 4, 4]);
  });

  test('a crash-looping new instance fails the release with its last lines; the old are untouched', async () => {
    const r = await call('POST', '/v1/apps/web/deploy', { image: 'registry.example.com/web:1', config: { app: 'web' }, strategy: 'immediate' });
    assert.equal(r.status, 201);
    const [a, b] = r.body.instances;
    await healthy(a.id);
    await report(b.id, { observedState: 'failed', lastExitCode: 3, lastExitReason: 'crash loop: exit code 3, 5 times in a row within 30s of starting', lastLog: ['boom'] });
    await api.deployer.stepAll();
    const rel = await releaseOf('web', 6);
    assert.equal(rel.release.status, 'failed');
    assert.equal(rel.release.reason, `instance ${b.id} failed: crash loop: exit code 3, 5 times in a row within 30s of starting\nlast log lines of ${b.id}:\n  boom`);
    assert.deepEqual(rel.instances.map((i: any) => i.desired_state), ['stopped', 'stopped', 'stopped']);
    assert.deepEqual(rel.instances.find((i: any) => i.id === b.id).last_log, ['boom']);
    assert.deepEqual((await releaseOf('web', 4)).instances.map((i: any) => i.desired_state), ['running', 'running', 'running']);
    await agents('web');
  });

  test('a rolling deploy failing half-way stops its new instances and places again the old ones it had replaced', async () => {
    const r = await call('POST', '/v1/apps/web/deploy', { image: 'registry.example.com/web:2', config: { app: 'web' } });
    assert.equal(r.status, 201);
    await healthy(r.body.instances[0].id);
    await api.deployer.stepAll();
    const mid = await releaseOf('web', 7);
    assert.equal(mid.instances.length, 2);
    assert.equal((await releaseOf('web', 4)).instances.filter((i: any) => i.desired_state === 'running').length, 2);
    await report(mid.instances[1].id, { observedState: 'failed', lastExitReason: 'out of memory' });
    await api.deployer.stepAll();
    await agents('web');
    const rel = await releaseOf('web', 7);
    assert.equal(rel.release.status, 'failed');
    assert.equal(rel.release.reason, `instance ${mid.instances[1].id} failed: out of memory`);
    const v4 = (await releaseOf('web', 4)).instances.filter((i: any) => i.desired_state === 'running');
    assert.equal(v4.length, 3, 'back to three instances of the release that served');
    for (const i of v4) await healthy(i.id);
    assert.deepEqual(await serving('web'), [4, 4, 4]);
    const entries = await store.audit.list({ orgId: (await store.orgs.findByName('acme'))!.id });
    assert.equal(entries.filter((e) => e.action === 'release.fail').at(-1)!.details.restored, 1);
  });

  /** drive plays the agents through a deploy: every new instance gets healthy, until the release is over. */
  const drive = async (app: string, version: number) => {
    for (let round = 0; round < 20; round++) {
      const rel = await releaseOf(app, version);
      if (rel.release.status !== 'running') return rel;
      for (const i of rel.instances) if (i.desired_state === 'running' && i.health !== 'passing') await healthy(i.id);
      await api.deployer.stepAll();
      await agents(app);
    }
    throw new Error(`release v${version} did not finish`);
  };

  test('scale: show, up (placed on hosts), down (the newest stop); bad counts change nothing', async () => {
    const shown = await call('GET', '/v1/apps/web/scale');
    assert.deepEqual(shown.body, { count: 3, regions: { local: 3 }, min_instances: 0, max: 100, release: 4 });
    const up = await call('POST', '/v1/apps/web/scale', { count: 5 });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    assert.deepEqual([up.body.count, up.body.started.length, up.body.stopped], [5, 2, []]);
    for (const id of up.body.started) {
      const i = (await store.instances.get(id))!;
      assert.deepEqual([i.hostId, i.desiredState, i.observedState, i.releaseId], ['hst_00000000000000000000000001', 'running', 'pending', (await store.releases.findByVersion(await appId('web'), 4))!.id]);
      await healthy(id);
    }
    const before = (await store.instances.listForApp(await appId('web'), { active: true })).filter((i) => i.desiredState === 'running');
    const down = await call('POST', '/v1/apps/web/scale', { count: 2 });
    assert.equal(down.status, 200, JSON.stringify(down.body));
    assert.equal(down.body.count, 2);
    const newest = [...before].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1)).slice(0, 3).map((i) => i.id);
    assert.deepEqual([...down.body.stopped].sort(), [...newest].sort(), 'the newest extras stop');
    await agents('web');
    const entries = (await store.audit.list({ orgId: (await store.orgs.findByName('acme'))!.id })).filter((e) => e.action === 'app.scale');
    assert.deepEqual(entries.map((e) => [e.details.from, e.details.to]), [[3, 5], [5, 2]]);
    const count = async () => (await call('GET', '/v1/apps/web/scale')).body.count;
    const cases: Array<[object, number, string, RegExp]> = [
      [{ count: -1 }, 400, 'bad_request', /0 or more/],
      [{ count: 101 }, 400, 'bad_request', /more than this Ward scales one app to \(100\)/],
      [{ count: 'three' }, 400, 'bad_request', /count/],
      [{ count: 3, region: 'fra' }, 503, 'unavailable', /region "fra"/],
    ];
    for (const [body, status, code, message] of cases) {
      const r = await call('POST', '/v1/apps/web/scale', body);
      assert.deepEqual([r.status, r.body.error.code], [status, code], JSON.stringify(r.body));
      assert.match(r.body.error.message, message);
      assert.equal(await count(), 2, 'nothing changed');
    }
    assert.equal((await call('POST', '/v1/apps/other/scale', { count: 1 })).status, 409, 'nothing deployed');
    assert.equal((await store.audit.list({ orgId: (await store.orgs.findByName('acme'))!.id })).filter((e) => e.action === 'app.scale').length, 2);
    // Down to none and up again: the newest succeeded release comes back.
    assert.deepEqual((await call('POST', '/v1/apps/web/scale', { count: 0 })).body.count, 0);
    await agents('web');
    const again = await call('POST', '/v1/apps/web/scale', { count: 2 });
    assert.deepEqual([again.status, again.body.count, again.body.release], [200, 2, 4], JSON.stringify(again.body));
    for (const id of again.body.started) await healthy(id);
    assert.deepEqual(await serving('web'), [4, 4]);
  });

  test('rollback: a new release from v1\'s digest and config, with the app\'s strategy; refused for unknown, never-ran, or during a deploy', async () => {
    assert.equal((await call('POST', '/v1/apps/web/releases/99/rollback')).status, 404);
    const never = await call('POST', '/v1/apps/web/releases/5/rollback');
    assert.deepEqual([never.status, never.body.error.code], [400, 'bad_request']);
    assert.match(never.body.error.message, /release v5 never ran \(it is failed\)/);
    const r = await call('POST', '/v1/apps/web/releases/v1/rollback');
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual([r.body.release.version, r.body.release.digest, r.body.release.strategy, r.body.release.target_count], [8, digest(1), 'bluegreen', 3], 'the strategy of the current release (v4: bluegreen); v1 had min_instances 3');
    const rel8 = (await store.releases.findByVersion(await appId('web'), 8))!;
    assert.deepEqual(JSON.parse(rel8.config), JSON.parse((await store.releases.findByVersion(await appId('web'), 1))!.config));
    // While it runs: no second rollback, no deploy, no scale.
    assert.equal((await call('POST', '/v1/apps/web/releases/2/rollback')).status, 409);
    assert.equal((await call('POST', '/v1/apps/web/scale', { count: 4 })).status, 409);
    const done = await drive('web', 8);
    assert.equal(done.release.status, 'succeeded');
    assert.deepEqual(await serving('web'), [8, 8, 8]);
    const entry = (await store.audit.list({ orgId: (await store.orgs.findByName('acme'))!.id })).find((e) => e.action === 'app.rollback')!;
    assert.deepEqual([entry.details.version, entry.details.from_version, entry.details.digest], [8, 1, digest(1)]);
    // v1's config has min_instances 3: scaling below it is refused, and nothing changes.
    const low = await call('POST', '/v1/apps/web/scale', { count: 2 });
    assert.equal(low.status, 400);
    assert.match(low.body.error.message, /needs at least 3 instances \(\[http_service\] min_instances\)/);
    assert.equal((await call('GET', '/v1/apps/web/scale')).body.count, 3);
  });

  test('restart bumps the restart generation of every running instance, or one; recorded in the audit log', async () => {
    const running = (await store.instances.listForApp(await appId('web'), { active: true })).filter((i) => i.desiredState === 'running');
    const all = await call('POST', '/v1/apps/web/restart', {});
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(all.body.instances.length, running.length);
    for (const i of running) assert.equal((await store.instances.get(i.id))!.restartGeneration, i.restartGeneration + 1);
    const one = await call('POST', '/v1/apps/web/restart', { instance: running[0]!.id });
    assert.deepEqual(one.body.instances.map((i: any) => i.id), [running[0]!.id]);
    assert.equal((await call('POST', '/v1/apps/web/restart', { instance: 'ins_00000000000000000000000000' })).status, 404);
    assert.equal((await call('POST', '/v1/apps/web/restart', { instance: 'nonsense' })).status, 400);
    assert.equal((await call('POST', '/v1/apps/other/restart', {})).status, 409, 'nothing to restart');
    const entries = await store.audit.list({ orgId: (await store.orgs.findByName('acme'))!.id });
    assert.equal(entries.filter((e) => e.action === 'app.restart').length, 2);
  });

  test('bad deploys change nothing: no command, no host in the region, unknown strategy, mounts', async () => {
    const other = await appId('other');
    const cases: Array<[object, number, string]> = [
      [{ image: 'registry.example.com/nocmd:1' }, 400, 'image_invalid'],
      [{ image: 'registry.example.com/web:1', config: { primary_region: 'fra' } }, 503, 'unavailable'],
      [{ image: 'registry.example.com/web:1', strategy: 'sideways' }, 400, 'bad_request'],
      [{ image: 'registry.example.com/web:1', config: { deploy: { strategy: 'sideways' } } }, 400, 'invalid_config'],
      [{ image: 'registry.example.com/web:1', config: { mounts: [{ source: 'data', destination: '/data' }] } }, 400, 'invalid_config'],
      [{ image: 'registry.example.com/web:1', config: { resources: { cpus: 64 } } }, 400, 'resources_exceed_host'],
      [{ image: 'docker-archive:/etc/passwd' }, 400, 'invalid_image_ref'],
    ];
    for (const [body, status, code] of cases) {
      const r = await call('POST', '/v1/apps/other/deploy', body);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code, JSON.stringify(body));
    }
    assert.deepEqual(await store.releases.listForApp(other), []);
    assert.deepEqual(await store.instances.listForApp(other), []);
  });

  test('logs: the journal lines of the app\'s instances, since a time; unknown instances are not found', async () => {
    const [ins] = await store.instances.listForApp(await appId('web'));
    const journal = new LogJournal({ dir: join(dir, 'logs') });
    await journal.append(ins!.id, [{ time: '2026-06-01T11:00:00.000Z', stream: 'stdout', message: 'old' }, { time: '2026-06-01T11:59:00.000Z', stream: 'stderr', message: 'recent' }]);
    const all = await call('GET', `/v1/apps/web/logs?instance=${ins!.id}`);
    assert.deepEqual(all.body.logs.map((l: any) => l.message), ['old', 'recent']);
    const since = await call('GET', `/v1/apps/web/logs?since=10m&instance=${ins!.id}`);
    assert.deepEqual(since.body.logs.map((l: any) => [l.instance, l.stream, l.message]), [[ins!.id, 'stderr', 'recent']]);
    assert.equal((await call('GET', '/v1/apps/web/logs?instance=ins_00000000000000000000000000')).status, 404);
    assert.equal((await call('GET', '/v1/apps/web/logs?since=yesterday')).status, 400);
  });
});
