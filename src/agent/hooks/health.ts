/**
 * The health hook: checks the running instance and publishes its health.
 *
 * poststart: starts a HealthChecker with the release's checks (checks.ts) on the instance's private
 * addresses, IPv4 first; every change goes to the registry (the edge's view, in memory) and to the
 * control plane (the `health` of the instance).
 * prestop: withdraws the instance first (registry entry gone, health `unknown`) so the edge stops
 * sending it requests, stops checking, then drains: waits (at most kill_timeout) until the edge on this
 * node has no request in flight to it. Only then does the start hook signal the process.
 * exited / poststop / detach: stop checking and withdraw (detach withdraws from the registry only:
 * the agent is going away, the stored health stays as it was).
 */
import type { HealthRegistry } from '../health/index.ts';
import { checksFor, HealthChecker } from '../health/index.ts';
import type { HookContext, InstanceHook } from './types.ts';

export interface HealthHookOptions {
  /** probe replaces the real probe (tests of the supervisor that have no listening app). */
  probe?: ConstructorParameters<typeof HealthChecker>[0]['probe'];
  /** drain waits for the edge's requests in flight to a withdrawn instance; none: no edge, no wait. */
  drain?: Drain;
}

/**
 * Drain waits until the edge on this node has no request in flight to the instance (which has just
 * been withdrawn from the registry), at most timeoutMs, and resolves with what was still in flight.
 * The edge role provides it in-process; without an edge on the node nothing is waited for.
 */
export type Drain = (instanceId: string, timeoutMs: number) => Promise<{ inFlight: number; waitedMs: number } | undefined>;

/** probeOrder lists addresses IPv4 first: an app bound to 0.0.0.0 or :: accepts IPv4. */
export function probeOrder(addresses: readonly string[]): string[] {
  return [...addresses.filter((a) => !a.includes(':')), ...addresses.filter((a) => a.includes(':'))];
}

export function healthHook(registry: HealthRegistry, options: HealthHookOptions = {}): InstanceHook {
  const checkers = new Map<string, HealthChecker>();
  const withdraw = (ctx: HookContext, report: boolean) => {
    checkers.get(ctx.instanceId)?.stop();
    checkers.delete(ctx.instanceId);
    registry.remove(ctx.instanceId);
    if (report && ctx.health !== 'unknown') {
      ctx.health = 'unknown';
      ctx.report({ health: 'unknown' });
    }
  };
  return {
    name: 'health',
    async poststart(ctx) {
      withdraw(ctx, false);
      const addresses = probeOrder(ctx.attachment?.addresses ?? []);
      const port = ctx.config.httpService?.internalPort;
      const base = { appId: ctx.assignment.app.id, instanceId: ctx.instanceId, releaseId: ctx.assignment.release.id, addresses, port };
      const checker = new HealthChecker({
        checks: checksFor(ctx.config),
        addresses,
        ...(options.probe ? { probe: options.probe } : {}),
        onChange: (r) => {
          if (checkers.get(ctx.instanceId) !== checker) return;
          ctx.health = r.health;
          registry.set({ ...base, address: r.address, health: r.health });
          ctx.report({ health: r.health });
          if (r.health !== 'unknown') ctx.note(`health ${r.health}: ${r.detail}`);
        },
      });
      checkers.set(ctx.instanceId, checker);
      checker.start();
    },
    async prestop(ctx) {
      withdraw(ctx, true);
      if (!options.drain) return;
      try {
        const r = await options.drain(ctx.instanceId, ctx.config.killTimeoutMs);
        if (r && r.inFlight > 0) ctx.note(`drain: ${r.inFlight} request(s) still in flight after kill_timeout (${ctx.config.killTimeoutMs} ms); stopping anyway`);
        else if (r && r.waitedMs > 0) ctx.note(`drained from the edge in ${r.waitedMs} ms`);
      } catch (e) {
        // A drain that fails (the edge is stopping) must not keep the instance from stopping.
        ctx.note(`drain failed: ${(e as Error).message}; stopping anyway`);
      }
    },
    async exited(ctx) {
      withdraw(ctx, true);
    },
    async poststop(ctx) {
      withdraw(ctx, true);
    },
    async detach(ctx) {
      withdraw(ctx, false);
    },
  };
}
