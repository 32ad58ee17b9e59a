/**
 * The Runtime contract: how the agent runs one instance of an app. The agent's runner and supervisor
 * speak only this; `CrunRuntime` (hardened OCI containers) implements it in production and
 * `ProcessRuntime` (plain host processes, no isolation) implements it for tests about scheduling and
 * supervision, never for tests about isolation.
 */

/** IdMapping maps `size` container ids starting at `containerId` to host ids starting at `hostId`. */
export interface IdMapping {
  containerId: number;
  hostId: number;
  size: number;
}

/**
 * DEFAULT_ID_MAPPING is the user namespace every instance gets: container uid/gid 0–65535 are host
 * 100000–165535, so root inside an instance is an unprivileged nobody on the host. Image layers are
 * unpacked with this ownership (host 100000 + container uid).
 */
export const DEFAULT_ID_MAPPING: IdMapping = { containerId: 0, hostId: 100_000, size: 65_536 };

/** DEFAULT_PIDS_LIMIT caps the tasks (processes and threads) one instance may have: a fork bomb stops here. */
export const DEFAULT_PIDS_LIMIT = 512;

/** DEFAULT_NOFILE is the open-file limit (RLIMIT_NOFILE, soft and hard) of instance processes. */
export const DEFAULT_NOFILE = 65_536;

/** ProcessSpec is what runs inside the instance: an image's Entrypoint+Cmd, Env, WorkingDir and User, resolved. */
export interface ProcessSpec {
  /** args is the command line; args[0] is looked up in PATH inside the rootfs when it has no slash. */
  args: string[];
  /** env holds the process's environment, secrets included: it is only ever written to tmpfs. */
  env: Record<string, string>;
  /** cwd is an absolute path inside the rootfs. */
  cwd: string;
  /** user is numeric, as seen inside the instance (0 is the instance's root, not the host's). */
  user: { uid: number; gid: number; additionalGids?: number[] };
}

/** ResourceLimits bound one instance (from `[resources]`; pids from the platform default). */
export interface ResourceLimits {
  memoryBytes: number;
  /** cpus may be fractional: 0.5 is half a core of CPU time per period. */
  cpus: number;
  pids: number;
  /** nofile is RLIMIT_NOFILE; DEFAULT_NOFILE when absent. */
  nofile?: number;
}

/**
 * NetworkAttachment is what the network layer (src/agent/network) made for the instance before it
 * starts: a network namespace of its own, already holding its interface and addresses.
 */
export interface NetworkAttachment {
  /** netnsPath names the namespace, e.g. `/run/netns/ward-ins_…`; the instance joins it. */
  netnsPath: string;
  /** addresses are the instance's own, without prefix length (`fd…::1a2b`, `10.89.3.4`). */
  addresses: string[];
}

/** MountSpec is a host directory or file bind-mounted into the instance (volumes, later). */
export interface MountSpec {
  source: string;
  destination: string;
  readOnly: boolean;
}

/**
 * OutputTarget is where the instance's stdout or stderr goes: a file the agent owns (opened for
 * appending; the same path for both interleaves them) or an open descriptor the agent owns. Never a
 * pipe whose reader can stop reading: a full pipe blocks the app.
 */
export type OutputTarget = { file: string } | { fd: number };

/** HostEntry is one line of the instance's /etc/hosts. */
export interface HostEntry {
  address: string;
  names: string[];
}

/** InstanceSpec is everything a runtime needs to start one instance. */
export interface InstanceSpec {
  /** id is the instance id (`ins_…`); it names the container, its cgroup and its state. */
  id: string;
  /** rootfs is the image's unpacked, read-only tree; the runtime never writes into it. */
  rootfs: string;
  process: ProcessSpec;
  resources: ResourceLimits;
  /** network is absent for an instance with loopback only. */
  network?: NetworkAttachment;
  mounts: MountSpec[];
  stdout: OutputTarget;
  stderr: OutputTarget;
  /** hostname defaults to the instance id. */
  hostname?: string;
  /** dns fills /etc/resolv.conf; empty when absent. */
  dns?: { nameservers: string[]; search: string[]; options?: string[] };
  /** hosts are added to /etc/hosts after localhost and the instance's own name. */
  hosts?: HostEntry[];
  /** labels are opaque to the runtime and returned by inspect and recover (app, release, org ids). */
  labels?: Record<string, string>;
}

/** InstanceHandle is what start returns: the instance is running when the promise resolves. */
export interface InstanceHandle {
  id: string;
  /** pid is the host pid of the instance's first process (for CrunRuntime: its init). */
  pid: number;
  startedAt: Date;
}

