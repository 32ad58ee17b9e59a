/**
 * The all-at-once strategies: every new instance starts at once, and once all of them are running and
 * passing their checks every old instance stops at once. They keep promise 6: the old instances stop
 * only after the new ones are healthy, and a new release that never gets there fails and its instances
 * go, leaving the old release untouched.
 *
 * `immediate` and `bluegreen` step alike; they differ at the edge: with `immediate` a new instance
 * takes traffic as soon as it is healthy (old and new serve side by side for a moment), with
 * `bluegreen` the edge holds the new set back while its release is `running` and other healthy
 * instances exist, so the switch from the old set to the new is the commit of the succeed step.
 */
import { stopFirst } from './rolling.ts';
import { checkFresh, isHealthy, targetOf, type DeployStep, type DeployStrategy, type DeployView } from './strategy.ts';

function allAtOnce(name: string, noun: string): DeployStrategy {
  return {
    name,
    step(v: DeployView): DeployStep {
      const failed = checkFresh(v);
      if (failed) return failed;
      const target = targetOf(v);
      const healthy = v.fresh.filter(isHealthy).length;
      const progress = `${healthy}/${target} ${noun}`;
      // With [[mounts]] (immediate only: the config refuses bluegreen with volumes) the old stop first.
      if (v.config.mounts.length > 0 && v.fresh.length < target) return stopFirst(v, target, target, progress);
      if (v.fresh.length < target) return { kind: 'progress', start: target - v.fresh.length, stop: [], progress };
      if (target > 0 && healthy >= target) return { kind: 'succeed', stop: v.old.map((i) => i.id), progress: name === 'bluegreen' ? `${target}/${target} healthy, switched` : progress };
      return { kind: 'wait', progress };
    },
  };
}

export const immediateStrategy: DeployStrategy = allAtOnce('immediate', 'healthy');
export const bluegreenStrategy: DeployStrategy = allAtOnce('bluegreen', 'healthy');
