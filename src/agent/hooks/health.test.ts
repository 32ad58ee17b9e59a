import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HealthRegistry } from '../health/index.ts';
import { appConfig, LoopbackNetwork, testContext, waitFor } from '../testing.ts';
import { healthHook, probeOrder } from './health.ts';

describe('health hook', () => {
  test('probes IPv4 first', () => {
    assert.deepEqual(probeOrder(['fd00::1', '10.0.0.1']), ['10.0.0.1', 'fd00::1']);
  });

  test('poststart publishes health to the registry and the control plane; prestop withdraws before the stop', async () => {
    const registry = new HealthRegistry();
    let ok = true;
    const hook = healthHook(registry, { probe: async (_c, addrs) => ({ ok, address: addrs[0], detail: ok ? 'fine' : 'refused' }) });
    const ctx = testContext({ config: appConfig({ http_service: { internal_port: 8080, checks: [{ path: '/healthz', interval: '1s', grace_period: '1s' }] } }) });
    ctx.attachment = await new LoopbackNetwork().attach({ instanceId: ctx.instanceId, orgId: 'org_1' });
    await hook.poststart!(ctx);
    await waitFor('passing', () => ctx.health === 'passing');
    assert.deepEqual(registry.upstreams('app_1').map((u) => [u.instanceId, u.address, u.port]), [[ctx.instanceId, '127.0.0.1', 8080]]);
    assert.deepEqual(ctx.reports.map((r) => r.health), ['unknown', 'passing']);
    assert.ok(ctx.notes.some((n) => n.startsWith('health passing: GET /healthz on :8080')));
    await hook.prestop!(ctx);
    assert.deepEqual(registry.upstreams('app_1'), []);
    assert.equal(ctx.health, 'unknown');
    assert.deepEqual(ctx.reports.at(-1), { health: 'unknown' });
    ok = false;
    await hook.exited!(ctx, undefined);
    await hook.poststop!(ctx);
  });

  test('prestop drains after withdrawing: the drain sees no upstream left and gets kill_timeout', async () => {
    const registry = new HealthRegistry();
    const calls: Array<{ id: string; timeoutMs: number; upstreams: number }> = [];
    const hook = healthHook(registry, {
      probe: async () => ({ ok: true, address: '127.0.0.1', detail: 'fine' }),
      drain: async (id, timeoutMs) => {
        calls.push({ id, timeoutMs, upstreams: registry.upstreams('app_1').length });
        return { inFlight: 0, waitedMs: 12 };
      },
    });
    const ctx = testContext({ config: appConfig({ kill_timeout: '7s', http_service: { internal_port: 8080 } }) });
    await hook.poststart!(ctx);
    await waitFor('passing', () => ctx.health === 'passing');
    await hook.prestop!(ctx);
    assert.deepEqual(calls, [{ id: ctx.instanceId, timeoutMs: 7000, upstreams: 0 }]);
    assert.ok(ctx.notes.includes('drained from the edge in 12 ms'));
    await hook.exited!(ctx, undefined);
    assert.equal(calls.length, 1, 'an instance that ended by itself is not drained: nothing of it is left to wait for');
    await hook.poststop!(ctx);
  });

  test('detach stops checking but reports nothing (the agent is going away)', async () => {
    const registry = new HealthRegistry();
    const hook = healthHook(registry, { probe: async () => ({ ok: true, address: '127.0.0.1', detail: 'fine' }) });
    const ctx = testContext({ config: appConfig({ http_service: { internal_port: 8080 } }) });
    await hook.poststart!(ctx);
    await waitFor('passing', () => ctx.health === 'passing');
    const reports = ctx.reports.length;
    await hook.detach!(ctx);
    assert.equal(ctx.reports.length, reports);
    assert.deepEqual(registry.upstreams('app_1'), []);
  });
});
