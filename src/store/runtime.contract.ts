import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { newId, newPlacement } from '../core/index.ts';
import type { Host, Instance, Release } from '../core/index.ts';
import { anApp, anOrg, aUser, rejectsConflict, type StoreFactory } from './store.contract.ts';
import type { Store } from './types.ts';

const T0 = '2026-03-01T10:00:00.000Z';
const T1 = '2026-03-01T10:05:00.123Z';
const T2 = '2026-03-01T11:00:00.456Z';

let seq = 0;

/** seedOrgAppHost creates an org, an app in it and a host: what most repos' rows hang from. */
export async function seedOrgAppHost(store: Store): Promise<{ org: ReturnType<typeof anOrg>; app: ReturnType<typeof anApp>; host: Host }> {
  const org = anOrg();
  await store.orgs.create(org);
  const app = anApp(org.id);
  await store.apps.create(app);
  const host = aHost();
  await store.hosts.register(host);
  return { org, app, host };
}

export function aHost(over: Partial<Host> = {}): Host {
  seq += 1;
  return {
    id: newId('host'),
    name: `host-${seq}-${Math.random().toString(36).slice(2, 6)}`,
    region: 'local',
    status: 'ready',
    capacity: { memoryBytes: 8 * 1024 ** 3, cpus: 2.5 },
    lastHeartbeat: T0,
    createdAt: T0,
    ...over,
  };
}

