/**
 * The instance runner's hooks, in order. defaultHooks builds the list; an agent may be given another
 * list. Their deps come from the agent: issue "Secrets" passes its SecretsSource, issue "Volumes" its
 * VolumeManager and VolumeSource (without them a release that mounts volumes is refused).
 */
import type { HealthRegistry } from '../health/index.ts';
import type { LogJournal } from '../logs/index.ts';
import type { CaptureOptions } from '../logs/index.ts';
import type { OrgNetwork } from '../network/index.ts';
import type { Runtime } from '../runtime/index.ts';
import type { ImageProvider } from '../types.ts';
import { healthHook, type Drain, type HealthHookOptions } from './health.ts';
import { imageHook } from './image.ts';
import { networkHook } from './network.ts';
import { secretsHook, type SecretsSource } from './secrets.ts';
import { startHook } from './start.ts';
import type { InstanceHook } from './types.ts';
import { volumesHook, type VolumesHookDeps } from './volumes.ts';

export * from './types.ts';
export { healthHook, probeOrder, type Drain, type HealthHookOptions } from './health.ts';
export { imageHook, pinnedRef } from './image.ts';
export { networkHook } from './network.ts';
export { deliveredSecrets, DEFAULT_SECRET_FILES_ROOT, SECRET_FILES_DIR, secretsHook, secretsTmpfsArgv, type DeliveredSecretsOptions, type SecretsHookOptions, type SecretsSource } from './secrets.ts';
export { buildSpec, startHook, type StartHookDeps } from './start.ts';
export { volumesHook, type VolumesHookDeps } from './volumes.ts';

/** HookDeps is what the default hooks need from the agent. */
export interface HookDeps {
  images: ImageProvider;
  network: OrgNetwork;
  runtime: Runtime;
  journal: LogJournal;
  health: HealthRegistry;
  secrets?: SecretsSource;
  /** volumes opens `[[mounts]]` volumes; without it a release that mounts one is refused. */
  volumes?: VolumesHookDeps;
  capture?: CaptureOptions;
  healthOptions?: HealthHookOptions;
  /** drain is the edge's wait for requests in flight to a stopping instance (see Drain). */
  drain?: Drain;
  pids?: number;
}

/** defaultHooks is the runner's hook list: image → network → volumes → secrets → start → health. */
export function defaultHooks(d: HookDeps): InstanceHook[] {
  return [
    imageHook(d.images),
    networkHook(d.network),
    volumesHook(d.volumes),
    secretsHook(d.secrets),
    startHook({ runtime: d.runtime, journal: d.journal, ...(d.capture ? { capture: d.capture } : {}), ...(d.pids ? { pids: d.pids } : {}) }),
    healthHook(d.health, { ...d.healthOptions, ...(d.drain ? { drain: d.drain } : {}) }),
  ];
}
