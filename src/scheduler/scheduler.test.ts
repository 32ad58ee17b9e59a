import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UserError, type Host, type Instance, type Release } from '../core/index.ts';
import { normalizeAppConfig, validateAppConfig } from '../config/index.ts';
import { batchSize, bluegreenStrategy, canaryStrategy, immediateStrategy, instanceCount, place, rollingStrategy, type DeployStep, type DeployStrategy } from './index.ts';

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

const t0 = Date.parse('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(t0 + ms).toISOString();
const inst = (id: string, over: Partial<Instance> = {}) =>
  ({ id, releaseId: id.startsWith('n') ? 'rel_new' : 'rel_old', desiredState: 'running', observedState: 'running', health: 'passing', restarts: 0, lastExitCode: null, lastExitReason: null, lastLog: null, createdAt: at(0), ...over }) as Instance;
const configOf = (deploy: Record<string, unknown> = {}) => normalizeAppConfig(validateAppConfig({ deploy: { wait_timeout: '10s', ...deploy } }).raw!);
const releaseOf = (over: Partial<Release> = {}) => ({ id: 'rel_new', createdAt: at(0), targetCount: 3, previousCount: 3, ...over }) as Release;

describe('immediate and bluegreen strategies', () => {
  const config = configOf();
  const legacy = releaseOf({ targetCount: undefined, previousCount: undefined });
  const step = (fresh: Instance[], old: Instance[], now = t0 + 1000, release = legacy) => immediateStrategy.step({ release, config, fresh, old, now });

  test('place every new instance at once, wait until all run and pass, then stop every old one', () => {
    assert.deepEqual(step([], [inst('o1')], t0, releaseOf({ targetCount: 2 })), { kind: 'progress', start: 2, stop: [], progress: '0/2 healthy' });
    assert.deepEqual(step([inst('n1'), inst('n2', { health: 'unknown' })], [inst('o1')]), { kind: 'wait', progress: '1/2 healthy' });
    assert.deepEqual(step([inst('n1', { observedState: 'starting', health: 'unknown' })], []), { kind: 'wait', progress: '0/1 healthy' });
    assert.deepEqual(step([inst('n1'), inst('n2')], [inst('o1'), inst('o2')]), { kind: 'succeed', stop: ['o1', 'o2'], progress: '2/2 healthy' });
    const bg = bluegreenStrategy.step({ release: releaseOf({ targetCount: 2 }), config, fresh: [inst('n1'), inst('n2')], old: [inst('o1'), inst('o2')], now: t0 });
    assert.deepEqual(bg, { kind: 'succeed', stop: ['o1', 'o2'], progress: '2/2 healthy, switched' });
    assert.deepEqual(bluegreenStrategy.step({ release: releaseOf({ targetCount: 2 }), config, fresh: [inst('n1')], old: [inst('o1')], now: t0 }), { kind: 'progress', start: 1, stop: [], progress: '1/2 healthy' });
  });

  test('a failed or stopped new instance fails the release and stops the new ones only', () => {
    const s = step([inst('n1'), inst('n2', { observedState: 'failed', lastExitCode: 3, lastExitReason: 'crash loop: exit code 3, 5 times in a row' })], [inst('o1')]);
    assert.deepEqual(s, { kind: 'fail', reason: 'instance n2 failed: crash loop: exit code 3, 5 times in a row', stop: ['n1', 'n2'], failed: 'n2' });
    assert.equal(step([inst('n1', { observedState: 'stopped', lastExitCode: 0, lastExitReason: 'exit code 0' })], []).kind, 'fail');
    // Between crashes the agent's backoff runs: the deploy waits for its crash-loop verdict.
    assert.deepEqual(step([inst('n1', { observedState: 'restarting', restarts: 1, health: 'unknown', lastExitCode: 1, lastExitReason: 'exit code 1' })], [inst('o1')]), { kind: 'wait', progress: '0/1 healthy' });
  });

  test('wait_timeout, counted from when each instance was placed, fails it naming what was not healthy', () => {
    const s = step([inst('n1', { health: 'failing' })], [inst('o1')], t0 + 11_000);
    assert.deepEqual(s, { kind: 'fail', reason: 'not every instance was healthy within wait_timeout (10s): n1 running, health failing', stop: ['n1'], failed: 'n1' });
    assert.equal(step([inst('n1', { health: 'failing', createdAt: at(5000) })], [inst('o1')], t0 + 11_000).kind, 'wait', 'placed 6 s ago');
    assert.equal(step([], [], t0, releaseOf({ targetCount: 0 })).kind, 'fail', 'nothing to start');
  });
});

/**
 * simulate runs a strategy against a small world: each step's decisions are applied (new instances
 * placed `pending`, stopped ones leave `old`), then `tick` says how instances fare. It records, at every
 * step, how many healthy instances the app had, and checks that asking again about the same state gives
 * the same answer (what a restarted Deployer does).
 */
function simulate(strategy: DeployStrategy, opts: { old: number; target: number; deploy?: Record<string, unknown>; mounts?: boolean; tick?: (i: Instance, n: number) => Partial<Instance> | undefined; maxSteps?: number }) {
  const config = opts.mounts ? normalizeAppConfig(validateAppConfig({ deploy: { wait_timeout: '10s', ...opts.deploy }, mounts: [{ source: 'data', destination: '/data' }] }).raw!) : configOf(opts.deploy);
  let stopping: Instance[] = [];
  let most = 0;
  const release = releaseOf({ targetCount: opts.target, previousCount: opts.old });
  let old = Array.from({ length: opts.old }, (_, k) => inst(`o${k + 1}`));
  let fresh: Instance[] = [];
  let placed = 0;
  const healthyCounts: number[] = [];
  const steps: DeployStep[] = [];
  for (let n = 0; n < (opts.maxSteps ?? 50); n++) {
    const view = { release, config, fresh, old, ...(stopping.length > 0 ? { stopping } : {}), now: t0 + n * 1000 };
    most = Math.max(most, old.length + stopping.length + fresh.filter((i) => i.desiredState === 'running').length);
    const step = strategy.step(view);
    assert.deepEqual(strategy.step(structuredClone(view)), step, 'asking again gives the same step');
    healthyCounts.push([...old, ...fresh].filter((i) => i.observedState === 'running' && i.health === 'passing' && i.desiredState === 'running').length);
    if (step.kind !== 'wait') steps.push(step);
    if (step.kind === 'succeed' || step.kind === 'fail') return { steps, healthyCounts, fresh, old, most };
    // Instances told to stop take one tick to stop.
    stopping = [];
    if (step.kind === 'progress') {
      for (let k = 0; k < step.start; k++) fresh.push(inst(`n${++placed}`, { observedState: 'pending', health: 'unknown', createdAt: at(n * 1000) }));
      stopping = old.filter((i) => step.stop.includes(i.id));
      old = old.filter((i) => !step.stop.includes(i.id));
    }
    // The agents and checks move on: pending → running unknown → passing (or what tick says).
    fresh = fresh.map((i) => ({ ...i, ...(opts.tick?.(i, n) ?? (i.observedState === 'pending' ? { observedState: 'starting' } : i.observedState === 'starting' ? { observedState: 'running' } : { health: 'passing' })) }) as Instance);
  }
  throw new Error('the deploy did not end');
}

describe('rolling and canary strategies', () => {
  test('max_unavailable: a count, or a share of the target rounded down, at least 1', () => {
    assert.deepEqual([batchSize(1, 3), batchSize(2, 3), batchSize(0.5, 4), batchSize(0.25, 3), batchSize(0.34, 3), batchSize(5, 3)], [1, 2, 2, 1, 1, 5]);
  });

  test('rolling 3→3 one at a time: start one new, stop one old only once it is healthy; never fewer healthy than before', () => {
    const { steps, healthyCounts } = simulate(rollingStrategy, { old: 3, target: 3 });
    assert.deepEqual(steps, [
      { kind: 'progress', start: 1, stop: [], progress: '0/3 replaced' },
      { kind: 'progress', start: 1, stop: ['o1'], progress: '1/3 replaced' },
      { kind: 'progress', start: 1, stop: ['o2'], progress: '2/3 replaced' },
      { kind: 'succeed', stop: ['o3'], progress: '3/3 replaced' },
    ]);
    assert.ok(healthyCounts.every((h) => h >= 3), healthyCounts.join(','));
  });

  test('rolling with max_unavailable 2 surges two at a time; a fraction of 4 is 2', () => {
    const two = simulate(rollingStrategy, { old: 3, target: 3, deploy: { max_unavailable: 2 } });
    assert.deepEqual(two.steps.map((s) => [s.kind, 'start' in s ? s.start : 0, 'stop' in s ? s.stop : []]), [['progress', 2, []], ['progress', 1, ['o1', 'o2']], ['succeed', 0, ['o3']]]);
    const half = simulate(rollingStrategy, { old: 4, target: 4, deploy: { max_unavailable: 0.5 } });
    assert.deepEqual(half.steps.map((s) => [s.kind, 'start' in s ? s.start : 0, 'stop' in s ? s.stop.length : 0]), [['progress', 2, 0], ['progress', 2, 2], ['succeed', 0, 2]]);
    assert.ok(half.healthyCounts.every((h) => h >= 4));
  });

  test('rolling with nothing to replace (a first deploy) starts every instance at once', () => {
    const { steps } = simulate(rollingStrategy, { old: 0, target: 3 });
    assert.deepEqual(steps, [{ kind: 'progress', start: 3, stop: [], progress: '0/3 replaced' }, { kind: 'succeed', stop: [], progress: '3/3 replaced' }]);
  });

  test('rolling up from fewer old instances (min_instances raised) keeps every old one until the end', () => {
    const { steps } = simulate(rollingStrategy, { old: 1, target: 3 });
    assert.deepEqual(steps.map((s) => [s.kind, 'start' in s ? s.start : 0, 'stop' in s ? s.stop : []]), [['progress', 1, []], ['progress', 1, []], ['progress', 1, []], ['succeed', 0, ['o1']]]);
  });

  test('with [[mounts]] rolling stops first: an old one stops, and only once it has stopped a new one starts', () => {
    const { steps, most } = simulate(rollingStrategy, { old: 2, target: 2, mounts: true });
    assert.deepEqual(steps, [
      { kind: 'progress', start: 0, stop: ['o1'], progress: '0/2 replaced' },
      { kind: 'progress', start: 1, stop: [], progress: '0/2 replaced' },
      { kind: 'progress', start: 0, stop: ['o2'], progress: '1/2 replaced' },
      { kind: 'progress', start: 1, stop: [], progress: '1/2 replaced' },
      { kind: 'succeed', stop: [], progress: '2/2 replaced' },
    ]);
    assert.equal(most, 2, 'never more instances than the target at once');
    const imm = simulate(immediateStrategy, { old: 2, target: 2, mounts: true });
    assert.deepEqual(imm.steps.map((s) => [s.kind, 'start' in s ? s.start : 0, 'stop' in s ? s.stop : []]), [['progress', 0, ['o1', 'o2']], ['progress', 2, []], ['succeed', 0, []]]);
  });

  test('old instances that do not serve are stopped first', () => {
    const config = configOf();
    const step = rollingStrategy.step({ release: releaseOf({ targetCount: 2, previousCount: 2 }), config, fresh: [inst('n1')], old: [inst('o1'), inst('o2', { health: 'failing' })], now: t0 });
    assert.deepEqual(step, { kind: 'progress', start: 1, stop: ['o2'], progress: '1/2 replaced' });
  });

  test('canary: one new instance first; once healthy it stays and the rest roll', () => {
    const { steps, healthyCounts } = simulate(canaryStrategy, { old: 3, target: 3, deploy: { max_unavailable: 2 } });
    assert.deepEqual(steps, [
      { kind: 'progress', start: 1, stop: [], progress: 'canary: 0/3 replaced' },
      { kind: 'progress', start: 2, stop: ['o1'], progress: '1/3 replaced' },
      { kind: 'succeed', stop: ['o2', 'o3'], progress: '3/3 replaced' },
    ]);
    assert.ok(healthyCounts.every((h) => h >= 3));
  });

  test('bluegreen: the full new set, all healthy, then every old one stops in the one step', () => {
    const { steps, healthyCounts } = simulate(bluegreenStrategy, { old: 2, target: 2 });
    assert.deepEqual(steps, [{ kind: 'progress', start: 2, stop: [], progress: '0/2 healthy' }, { kind: 'succeed', stop: ['o1', 'o2'], progress: '2/2 healthy, switched' }]);
    assert.ok(healthyCounts.every((h) => h >= 2));
  });

  test('a version that never gets healthy fails at wait_timeout with the old untouched', () => {
    const { steps, old } = simulate(rollingStrategy, { old: 3, target: 3, tick: (i) => (i.observedState === 'pending' ? { observedState: 'running', health: 'failing' } : {}) });
    assert.deepEqual(steps.at(-1), { kind: 'fail', reason: 'not every instance was healthy within wait_timeout (10s): n1 running, health failing', stop: ['n1'], failed: 'n1' });
    assert.deepEqual(old.map((i) => i.id), ['o1', 'o2', 'o3']);
  });

  test('a crash-looping canary is refused once its agent gives up; no old instance was touched', () => {
    const tick = (i: Instance) => (i.restarts < 2 ? { observedState: 'restarting', restarts: i.restarts + 1, lastExitCode: 2, lastExitReason: 'exit code 2' } : { observedState: 'failed', lastExitReason: 'crash loop: exit code 2, 3 times in a row' }) as Partial<Instance>;
    const { steps, old } = simulate(canaryStrategy, { old: 2, target: 2, tick });
    assert.deepEqual(steps, [
      { kind: 'progress', start: 1, stop: [], progress: 'canary: 0/2 replaced' },
      { kind: 'fail', reason: 'instance n1 failed: crash loop: exit code 2, 3 times in a row', stop: ['n1'], failed: 'n1' },
    ]);
    assert.deepEqual(old.map((i) => i.id), ['o1', 'o2']);
  });

  test('a failure half-way stops the new instances and restores the old ones it had replaced', () => {
    const { steps } = simulate(rollingStrategy, { old: 3, target: 3, tick: (i) => (i.id === 'n2' ? { observedState: 'failed', lastExitReason: 'out of memory' } : i.observedState === 'pending' ? { observedState: 'running', health: 'passing' } : {}) });
    assert.deepEqual(steps.at(-1), { kind: 'fail', reason: 'instance n2 failed: out of memory', stop: ['n1', 'n2'], failed: 'n2', restore: { releaseId: 'rel_old', count: 1 } });
  });

  test('resume from any step: a view with instances already placed and old ones stopped gives the next step', () => {
    const config = configOf();
    const release = releaseOf();
    const cases: Array<[Instance[], Instance[], DeployStep]> = [
      // Restarted before the first step committed: nothing placed yet.
      [[], [inst('o1'), inst('o2'), inst('o3')], { kind: 'progress', start: 1, stop: [], progress: '0/3 replaced' }],
      // After the first step: n1 placed, still starting: wait for it.
      [[inst('n1', { observedState: 'starting', health: 'unknown' })], [inst('o1'), inst('o2'), inst('o3')], { kind: 'wait', progress: '0/3 replaced' }],
      // n1 turned healthy while the control plane was down.
      [[inst('n1')], [inst('o1'), inst('o2'), inst('o3')], { kind: 'progress', start: 1, stop: ['o1'], progress: '1/3 replaced' }],
      // After the second step committed (o1 stopped, n2 placed).
      [[inst('n1'), inst('n2', { observedState: 'pending', health: 'unknown' })], [inst('o2'), inst('o3')], { kind: 'wait', progress: '1/3 replaced' }],
      // Everything healthy but the last old one still up: the finish.
      [[inst('n1'), inst('n2'), inst('n3')], [inst('o3')], { kind: 'succeed', stop: ['o3'], progress: '3/3 replaced' }],
      // Secret rollouts place every instance up front (no targetCount): old ones go as new ones pass.
    ];
    for (const [fresh, old, want] of cases) assert.deepEqual(rollingStrategy.step({ release, config, fresh, old, now: t0 + 1000 }), want);
    const upFront = releaseOf({ targetCount: undefined, previousCount: undefined });
    assert.deepEqual(rollingStrategy.step({ release: upFront, config, fresh: [inst('n1'), inst('n2', { health: 'unknown' })], old: [inst('o1'), inst('o2')], now: t0 }), { kind: 'progress', start: 0, stop: ['o1'], progress: '1/2 replaced' });
  });
});