export function aRelease(appId: string, version: number, over: Partial<Release> = {}): Release {
  return {
    id: newId('release'),
    appId,
    version,
    imageRef: 'registry.example.com/team/app:1.2',
    imageDigest: `sha256:${'ab'.repeat(32)}`,
    config: JSON.stringify({ app: 'x', env: { A: 'b' } }),
    secretsVersion: null,
    strategy: 'immediate',
    status: 'pending',
    reason: null,
    createdBy: null,
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
}

export function anInstance(appId: string, releaseId: string, hostId: string, over: Partial<Instance> = {}): Instance {
  return { ...newPlacement({ id: newId('instance'), appId, releaseId, hostId, region: 'local', at: T0 }), ...over };
}

/**
 * runRuntimeContract runs the contract of the repos issue "Runtime" added (hosts, releases, instances)
 * against one Store implementation. The races here are what deploys rely on: one winner per release
 * version and per release transition, and no restart request lost.
 */
export function runRuntimeContract(name: string, makeStore: StoreFactory): void {
  describe(`Store contract (runtime): ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
    });
    afterEach(async () => {
      await cleanup();
    });

    async function seed() {
      const user = aUser();
      await store.users.create(user);
      return { user, ...(await seedOrgAppHost(store)) };
    }

    describe('hosts', () => {
      test('register, get, findByName, list round-trip; registering again updates', async () => {
        const a = aHost({ name: 'zeta' });
        const b = aHost({ name: 'alpha' });
        await store.hosts.register(a);
        await store.hosts.register(b);
        assert.deepEqual(await store.hosts.get(a.id), a);
        assert.deepEqual(await store.hosts.findByName('alpha'), b);
        assert.deepEqual((await store.hosts.list()).map((h) => h.name), ['alpha', 'zeta']);
        const again = { ...a, region: 'fra', capacity: { memoryBytes: 1024, cpus: 1 }, lastHeartbeat: T1, createdAt: T2 };
        await store.hosts.register(again);
        // created_at is the first registration's.
        assert.deepEqual(await store.hosts.get(a.id), { ...again, createdAt: T0 });
        assert.equal(await store.hosts.get(newId('host')), undefined);
      });

      test('a second host with a taken name is a conflict', async () => {
        const a = aHost();
        await store.hosts.register(a);
        await rejectsConflict(store.hosts.register(aHost({ name: a.name })), 'hosts.name');
      });

      test('heartbeat moves forward only; setStatus sets', async () => {
        const h = aHost();
        await store.hosts.register(h);
        await store.hosts.heartbeat(h.id, T2);
        await store.hosts.heartbeat(h.id, T1);
        assert.equal((await store.hosts.get(h.id))!.lastHeartbeat, T2);
        await store.hosts.setStatus(h.id, 'draining');
        assert.equal((await store.hosts.get(h.id))!.status, 'draining');
      });
    });

    describe('releases', () => {
      test('create, get, findByVersion, latestVersion, listForApp', async () => {
        const { app, user } = await seed();
        assert.equal(await store.releases.latestVersion(app.id), 0);
        const r1 = aRelease(app.id, 1, { createdBy: user.id, secretsVersion: 3, status: 'succeeded' });
        const r2 = aRelease(app.id, 2, { createdAt: T1, updatedAt: T1, reason: 'x' });
        await store.releases.create(r1);
        await store.releases.create(r2);
        assert.deepEqual(await store.releases.get(r1.id), r1);
        assert.deepEqual(await store.releases.findByVersion(app.id, 2), r2);
        assert.equal(await store.releases.findByVersion(app.id, 3), undefined);
        assert.equal(await store.releases.latestVersion(app.id), 2);
        assert.deepEqual((await store.releases.listForApp(app.id)).map((r) => r.version), [2, 1]);
        assert.deepEqual((await store.releases.listForApp(app.id, 1)).map((r) => r.version), [2]);
        assert.deepEqual(JSON.parse(r1.config), JSON.parse((await store.releases.get(r1.id))!.config));
      });

      test('two releases with one version of one app: exactly one wins', async () => {
        const { app } = await seed();
        const results = await Promise.allSettled([store.releases.create(aRelease(app.id, 1)), store.releases.create(aRelease(app.id, 1))]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        await rejectsConflict(store.releases.create(aRelease(app.id, 1)), 'releases.app_version');
        // Inside a transaction the conflict leaves the transaction usable.
        await store.transaction(async (tx) => {
          await rejectsConflict(tx.releases.create(aRelease(app.id, 1)), 'releases.app_version');
          await tx.releases.create(aRelease(app.id, 2));
        });
        assert.equal(await store.releases.latestVersion(app.id), 2);
      });

      test('transition changes status only from the named states, once', async () => {
        const { app } = await seed();
        const r = aRelease(app.id, 1, { status: 'running' });
        await store.releases.create(r);
        const results = await Promise.all([
          store.releases.transition(r.id, ['running'], 'succeeded', null, T1),
          store.releases.transition(r.id, ['running'], 'failed', 'not healthy', T1),
        ]);
        assert.deepEqual(results.filter(Boolean).length, 1);
        const after = (await store.releases.get(r.id))!;
        assert.ok(after.status === 'succeeded' || after.status === 'failed');
        assert.equal(after.updatedAt, T1);
        assert.equal(await store.releases.transition(r.id, ['pending'], 'running', null, T2), false);
        assert.equal(await store.releases.transition(newId('release'), ['running'], 'failed', null, T2), false);
        assert.equal(await store.releases.transition(r.id, [], 'failed', null, T2), false);
      });

      test('advance records a step only at the expected step count of a running release; targetCount round-trips', async () => {
        const { app } = await seed();
        const r = aRelease(app.id, 1, { status: 'running', targetCount: 3, previousCount: 2 });
        await store.releases.create(r);
        assert.deepEqual(await store.releases.get(r.id), r);
        const results = await Promise.all([store.releases.advance(r.id, 0, '1/3 replaced', T1), store.releases.advance(r.id, 0, 'other', T1)]);
        assert.equal(results.filter(Boolean).length, 1);
        const after = (await store.releases.get(r.id))!;
        assert.equal(after.steps, 1);
        assert.ok(after.progress === '1/3 replaced' || after.progress === 'other');
        assert.equal(after.updatedAt, T1);
        assert.equal(await store.releases.advance(r.id, 0, 'stale', T2), false);
        assert.equal(await store.releases.advance(r.id, 1, '2/3 replaced', T2), true);
        assert.equal(await store.releases.transition(r.id, ['running'], 'succeeded', null, T2), true);
        assert.equal(await store.releases.advance(r.id, 2, 'after the end', T2), false, 'only running releases advance');
        assert.deepEqual({ ...(await store.releases.get(r.id))! }, { ...r, status: 'succeeded', progress: '2/3 replaced', steps: 2, updatedAt: T2 });
      });

      test('listByStatus finds in-flight deploys, oldest first', async () => {
        const { app } = await seed();
        const a = aRelease(app.id, 1, { status: 'running', createdAt: T1 });
        const b = aRelease(app.id, 2, { status: 'pending', createdAt: T0 });
        await store.releases.create(a);
        await store.releases.create(b);
        await store.releases.create(aRelease(app.id, 3, { status: 'succeeded' }));
        assert.deepEqual((await store.releases.listByStatus(['pending', 'running'])).map((r) => r.id), [b.id, a.id]);
        assert.deepEqual(await store.releases.listByStatus([]), []);
      });

      test('destroying the app removes its releases and instances', async () => {
        const { app, host } = await seed();
        const r = aRelease(app.id, 1);
        await store.releases.create(r);
        const i = anInstance(app.id, r.id, host.id);
        await store.instances.create(i);
        await store.apps.delete(app.id);
        assert.equal(await store.releases.get(r.id), undefined);
        assert.equal(await store.instances.get(i.id), undefined);
      });
    });

    describe('instances', () => {
      test('create and get round-trip every field', async () => {
        const { app, host } = await seed();
        const r = aRelease(app.id, 1);
        await store.releases.create(r);
        const full = anInstance(app.id, r.id, host.id, {
          observedState: 'failed',
          health: 'failing',
          privateIpv6: 'fd77:6172:6400:0:1:2:3:4',
          privateIpv4: '10.89.3.4',
          pid: 4242,
          restarts: 7,
          restartGeneration: 2,
          lastExitCode: 137,
          lastExitReason: 'oom',
          lastExitAt: T1,
          lastLog: ['line one', 'Ünïcode ✓', ''],
          startedAt: T0,
          updatedAt: T2,
        });
        await store.instances.create(full);
        assert.deepEqual(await store.instances.get(full.id), full);
        const bare = anInstance(app.id, r.id, host.id);
        await store.instances.create(bare);
        assert.deepEqual(await store.instances.get(bare.id), bare);
        await rejectsConflict(store.instances.create(bare), 'instances.id');
        assert.equal(await store.instances.get(newId('instance')), undefined);
      });

      test('listForHost and listForApp({active}) keep what wants to run or has not stopped yet', async () => {
        const { app, host } = await seed();
        const other = aHost();
        await store.hosts.register(other);
        const r = aRelease(app.id, 1);
        await store.releases.create(r);
        const running = anInstance(app.id, r.id, host.id, { observedState: 'running' });
        const stopping = anInstance(app.id, r.id, host.id, { desiredState: 'stopped', observedState: 'running' });
        const failedStopping = anInstance(app.id, r.id, host.id, { desiredState: 'stopped', observedState: 'failed' });
        const done = anInstance(app.id, r.id, host.id, { desiredState: 'stopped', observedState: 'stopped' });
        const elsewhere = anInstance(app.id, r.id, other.id);
        for (const i of [running, stopping, failedStopping, done, elsewhere]) await store.instances.create(i);
        assert.deepEqual((await store.instances.listForHost(host.id)).map((i) => i.id), [running.id, stopping.id, failedStopping.id]);
        assert.deepEqual((await store.instances.listForApp(app.id, { active: true })).map((i) => i.id), [running.id, stopping.id, failedStopping.id, elsewhere.id]);
        assert.equal((await store.instances.listForApp(app.id)).length, 5);
        assert.equal((await store.instances.listForRelease(r.id)).length, 5);
      });

      test('setDesired, report (only the fields given), delete', async () => {
        const { app, host } = await seed();
        const r = aRelease(app.id, 1);
        await store.releases.create(r);
        const i = anInstance(app.id, r.id, host.id);
        await store.instances.create(i);
        assert.equal(await store.instances.setDesired(i.id, 'stopped', T1), true);
        assert.equal(await store.instances.report(i.id, { observedState: 'running', pid: 99, privateIpv4: '10.89.0.9', startedAt: T1 }, T2), true);
        let got = (await store.instances.get(i.id))!;
        assert.equal(got.desiredState, 'stopped');
        assert.equal(got.observedState, 'running');
        assert.equal(got.pid, 99);
        assert.equal(got.health, 'unknown');
        assert.equal(got.updatedAt, T2);
        await store.instances.report(i.id, { health: 'passing', pid: null, lastLog: ['a', 'b'], restarts: 1 }, T2);
        got = (await store.instances.get(i.id))!;
        assert.deepEqual([got.health, got.pid, got.lastLog, got.restarts, got.privateIpv4], ['passing', null, ['a', 'b'], 1, '10.89.0.9']);
        await store.instances.report(i.id, { lastLog: null }, T2);
        assert.equal((await store.instances.get(i.id))!.lastLog, null);
        assert.equal(await store.instances.report(newId('instance'), { health: 'passing' }, T2), false);
        assert.equal(await store.instances.setDesired(newId('instance'), 'stopped', T2), false);
        await store.instances.delete(i.id);
        assert.equal(await store.instances.get(i.id), undefined);
      });

      test('requestRestart bumps the generation atomically: no request is lost', async () => {
        const { app, host } = await seed();
        const r = aRelease(app.id, 1);
        await store.releases.create(r);
        const i = anInstance(app.id, r.id, host.id);
        await store.instances.create(i);
        const gens = await Promise.all(Array.from({ length: 8 }, () => store.instances.requestRestart(i.id, T1)));
        assert.deepEqual([...gens].sort((a, b) => a! - b!), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert.equal((await store.instances.get(i.id))!.restartGeneration, 8);
        assert.equal(await store.instances.requestRestart(newId('instance'), T1), undefined);
      });

      test('an instance needs its app, release and host', async () => {
        const { app, host } = await seed();
        const r = aRelease(app.id, 1);
        await store.releases.create(r);
        await assert.rejects(store.instances.create(anInstance(app.id, r.id, newId('host'))));
        await assert.rejects(store.instances.create(anInstance(app.id, newId('release'), host.id)));
      });
    });
  });
}