/**
 * ExitReason says why an instance ended: `exited` by itself, `signal` killed by a signal it did not
 * handle, `oom` killed by the kernel at its memory limit, `stopped` ended by stop(), `unknown` when the
 * runtime lost track (its monitor was killed, the host rebooted).
 */
export type ExitReason = 'exited' | 'signal' | 'oom' | 'stopped' | 'unknown';

/** ExitStatus describes an ended instance. */
export interface ExitStatus {
  /** code is the exit status as a shell shows it: 0–255, 128+N after signal N; -1 when unknown. */
  code: number;
  /** signal is set when code is 128+N for a known signal N. */
  signal: NodeJS.Signals | undefined;
  reason: ExitReason;
  exitedAt: Date;
}

export type InstanceState = 'running' | 'exited';

/** InstanceInfo is what inspect and recover report. */
export interface InstanceInfo {
  id: string;
  state: InstanceState;
  pid: number | undefined;
  startedAt: Date;
  /** exit is set once the instance has ended. */
  exit: ExitStatus | undefined;
  labels: Record<string, string>;
  /** addresses are the network attachment's, for the supervisor's health checks. */
  addresses: string[];
}

/** InstanceStats is a point-in-time reading of an instance's resource use. */
export interface InstanceStats {
  memoryBytes: number;
  memoryLimitBytes: number | undefined;
  /** cpuNanos is CPU time used since start, all processes, user and system. */
  cpuNanos: number;
  pids: number;
  pidsLimit: number | undefined;
  /** oomKills counts processes the kernel's OOM killer ended inside the instance. */
  oomKills: number;
}

export interface StopOptions {
  /** signal is sent first (the image's StopSignal or `kill_signal`); default SIGTERM. */
  signal?: NodeJS.Signals;
  /** timeoutMs is how long to wait after the signal before SIGKILL (`kill_timeout`); default 5000. */
  timeoutMs?: number;
}

export interface ExecOptions {
  /** timeoutMs kills the exec'd process after this long; default 30 s. */
  timeoutMs?: number;
  /** env is added to the instance's environment for this process. */
  env?: Record<string, string>;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runtime runs instances on this host.
 *
 * Guarantees and duties, for every implementation:
 * - Calls for different instances may run concurrently. For one instance, the caller (its supervisor)
 *   lets start finish before anything else; stop, destroy, wait and inspect may then be called at any
 *   time and race with the instance's own exit safely.
 * - Instances outlive the runtime object and the agent process: dropping the object or restarting the
 *   agent never stops them. recover() finds them again from state on this host.
 * - Nothing holding env values (secrets) is written to a disk; an implementation that needs files for
 *   them keeps them on tmpfs.
 * - start either leaves a running instance or nothing at all (no half-made instance on failure).
 */
export interface Runtime {
  /**
   * start creates and starts the instance and resolves once its process runs. It rejects with a
   * UserError for a spec the host cannot honour (bad id, limits beyond the host) and with an Error for
   * a runtime failure (whose message includes the runtime's own). The id must not be in use.
   */
  start(spec: InstanceSpec): Promise<InstanceHandle>;

  /**
   * wait resolves with the exit status once the instance has ended (at once if it has). Any number of
   * callers may wait. It rejects for an id the runtime does not know.
   */
  wait(id: string): Promise<ExitStatus>;

  /**
   * stop sends options.signal to the instance, waits up to options.timeoutMs for it to end, then sends
   * SIGKILL, and resolves with the exit status (reason `stopped` unless it had ended by itself before).
   * It is idempotent: stopping an ended instance returns its status.
   */
  stop(id: string, options?: StopOptions): Promise<ExitStatus>;

  /**
   * destroy removes the instance and everything the runtime made for it, killing it first if it still
   * runs. Output files and the network attachment belong to the caller and are left alone. Destroying
   * an unknown id does nothing.
   */
  destroy(id: string): Promise<void>;

  /** inspect reports an instance's state, or undefined for an id the runtime does not know. */
  inspect(id: string): Promise<InstanceInfo | undefined>;

  /**
   * recover lists every instance this runtime's state on this host knows about, running or ended but
   * not destroyed, and re-attaches to the running ones so that wait, stop, stats and exec work on them.
   * It never starts, restarts or stops anything. Call it once when the agent starts.
   */
  recover(): Promise<InstanceInfo[]>;

  /** stats reads a running instance's resource use; it rejects when the instance is not running. */
  stats(id: string): Promise<InstanceStats>;

  /**
   * exec runs argv inside a running instance, with the instance's user, confinement and environment,
   * and resolves with its exit code and output (a non-zero code is a result, not an error).
   */
  exec(id: string, argv: string[], options?: ExecOptions): Promise<ExecResult>;
}
