/**
 * Domain types of running apps: hosts, releases and instances (issue "Runtime"; issue "Deploys" extends
 * the release state machine). The control plane writes desired state (releases, instances' desired
 * state), agents write observed state; both live in the Store so that either side can restart and pick
 * up where it left off.
 */
import type { Timestamp } from './types.ts';

export const HOST_STATUSES = ['ready', 'draining', 'down'] as const;
/** HostStatus: `ready` takes new instances, `draining` keeps what it runs but takes nothing new, `down` is gone. */
export type HostStatus = (typeof HOST_STATUSES)[number];

/** HostCapacity is what one host can give its instances (and the most one instance may ask for). */
export interface HostCapacity {
  memoryBytes: number;
  cpus: number;
}

/** Host is a machine running an agent. */
export interface Host {
  id: string;
  /** name is the host's name (`--hostname`), unique among hosts. */
  name: string;
  region: string;
  status: HostStatus;
  capacity: HostCapacity;
  lastHeartbeat: Timestamp;
  createdAt: Timestamp;
}

export const RELEASE_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'rolled_back'] as const;
/**
 * ReleaseStatus is where a release's deploy stands: `pending` (made, nothing started), `running` (its
 * strategy is replacing instances), `succeeded` (its instances serve), `failed` (it never became healthy;
 * the previous release kept serving), `rolled_back` (it was replaced by a rollback to an earlier one).
 */
export type ReleaseStatus = (typeof RELEASE_STATUSES)[number];

export const DEPLOY_STRATEGY_NAMES = ['rolling', 'canary', 'bluegreen', 'immediate'] as const;
export type DeployStrategyName = (typeof DEPLOY_STRATEGY_NAMES)[number];

/** Release is one deploy of an app: what runs (image, config, secrets) and how it got there. */
export interface Release {
  id: string;
  appId: string;
  /** version counts 1, 2, … per app. */
  version: number;
  /** imageRef is the reference the deploy named (`registry/app:1.2`, or `sha256:…` for an upload). */
  imageRef: string;
  /** imageDigest is the manifest digest resolved at deploy time: what every instance of the release runs. */
  imageDigest: string;
  /** config is the normalized ward.toml (src/config AppConfig) as it was deployed, as JSON text. */
  config: string;
  /** secretsVersion pins the app's secrets the release runs with; null when the app has none. */
  secretsVersion: number | null;
  strategy: DeployStrategyName;
  status: ReleaseStatus;
  /** reason says why a release failed or was rolled back. */
  reason: string | null;
  createdBy: string | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
  /**
   * targetCount is how many instances the deploy ends with; its strategy places them step by step.
   * Absent on releases that place every instance up front (secret rollouts, releases before migration 7).
   */
  targetCount?: number;
  /** previousCount is how many instances of earlier releases ran when the deploy began: a failed deploy restores that many. */
  previousCount?: number;
  /** progress says, for people, where the deploy stands ("2/3 replaced"); absent before the first step. */
  progress?: string;
  /** steps counts the deploy's recorded steps (ReleaseRepo.advance guards on it); absent means 0. */
  steps?: number;
}

export const DESIRED_STATES = ['running', 'stopped'] as const;
export type DesiredState = (typeof DESIRED_STATES)[number];

export const OBSERVED_STATES = ['pending', 'starting', 'running', 'restarting', 'failed', 'stopped'] as const;
/**
 * ObservedState is what the agent reports: `pending` (placed, the agent has not begun), `starting`
 * (image, network, start hooks running), `running`, `restarting` (it ended and waits out its backoff),
 * `failed` (it crash-looped, ran out of retries or could not start: the agent gave up), `stopped` (it
 * ended and stays so: stopped on purpose, or its restart policy says so).
 */
export type ObservedState = (typeof OBSERVED_STATES)[number];

export const HEALTH_STATES = ['unknown', 'passing', 'failing'] as const;
export type HealthState = (typeof HEALTH_STATES)[number];

/** Instance is one running copy of a release on a host. */
export interface Instance {
  id: string;
  appId: string;
  releaseId: string;
  hostId: string;
  region: string;
  desiredState: DesiredState;
  /** restartGeneration is bumped by `ward restart`; the agent restarts the instance once per new value. */
  restartGeneration: number;
  observedState: ObservedState;
  health: HealthState;
  privateIpv6: string | null;
  privateIpv4: string | null;
  pid: number | null;
  /** restarts counts restarts by the restart policy (crashes), not those asked for. */
  restarts: number;
  lastExitCode: number | null;
  /**
   * lastExitReason says, for people, how the last run ended ("exit code 3", "killed by SIGKILL (exit
   * code 137)"), why the instance failed ("crash loop: …") or why a start failed.
   */
  lastExitReason: string | null;
  lastExitAt: Timestamp | null;
  /** lastLog holds the last lines the instance wrote before it failed (for deploy errors); null otherwise. */
  lastLog: string[] | null;
  startedAt: Timestamp | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/**
 * InstanceReport is what an agent tells the control plane about an instance: only the observed fields.
 * Fields left out keep their stored value.
 */
export type InstanceReport = Partial<
  Pick<
    Instance,
    'observedState' | 'health' | 'privateIpv6' | 'privateIpv4' | 'pid' | 'restarts' | 'lastExitCode' | 'lastExitReason' | 'lastExitAt' | 'lastLog' | 'startedAt'
  >
>;

/**
 * newPlacement returns a freshly placed instance: desired running, nothing observed yet. Every place
 * that places instances (deploys, secret rollouts, tests) starts from it, so a new Instance field gets
 * its initial value in one place.
 */
export function newPlacement(p: { id: string; appId: string; releaseId: string; hostId: string; region: string; at: Timestamp }): Instance {
  return {
    id: p.id,
    appId: p.appId,
    releaseId: p.releaseId,
    hostId: p.hostId,
    region: p.region,
    desiredState: 'running',
    restartGeneration: 0,
    observedState: 'pending',
    health: 'unknown',
    privateIpv6: null,
    privateIpv4: null,
    pid: null,
    restarts: 0,
    lastExitCode: null,
    lastExitReason: null,
    lastExitAt: null,
    lastLog: null,
    startedAt: null,
    createdAt: p.at,
    updatedAt: p.at,
  };
}
