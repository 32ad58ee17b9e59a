/**
 * The rolling and canary strategies. Ward's rolling is surge-first: it starts up to `max_unavailable`
 * NEW instances, and only when they are running and passing their checks marks as many OLD ones
 * stopped; then again, until every instance runs the new release. The app's healthy capacity never
 * drops below what was running, and the edge drains each old instance as it goes (it stops routing to
 * it, lets in-flight requests finish up to kill_timeout, then the agent stops it).
 *
 * `canary` is rolling whose first step is a single new instance: the canary. Once it is healthy it stays
 * (it replaces one old instance, it is not thrown away) and the rest roll `max_unavailable` at a time.
 */
import { checkFresh, isHealthy, targetOf, type DeployStep, type DeployStrategy, type DeployView } from './strategy.ts';
import type { Instance } from '../core/index.ts';

/**
 * batchSize reads max_unavailable for a deploy of `target` instances: a count (1, 2, …), or a share of
 * them (0.25: a quarter, rounded down), at least 1.
 */
export function batchSize(maxUnavailable: number, target: number): number {
  const n = maxUnavailable < 1 ? Math.floor(maxUnavailable * target) : Math.floor(maxUnavailable);
  return Math.max(1, n);
}

/** stopOrder orders old instances for stopping: those that do not serve first, then the oldest. */
function stopOrder(old: readonly Instance[]): Instance[] {
  return [...old.filter((i) => !isHealthy(i)), ...old.filter(isHealthy)];
}

function rollingLike(name: string, canary: boolean): DeployStrategy {
  return {
    name,
    step(v: DeployView): DeployStep {
      const failed = checkFresh(v);
      if (failed) return failed;
      const target = targetOf(v);
      const healthy = v.fresh.filter(isHealthy).length;
      const pending = v.fresh.length - healthy;
      const progress = canary && healthy === 0 ? `canary: 0/${target} replaced` : `${Math.min(healthy, target)}/${target} replaced`;
      if (target > 0 && v.fresh.length >= target && healthy >= target) return { kind: 'succeed', stop: v.old.map((i) => i.id), progress };
      if (v.config.mounts.length > 0) return stopFirst(v, target, batchSize(v.config.deploy.maxUnavailable, target), progress);
      // As many old instances keep running as new ones are still missing: each healthy new one replaces one.
      const extra = v.old.length - Math.max(0, target - healthy);
      const stop = extra > 0 ? stopOrder(v.old).slice(0, extra).map((i) => i.id) : [];
      // Nothing to replace (an app's first deploy): rolling starts everything at once; a canary still goes first.
      const inFlight = canary && healthy === 0 ? 1 : v.old.length === 0 && !canary ? target : batchSize(v.config.deploy.maxUnavailable, target);
      const start = Math.max(0, Math.min(target - v.fresh.length, inFlight - pending));
      if (start > 0 || stop.length > 0) return { kind: 'progress', start, stop, progress };
      return { kind: 'wait', progress };
    },
  };
}

/**
 * stopFirst is rolling for an app with `[[mounts]]`: a volume is mounted by one instance at a time, so
 * a new instance can only start once the old one it replaces has stopped. Each round stops up to
 * `batch` old instances, waits until they have stopped, then starts as many new ones and waits until
 * they are healthy; the app runs at most `target` instances at once, and capacity dips by `batch` while
 * a round runs (what a volume costs; docs/deploys.md).
 */
export function stopFirst(v: DeployView, target: number, batch: number, progress: string): DeployStep {
  const pending = v.fresh.filter((i) => !isHealthy(i)).length;
  if (pending > 0 || v.fresh.length >= target) return { kind: 'wait', progress };
  const need = Math.min(batch, target - v.fresh.length);
  const over = v.old.length + v.fresh.length + need - target;
  if (over > 0) return { kind: 'progress', start: 0, stop: stopOrder(v.old).slice(0, over).map((i) => i.id), progress };
  if ((v.stopping ?? []).length > 0) return { kind: 'wait', progress };
  return { kind: 'progress', start: need, stop: [], progress };
}

export const rollingStrategy: DeployStrategy = rollingLike('rolling', false);
export const canaryStrategy: DeployStrategy = rollingLike('canary', true);
