/**
 * A deploy strategy decides, step by step, how a new release replaces the old one. The Deployer
 * (deployer.ts) persists every decision (new instances placed, instances' desired state, the release's
 * progress and status) in one transaction before anything acts on it, so a control plane that restarts
 * resumes a deploy by asking the strategy again: strategies are pure functions of what the store holds,
 * and asking twice about the same state gives the same answer.
 *
 * The strategies (fly.toml's names): `rolling` and `canary` (rolling.ts), `bluegreen` and `immediate`
 * (all-at-once.ts). They share the failure rules below (checkFresh): a new instance that failed
 * (crash-looped), stopped, or was not healthy within wait_timeout of being placed fails the release; its new instances stop and the old ones it had stopped are placed again.
 */
import type { Instance, Release } from '../core/index.ts';
import type { AppConfig } from '../config/index.ts';

/** DeployView is one deploy as the store holds it now. */
export interface DeployView {
  release: Release;
  config: AppConfig;
  /** fresh are the instances of the release being deployed. */
  fresh: Instance[];
  /** old are the app's other instances that still want to run (earlier releases), oldest first. */
  old: Instance[];
  /**
   * stopping are the app's other instances told to stop that have not stopped yet: a deploy of an app
   * with `[[mounts]]` waits for them (a volume is mounted by one instance at a time). Absent: none.
   */
  stopping?: Instance[];
  /** now is the current time in milliseconds. */
  now: number;
}

/** Restore asks for `count` new instances of an earlier release: what a failed deploy had stopped. */
export interface Restore {
  releaseId: string;
  count: number;
}

/**
 * DeployStep is what to do next: wait; progress (place `start` new instances of the release, mark the
 * `stop` ones stopped, record `progress`); or finish: succeed, or fail (stop the new instances, place
 * `restore`, name the `failed` instance whose last log lines explain it).
 */
export type DeployStep =
  | { kind: 'wait'; progress: string }
  | { kind: 'progress'; start: number; stop: string[]; progress: string }
  | { kind: 'succeed'; stop: string[]; progress: string }
  | { kind: 'fail'; reason: string; stop: string[]; failed?: string; restore?: Restore };

export interface DeployStrategy {
  readonly name: string;
  step(view: DeployView): DeployStep;
}

/** describeInstance says where an instance stands, for reasons and progress. */
export function describeInstance(i: Instance): string {
  return `${i.id} ${i.observedState}${i.observedState === 'running' ? `, health ${i.health}` : ''}`;
}

/** failureOf explains a failed new instance: its last exit and, for deploy errors, nothing secret. */
export function failureOf(i: Instance): string {
  const why = i.lastExitReason ?? (i.lastExitCode === null ? 'it did not start' : `exit code ${i.lastExitCode}`);
  return `instance ${i.id} ${i.observedState === 'failed' ? 'failed' : 'stopped'}: ${why}`;
}

/** isHealthy: running and passing its checks (an app without checks passes once its port accepts connections). */
export const isHealthy = (i: Instance): boolean => i.observedState === 'running' && i.health === 'passing';

/** targetOf is how many instances the release ends with: its targetCount, or as many as were placed up front. */
export const targetOf = (v: DeployView): number => v.release.targetCount ?? v.fresh.length;

/**
 * checkFresh applies the failure rules every strategy shares and returns the fail step, or undefined
 * while the deploy may go on. A new instance fails the release when it failed (the agent's verdict on
 * a crash loop: a few short runs in a row, seconds with the default backoff, its last lines kept) or
 * stopped, or when it was not healthy within wait_timeout of being placed. The new instances stop;
 * the old instances the deploy had already stopped (rolling, canary) are placed again from the newest
 * old release.
 */
export function checkFresh(v: DeployView): DeployStep | undefined {
  if (targetOf(v) === 0) return failStep(v, 'the release has no instances to start', undefined);
  const live = v.fresh.filter((i) => i.desiredState === 'running');
  const broken = live.find((i) => i.observedState === 'failed' || i.observedState === 'stopped');
  if (broken) return failStep(v, failureOf(broken), broken.id);
  const limit = v.config.deploy.waitTimeoutMs;
  const late = live.filter((i) => !isHealthy(i) && v.now - Date.parse(i.createdAt || v.release.createdAt) > limit);
  if (late.length > 0) {
    return failStep(v, `not every instance was healthy within wait_timeout (${Math.round(limit / 1000)}s): ${late.map(describeInstance).join('; ')}`, late[0]!.id);
  }
  return undefined;
}

function failStep(v: DeployView, reason: string, failed: string | undefined): DeployStep {
  const step: DeployStep = { kind: 'fail', reason, stop: v.fresh.map((i) => i.id), ...(failed ? { failed } : {}) };
  const missing = (v.release.previousCount ?? 0) - v.old.length;
  const from = v.old.at(-1);
  if (missing > 0 && from) step.restore = { releaseId: from.releaseId, count: missing };
  return step;
}
