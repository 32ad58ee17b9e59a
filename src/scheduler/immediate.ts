/**
 * The immediate strategy: start every new instance at once, wait until all of them are running and
 * passing their checks, then stop every old instance at once. It keeps promise 6 (a deploy never leaves
 * an app without a healthy instance when it had one): the old instances stop only after the new ones
 * are healthy, and a new release that never gets there (an instance fails or stops, or wait_timeout
 * passes) fails and its instances go, leaving the old release untouched. It does not limit how many
 * instances run at once during the switch: that is what rolling (issue "Deploys") is for.
 */
import { describeInstance, failureOf, type DeployStep, type DeployStrategy, type DeployView } from './strategy.ts';

export const immediateStrategy: DeployStrategy = {
  name: 'immediate',
  step(v: DeployView): DeployStep {
    const freshIds = v.fresh.map((i) => i.id);
    const broken = v.fresh.find((i) => i.observedState === 'failed' || (i.observedState === 'stopped' && i.desiredState === 'running'));
    if (broken) return { kind: 'fail', reason: failureOf(broken), stop: freshIds };
    const healthy = v.fresh.filter((i) => i.observedState === 'running' && i.health === 'passing');
    if (v.fresh.length > 0 && healthy.length === v.fresh.length) return { kind: 'succeed', stop: v.old.map((i) => i.id) };
    const waited = v.now - Date.parse(v.release.createdAt);
    if (waited > v.config.deploy.waitTimeoutMs) {
      const pending = v.fresh.filter((i) => !healthy.includes(i)).map(describeInstance).join('; ');
      return { kind: 'fail', reason: `not every instance was healthy within wait_timeout (${Math.round(v.config.deploy.waitTimeoutMs / 1000)}s): ${pending}`, stop: freshIds };
    }
    return { kind: 'wait', progress: `${healthy.length}/${v.fresh.length} healthy` };
  },
};
