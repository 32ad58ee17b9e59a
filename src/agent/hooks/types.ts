/**
 * The instance runner's lifecycle hooks (modelled on Nomad's task runner hooks). The supervisor runs an
 * ordered list of small hooks; each owns one concern (image, network, volumes, secrets, start, health)
 * and states what it guarantees. Order (DEFAULT_HOOK_ORDER): image → network → volumes → secrets →
 * start → health.
 *
 * Phases and guarantees, for every hook:
 * - prestart runs before each start of the instance's process (the first and every restart), in list
 *   order. It fills in the context for the hooks after it. It must be idempotent and cheap when what
 *   it makes exists already (a restart reuses the image and the network attachment). If it throws, the
 *   hooks whose prestart completed get `exited` (reverse order) and the start fails; a UserError
 *   fails the instance at once, any other error counts as a crash (backoff, crash-loop rules).
 * - recover runs instead of prestart when the agent, after its own restart, finds the instance's
 *   process still running: it rebuilds the context (reading, never changing, what exists). The
 *   process is not restarted: same pid.
 * - poststart runs after the process runs (or was recovered), in list order.
 * - prestop runs, in reverse order, before the agent stops a running process on purpose (a stop or a
 *   requested restart): health withdraws the instance from the edge first and waits for the edge's
 *   requests in flight to it (the agent's drain, at most kill_timeout), then start stops it with the
 *   kill signal and SIGKILL after kill_timeout.
 * - exited runs, in reverse order, after each run of the process has ended (by itself or stopped), before
 *   the restart policy decides. It releases what one run held (health checks, the container).
 * - poststop runs once, in reverse order, when the instance leaves the host for good (desired state
 *   stopped, or the instance was deleted). It releases everything prestart made. It must be idempotent
 *   and must work in a fresh agent that never ran prestart (after a crash, or for an orphan).
 * - detach runs when the agent shuts down and leaves the instance running: stop background work
 *   (timers, watchers) and touch nothing else.
 * A hook that has nothing to do in a phase leaves it out.
 */
import type { HealthState, InstanceReport } from '../../core/index.ts';
import type { AppConfig } from '../../config/index.ts';
import type { Attachment } from '../network/index.ts';
import type { ExitStatus, Image, InstanceHandle, InstanceInfo, MountSpec } from '../runtime/index.ts';
import type { Assignment } from '../types.ts';

/** HostInfo names the host the agent runs on. */
export interface HostInfo {
  id: string;
  name: string;
  region: string;
}

/**
 * HookContext is one instance's state shared by its hooks. It lives as long as the instance's
 * supervisor (across restarts); each hook writes only its own fields.
 */
export interface HookContext {
  readonly instanceId: string;
  /** assignment is the latest the control plane sent: instance, release, app. */
  readonly assignment: Assignment;
  readonly config: AppConfig;
  readonly host: HostInfo;
  /** note writes a line from the agent into the instance's journal (stream `ward`). Never pass env values. */
  note(message: string): void;
  /** report sends observed fields to the control plane (the health hook reports health). */
  report(r: InstanceReport): void;
  /** image: set by the image hook. */
  image?: Image;
  /** attachment: set by the network hook. */
  attachment?: Attachment;
  /** mounts: set by the volumes hook. */
  mounts: MountSpec[];
  /**
   * secretEnv: set by the secrets hook right before each start and cleared after each run. It holds
   * plaintext secret values: it goes into the runtime's spec (on tmpfs) and nowhere else, never into a
   * log, a report, an error message or a file on disk.
   */
  secretEnv: Record<string, string>;
  /** handle: set by the start hook while the process runs. */
  handle?: InstanceHandle;
  /** health: kept by the health hook. */
  health: HealthState;
}

export interface InstanceHook {
  readonly name: string;
  prestart?(ctx: HookContext): Promise<void>;
  recover?(ctx: HookContext, info: InstanceInfo): Promise<void>;
  poststart?(ctx: HookContext): Promise<void>;
  prestop?(ctx: HookContext): Promise<void>;
  exited?(ctx: HookContext, exit: ExitStatus | undefined): Promise<void>;
  poststop?(ctx: HookContext): Promise<void>;
  detach?(ctx: HookContext): Promise<void>;
}

/** DEFAULT_HOOK_ORDER is the order the runner's hooks run in (prestart, poststart); stops run it backwards. */
export const DEFAULT_HOOK_ORDER = ['image', 'network', 'volumes', 'secrets', 'start', 'health'] as const;
