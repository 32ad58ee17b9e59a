import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UserError, type Host, type Instance, type Release } from '../core/index.ts';
import { normalizeAppConfig, validateAppConfig } from '../config/index.ts';
import { immediateStrategy, instanceCount, place } from './index.ts';

const host = (name: string, over: Partial<Host> = {}): Host => ({
  id: `hst_${name}`, name, region: 'local', status: 'ready', capacity: { memoryBytes: 1 << 30, cpus: 2 }, lastHeartbeat: '', createdAt: '', ...over,
});
const res = { memoryBytes: 256 << 20, cpus: 1 };

describe('placement', () => {
  test('spreads over ready hosts of the region, fewest instances first, then by name', () => {
    const hosts = [host('b'), host('a'), host('c', { status: 'draining' }), host('d', { region: 'fra' })];
    const placed = place(hosts, [{ hostId: 'hst_a' }], { count: 3, resources: res, region: undefined });
    assert.deepEqual(placed.map((h) => h.name), ['b', 'd', 'a']);
    assert.deepEqual(place(hosts, [], { count: 1, resources: res, region: 'fra' }).map((h) => h.name), ['d']);
  });

  test('no ready host is unavailable; resources beyond every host are resources_exceed_host', () => {
    assert.throws(() => place([host('a', { status: 'down' })], [], { count: 1, resources: res, region: undefined }), (e: unknown) => e instanceof UserError && e.code === 'unavailable');
    assert.throws(() => place([host('a')], [], { count: 1, resources: res, region: 'fra' }), (e: unknown) => e instanceof UserError && e.code === 'unavailable' && /region "fra"/.test(e.message));
    assert.throws(() => place([host('a')], [], { count: 1, resources: { memoryBytes: 2 * 1024 ** 3, cpus: 1 }, region: undefined }), (e: unknown) => e instanceof UserError && e.code === 'resources_exceed_host' && /2 GiB|2GB|2.0/.test(e.message));
    assert.throws(() => place([host('a')], [], { count: 1, resources: { memoryBytes: 1 << 20, cpus: 8 }, region: undefined }), (e: unknown) => e instanceof UserError && e.code === 'resources_exceed_host' && /8 CPUs/.test(e.message));
  });

  test('instanceCount keeps the current count, at least min_instances and one', () => {
    assert.deepEqual([instanceCount(0, undefined), instanceCount(0, 0), instanceCount(3, 1), instanceCount(1, 2)], [1, 1, 3, 2]);
  });
});

describe('immediate strategy', () => {
  const config = normalizeAppConfig(validateAppConfig({ deploy: { wait_timeout: '10s' } }).raw!);
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const release = { id: 'rel_new', createdAt: new Date(t0).toISOString() } as Release;
  const inst = (id: string, over: Partial<Instance> = {}) => ({ id, desiredState: 'running', observedState: 'running', health: 'passing', lastExitCode: null, lastExitReason: null, ...over }) as Instance;
  const step = (fresh: Instance[], old: Instance[], now = t0 + 1000) => immediateStrategy.step({ release, config, fresh, old, now });

  test('waits until every new instance runs and passes, then stops every old one', () => {
    assert.deepEqual(step([inst('n1'), inst('n2', { health: 'unknown' })], [inst('o1')]), { kind: 'wait', progress: '1/2 healthy' });
    assert.deepEqual(step([inst('n1', { observedState: 'starting', health: 'unknown' })], []), { kind: 'wait', progress: '0/1 healthy' });
    assert.deepEqual(step([inst('n1'), inst('n2')], [inst('o1'), inst('o2')]), { kind: 'succeed', stop: ['o1', 'o2'] });
  });

  test('a failed or stopped new instance fails the release and stops the new ones only', () => {
    const s = step([inst('n1'), inst('n2', { observedState: 'failed', lastExitCode: 3, lastExitReason: 'crash loop: exit code 3, 5 times in a row' })], [inst('o1')]);
    assert.deepEqual(s, { kind: 'fail', reason: 'instance n2 failed: crash loop: exit code 3, 5 times in a row', stop: ['n1', 'n2'] });
    assert.equal(step([inst('n1', { observedState: 'stopped', lastExitCode: 0, lastExitReason: 'exit code 0' })], []).kind, 'fail');
  });

  test('wait_timeout fails it, naming what was not healthy', () => {
    const s = step([inst('n1', { health: 'failing' })], [inst('o1')], t0 + 11_000);
    assert.deepEqual(s, { kind: 'fail', reason: 'not every instance was healthy within wait_timeout (10s): n1 running, health failing', stop: ['n1'] });
  });
});
