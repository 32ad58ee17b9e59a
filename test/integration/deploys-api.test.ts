// Deploys through the API without containers (no root needed): releases and instances as the control
// plane writes them, the immediate strategy driven by the Deployer from reported instance state, a
// Deployer that restarts mid-deploy and resumes, restarts, status, releases, logs, and the audit trail.
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

  test('deploy: release 1 running with min_instances instances placed; the image\'s StopSignal becomes kill_signal', async () => {
    const before = notified;
    const r = await call('POST', '/v1/apps/web/deploy', { image: 'registry.example.com/web:1', config: { app: 'web', http_service: { internal_port: 8080, min_instances: 2 } } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.release.version, 1);
    assert.equal(r.body.release.status, 'running');
    assert.equal(r.body.release.digest, digest(1));
    assert.equal(r.body.release.strategy, 'immediate');
    assert.deepEqual(r.body.instances.map((i: any) => [i.host, i.state, i.desired_state, i.health, i.release]), [['h1', 'pending', 'running', 'unknown', 1], ['h1', 'pending', 'running', 'unknown', 1]]);
    assert.ok(notified > before, 'agents were told');
    const rel = (await store.releases.findByVersion(await appId('web'), 1))!;
    assert.equal(JSON.parse(rel.config).killSignal, 'SIGQUIT');
    // One deploy at a time per app.
    const again = await call('POST', '/v1/apps/web/deploy', { image: 'registry.example.com/web:1' });
    assert.equal(again.status, 409);
    assert.match(again.body.error.message, /release v1 of "web" is still being deployed/);
  });

  test('the Deployer succeeds the release once every instance runs healthy; audit records both', async () => {
    const deployer = api.deployer;
    const ins = await store.instances.listForApp(await appId('web'));
    await healthy(ins[0]!.id);
    await deployer.start();
    await deployer.stepAll();
    assert.equal((await call('GET', '/v1/apps/web/releases/1')).body.release.status, 'running', 'one of two is not enough');
    await healthy(ins[1]!.id);
    await deployer.stepAll();
    assert.equal((await call('GET', '/v1/apps/web/releases/1')).body.release.status, 'succeeded');
    const entries = await store.audit.list({ orgId: (await store.orgs.findByName('acme'))!.id });
    const actions = entries.map((e) => e.action);
    assert.ok(actions.includes('app.deploy') && actions.includes('release.succeed'), actions.join(','));
    const dep = entries.find((e) => e.action === 'app.deploy')!;
    assert.equal(dep.details.version, 1);
    assert.equal(dep.details.instances, 2);
  });

  test('release 2 keeps the instance count; old instances stop only after the new are healthy; a new Deployer resumes', async () => {
    const r = await call('POST', '/v1/apps/web/deploy', { image: 'registry.example.com/web:2', config: { app: 'web', http_service: { internal_port: 8080 } } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.instances.length, 2, 'as many as run now');
    // Half-way, the control plane "restarts": a new Deployer over the same store picks the deploy up.
    api.deployer.close();
    const audit = new AuditService({ store, clock, key: generateAuditKey(), logger: newLogger('silent') });
    await audit.init();
    const second = new Deployer({ store, clock, audit });
    await second.start();
    const old = (await store.instances.listForApp(await appId('web'))).filter((i) => i.releaseId !== r.body.release.id);
    for (const i of r.body.instances) await healthy(i.id);
    await second.stepAll();
    second.close();
    assert.equal((await call('GET', '/v1/apps/web/releases/2')).body.release.status, 'succeeded');
    for (const o of old) assert.equal((await store.instances.get(o.id))!.desiredState, 'stopped');
    const st = await call('GET', '/v1/apps/web/status');
    assert.equal(st.body.release.version, 2);
    for (const o of old) await report(o.id, { observedState: 'stopped', pid: null });
    assert.deepEqual((await call('GET', '/v1/apps/web/status')).body.instances.map((i: any) => i.release), [2, 2]);
  });

  test('a failed new instance fails the release: the new instances stop, the old are untouched', async () => {
    const r = await call('POST', '/v1/apps/web/deploy', { image: 'registry.example.com/web:1', config: { app: 'web' } });
    assert.equal(r.status, 201);
    const [a, b] = r.body.instances;
    await healthy(a.id);
    await report(b.id, { observedState: 'failed', lastExitCode: 3, lastExitReason: 'crash loop: exit code 3, 5 times in a row within 30s of starting', lastLog: ['boom'] });
    const d = new Deployer({ store, clock, audit: (api as any).audit });
    await d.start();
    await d.stepAll();
    d.close();
    const rel = (await call('GET', '/v1/apps/web/releases/3')).body;
    assert.equal(rel.release.status, 'failed');
    assert.equal(rel.release.reason, `instance ${b.id} failed: crash loop: exit code 3, 5 times in a row within 30s of starting`);
    assert.deepEqual(rel.instances.map((i: any) => i.desired_state), ['stopped', 'stopped']);
    assert.deepEqual(rel.instances.find((i: any) => i.id === b.id).last_log, ['boom']);
    const v2 = (await call('GET', '/v1/apps/web/releases/2')).body.instances;
    assert.deepEqual(v2.map((i: any) => i.desired_state), ['running', 'running']);
    assert.deepEqual((await call('GET', '/v1/apps/web/releases')).body.releases.map((x: any) => [x.version, x.status]), [[3, 'failed'], [2, 'succeeded'], [1, 'succeeded']]);
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
      [{ image: 'registry.example.com/web:1', config: { deploy: { strategy: 'canary' } } }, 400, 'bad_request'],
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
    const all = await call('GET', '/v1/apps/web/logs');
    assert.deepEqual(all.body.logs.map((l: any) => l.message), ['old', 'recent']);
    const since = await call('GET', '/v1/apps/web/logs?since=10m');
    assert.deepEqual(since.body.logs.map((l: any) => [l.instance, l.stream, l.message]), [[ins!.id, 'stderr', 'recent']]);
    assert.equal((await call('GET', '/v1/apps/web/logs?instance=ins_00000000000000000000000000')).status, 404);
    assert.equal((await call('GET', '/v1/apps/web/logs?since=yesterday')).status, 400);
  });
});
