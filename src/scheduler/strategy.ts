/**
 * A deploy strategy decides, step by step, how a new release replaces the old one. The Deployer
 * (deployer.ts) persists every decision (instances' desired state, the release's status) before it
 * acts, so a control plane that restarts resumes a deploy by asking the strategy again: strategies
 * are pure functions of what the store holds, and repeating a step is harmless.
 *
 * Issue "Deploys" adds rolling, canary and bluegreen as further DeployStrategy implementations; the
 * view below carries what they need (old and new instances with their health, the config's
 * max_unavailable and wait_timeout).
 */
import type { Instance, Release } from '../core/index.ts';
import type { AppConfig } from '../config/index.ts';

/** DeployView is one deploy as the store holds it now. */
export interface DeployView {
  release: Release;
  config: AppConfig;
  /** fresh are the instances of the release being deployed. */
  fresh: Instance[];
  /** old are the app's other instances that still want to run (earlier releases). */
  old: Instance[];
  /** now is the current time in milliseconds. */
  now: number;
}

/** DeployStep is what to do next: wait, or finish (succeed or fail) after setting desired states. */
export type DeployStep =
  | { kind: 'wait'; progress: string }
  | { kind: 'succeed'; stop: string[] }
  | { kind: 'fail'; reason: string; stop: string[] };

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
