import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { DEFAULT_LIMITS } from './limits.ts';
import { RouteTable, StaticUpstreamSource, type Upstream } from './routes.ts';
import { BUSY, UpstreamPools } from './upstream-pools.ts';

const pools = new UpstreamPools(DEFAULT_LIMITS);
after(() => pools.destroy());
const ups: Upstream[] = [
  { id: 'a', host: '127.0.0.1', port: 1 },
  { id: 'b', host: '127.0.0.1', port: 2 },
  { id: 'c', host: '127.0.0.1', port: 3 },
];
const none = { softLimit: undefined, hardLimit: undefined };

test('least outstanding requests wins', () => {
  pools.state(ups[0]!).outstanding = 5;
  pools.state(ups[1]!).outstanding = 1;
  pools.state(ups[2]!).outstanding = 3;
  for (let i = 0; i < 5; i++) assert.equal(pools.pick(ups, none), pools.state(ups[1]!));
});

test('ties rotate across instances', () => {
  for (const u of ups) pools.state(u).outstanding = 0;
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const p = pools.pick(ups, none);
    assert.ok(p && p !== BUSY);
    seen.add(p.key);
  }
  assert.equal(seen.size, 3);
});

test('soft limit prefers instances under it; hard limit is never crossed', () => {
  pools.state(ups[0]!).outstanding = 2; // under soft
  pools.state(ups[1]!).outstanding = 0; // under soft and least loaded
  pools.state(ups[2]!).outstanding = 4; // at hard
  assert.equal(pools.pick(ups, { softLimit: 3, hardLimit: 4 }), pools.state(ups[1]!));
  pools.state(ups[1]!).outstanding = 3; // at soft now: a (2) is the only one under soft
  assert.equal(pools.pick(ups, { softLimit: 3, hardLimit: 4 }), pools.state(ups[0]!));
  for (const u of ups) pools.state(u).outstanding = 4;
  assert.equal(pools.pick(ups, { softLimit: 3, hardLimit: 4 }), BUSY);
  for (const u of ups) pools.state(u).outstanding = 0;
});

test('a failed instance is excluded from the retry; no instances means undefined', () => {
  const failed = pools.state(ups[0]!);
  const only = [ups[0]!];
  assert.equal(pools.pick(only, none, failed), undefined);
  assert.notEqual(pools.pick(ups, none, failed), failed);
  assert.equal(pools.pick([], none), undefined);
});

test('two Upstream objects with one address share a pool; reap drains pools no route lists', async () => {
  const local = new UpstreamPools(DEFAULT_LIMITS);
  const a1 = { id: 'x', host: '127.0.0.1', port: 9 };
  const a2 = { id: 'x', host: '127.0.0.1', port: 9 };
  assert.equal(local.state(a1), local.state(a2));
  const source = new StaticUpstreamSource([a1, { id: 'y', host: '127.0.0.1', port: 10 }]);
  local.state({ id: 'y', host: '127.0.0.1', port: 10 });
  const routes = new RouteTable([{ app: 'a', hostnames: ['a.test'], forceHttps: false, hsts: undefined, concurrency: none, upstreams: source }]);
  local.reap(routes);
  assert.equal(local.size, 2);
  source.set([a1]);
  local.state({ id: 'y', host: '127.0.0.1', port: 10 }).outstanding = 1;
  local.reap(routes);
  assert.equal(local.size, 2, 'an instance with a request in flight is kept until it finishes');
  local.state({ id: 'y', host: '127.0.0.1', port: 10 }).outstanding = 0;
  local.reap(routes);
  assert.equal(local.size, 1);
  await local.close();
});

test('drain waits for an instance\'s requests in flight (by its id), then closes its pool', async () => {
  const local = new UpstreamPools(DEFAULT_LIMITS);
  const u = { id: 'ins_x', host: '127.0.0.1', port: 11 };
  const s = local.state(u);
  s.outstanding = 1;
  assert.equal(local.inFlight('ins_x'), 1);
  assert.equal(local.inFlight('ins_other'), 0);
  const drained = local.drain('ins_x', 5_000);
  setTimeout(() => (s.outstanding = 0), 50);
  assert.deepEqual(await drained, { inFlight: 0 });
  assert.equal(local.size, 0, 'the pool is closed: its keep-alive connections are not reused');
  assert.notEqual(local.state(u), s, 'a late request to the address gets a new pool');
  local.state(u).outstanding = 1;
  assert.deepEqual(await local.drain('ins_x', 30), { inFlight: 1 }, 'the budget runs out with a request in flight');
  assert.deepEqual(await local.drain('ins_unknown', 1_000), { inFlight: 0 });
  await local.destroy();
});
