/**
 * The OCI runtime configuration (`config.json`) of an instance, as a pure function of its spec and
 * where the runtime put its files. Everything that confines an instance is decided here, in one place
 * that tests compare by equality; see docs/runtime.md for the reasons behind each choice.
 */
import type { IdMapping, InstanceSpec } from '../types.ts';
import { DEFAULT_NOFILE } from '../types.ts';
import { seccompProfile, type LinuxSeccomp, type SeccompArch } from './seccomp.ts';

/** OCI_VERSION is the runtime-spec version the config claims; crun 1.8 implements 1.0+. */
export const OCI_VERSION = '1.0.2';

/** DEFAULT_PATH is the PATH an instance gets when its image sets none (Docker's choice). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** INIT_PATH is where the init (tini) is bind-mounted inside the instance, as Docker's `--init` does. */
export const INIT_PATH = '/dev/init';

/**
 * ROOT_CAPABILITIES are what a process running as the instance's root keeps: Docker's default set minus
 * NET_RAW (raw sockets: spoofing, ARP/ND games), MKNOD, AUDIT_WRITE, SETFCAP and SYS_CHROOT. They act
 * only inside the instance's user namespace; its network namespace belongs to the host's, so even these
 * cannot touch interfaces, addresses or routes.
 */
export const ROOT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE',
  'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID',
];

/**
 * MASKED_PATHS are hidden from the instance (bind-mounted over with /dev/null or an empty read-only
 * directory): they leak host kernel state or hardware details.
 */
export const MASKED_PATHS: readonly string[] = [
  '/proc/acpi', '/proc/asound', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/sched_debug', '/proc/scsi', '/proc/timer_list', '/proc/timer_stats', '/sys/devices/virtual/powercap',
  '/sys/firmware',
];

/** READONLY_PATHS are visible but read-only: writing to them would reconfigure the host's kernel. */
export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * CPU_PERIOD_US is the CFS period; an instance gets `cpus × period` of CPU time per period, so 0.5 cpus
 * is 50 ms of every 100 ms.
 */
export const CPU_PERIOD_US = 100_000;

/** SMALL_TMPFS_BYTES sizes /dev, /dev/shm and /run, which hold little. */
export const SMALL_TMPFS_BYTES = 64 * 1024 * 1024;

/**
 * OOM_SCORE_ADJ makes instance processes the kernel's first choice when the whole host runs out of
 * memory, ahead of the agent and the control plane (their own memory limits act first, per instance).
 */
export const OOM_SCORE_ADJ = 500;

/** BundlePaths says where the runtime put an instance's files on the host. */
export interface BundlePaths {
  /** rootfs is the instance's root mount (an overlay whose lower layer is spec.rootfs). */
  rootfs: string;
  resolvConf: string;
  hosts: string;
  hostname: string;
}

/** OciSpecInput is everything ociSpec depends on. */
export interface OciSpecInput {
  spec: InstanceSpec;
  paths: BundlePaths;
  /** cgroupsPath is the instance's cgroup, relative to each hierarchy's root (`/ward/ins_…`). */
  cgroupsPath: string;
  idMapping: IdMapping;
  arch: SeccompArch;
  /** initPath is a static init on the host (tini-static) run as the instance's pid 1; absent runs the app as pid 1. */
  initPath?: string;
}

// The OCI types below cover what Ward writes, not the whole specification.
/** OciIdMapping is the spec's spelling of an IdMapping (`containerID`, `hostID`: capital ID). */
export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** ociIdMapping renders an IdMapping in the spec's spelling; a misspelt key would silently map to host 0. */
export function ociIdMapping(m: IdMapping): OciIdMapping {
  return { containerID: m.containerId, hostID: m.hostId, size: m.size };
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciConfig {
  ociVersion: string;
  hostname: string;
  root: { path: string; readonly: boolean };
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient', string[]>;
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
    oomScoreAdj: number;
  };
  mounts: OciMount[];
  linux: {
    uidMappings: OciIdMapping[];
    gidMappings: OciIdMapping[];
    namespaces: { type: string; path?: string }[];
    cgroupsPath: string;
    resources: {
      devices: { allow: boolean; type?: string; major?: number; minor?: number; access: string }[];
      memory: { limit: number; swap: number };
      cpu: { quota: number; period: number; shares: number };
      pids: { limit: number };
    };
    rootfsPropagation: string;
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp: LinuxSeccomp;
  };
}

/** ALLOWED_DEVICES are the character devices an instance may use: null, zero, full, random, urandom, tty, ptmx and ptys. */
export const ALLOWED_DEVICES: readonly { type: string; major: number; minor?: number; access: string }[] = [
  { type: 'c', major: 1, minor: 3, access: 'rwm' },
  { type: 'c', major: 1, minor: 5, access: 'rwm' },
  { type: 'c', major: 1, minor: 7, access: 'rwm' },
  { type: 'c', major: 1, minor: 8, access: 'rwm' },
  { type: 'c', major: 1, minor: 9, access: 'rwm' },
  { type: 'c', major: 5, minor: 0, access: 'rwm' },
  { type: 'c', major: 5, minor: 2, access: 'rwm' },
  { type: 'c', major: 136, access: 'rwm' },
];

/** processEnv renders env as `K=V` lines in the caller's order, adding PATH when the image has none. */
export function processEnv(env: Record<string, string>): string[] {
  const out = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  if (!Object.hasOwn(env, 'PATH')) out.unshift(`PATH=${DEFAULT_PATH}`);
  return out;
}

/**
 * capabilitiesFor gives a process running as container root ROOT_CAPABILITIES, and any other user none
 * at all, not even in the bounding set: with noNewPrivileges no file capability or setuid binary can
 * hand one back, so a non-root app holds exactly nothing.
 */
export function capabilitiesFor(uid: number): OciConfig['process']['capabilities'] {
  const caps = uid === 0 ? [...ROOT_CAPABILITIES] : [];
  return { bounding: [...caps], effective: [...caps], permitted: [...caps], inheritable: [], ambient: [] };
}

/** ociSpec builds an instance's config.json. It is pure: same input, same output. */
export function ociSpec(input: OciSpecInput): OciConfig {
  const { spec, paths, idMapping } = input;
  const { process: proc, resources } = spec;
  const nofile = resources.nofile ?? DEFAULT_NOFILE;
  const user = { uid: proc.user.uid, gid: proc.user.gid, ...(proc.user.additionalGids?.length ? { additionalGids: [...proc.user.additionalGids] } : {}) };
  const args = input.initPath ? [INIT_PATH, '--', ...proc.args] : [...proc.args];

  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', `size=${SMALL_TMPFS_BYTES}`] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${SMALL_TMPFS_BYTES}`] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // /tmp may grow to the memory limit: tmpfs pages count against the instance's memory cgroup anyway.
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', `size=${resources.memoryBytes}`] },
    { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755', `size=${SMALL_TMPFS_BYTES}`] },
    { destination: '/etc/resolv.conf', type: 'bind', source: paths.resolvConf, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
    { destination: '/etc/hosts', type: 'bind', source: paths.hosts, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
    { destination: '/etc/hostname', type: 'bind', source: paths.hostname, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
  ];
  if (input.initPath) {
    mounts.push({ destination: INIT_PATH, type: 'bind', source: input.initPath, options: ['bind', 'ro', 'nosuid', 'nodev'] });
  }
  for (const m of spec.mounts) {
    mounts.push({ destination: m.destination, type: 'bind', source: m.source, options: ['rbind', m.readOnly ? 'ro' : 'rw', 'nosuid', 'nodev', 'rprivate'] });
  }
  // No /sys: the instance's network namespace belongs to the host's user namespace, and crun answers a
  // sysfs mount there by bind-mounting the host's /sys, which lists the host's interfaces.

  const namespaces: { type: string; path?: string }[] = [
    { type: 'pid' },
    { type: 'ipc' },
    { type: 'uts' },
    { type: 'mount' },
    { type: 'cgroup' },
    { type: 'user' },
    spec.network ? { type: 'network', path: spec.network.netnsPath } : { type: 'network' },
  ];

  return {
    ociVersion: OCI_VERSION,
    hostname: spec.hostname ?? spec.id,
    root: { path: paths.rootfs, readonly: true },
    process: {
      terminal: false,
      user,
      args,
      env: processEnv(proc.env),
      cwd: proc.cwd,
      capabilities: capabilitiesFor(proc.user.uid),
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }],
      noNewPrivileges: true,
      oomScoreAdj: OOM_SCORE_ADJ,
    },
    mounts,
    linux: {
      uidMappings: [ociIdMapping(idMapping)],
      gidMappings: [ociIdMapping(idMapping)],
      namespaces,
      cgroupsPath: input.cgroupsPath,
      resources: {
        devices: [{ allow: false, access: 'rwm' }, ...ALLOWED_DEVICES.map((d) => ({ allow: true, ...d }))],
        // swap equal to the limit means no swap at all (the limit covers memory plus swap).
        memory: { limit: resources.memoryBytes, swap: resources.memoryBytes },
        cpu: {
          quota: Math.max(1000, Math.round(resources.cpus * CPU_PERIOD_US)),
          period: CPU_PERIOD_US,
          shares: Math.max(2, Math.round(resources.cpus * 1024)),
        },
        pids: { limit: resources.pids },
      },
      rootfsPropagation: 'rprivate',
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
      seccomp: seccompProfile(input.arch),
    },
  };
}

/** resolvConf renders /etc/resolv.conf for the instance (empty when it has no DNS yet). */
export function resolvConf(dns: InstanceSpec['dns']): string {
  if (!dns) return '';
  const lines = dns.nameservers.map((n) => `nameserver ${n}`);
  if (dns.search.length) lines.push(`search ${dns.search.join(' ')}`);
  if (dns.options?.length) lines.push(`options ${dns.options.join(' ')}`);
  return lines.length ? lines.join('\n') + '\n' : '';
}

/** hostsFile renders /etc/hosts: loopback, the instance's own name on its addresses, then extra entries. */
export function hostsFile(spec: InstanceSpec): string {
  const name = spec.hostname ?? spec.id;
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  const own = spec.network?.addresses ?? [];
  if (own.length === 0) lines.push(`127.0.1.1\t${name}`);
  for (const a of own) lines.push(`${a}\t${name}`);
  for (const h of spec.hosts ?? []) lines.push(`${h.address}\t${h.names.join(' ')}`);
  return lines.join('\n') + '\n';
}

/**
 * execProcess is the process.json for `crun exec`: the instance's own process (user, capabilities,
 * noNewPrivileges, rlimits, cwd, env) with other arguments and extra environment, run directly, not
 * under the init.
 */
export function execProcess(base: OciConfig['process'], args: readonly string[], extraEnv: Record<string, string> = {}): OciConfig['process'] {
  const env = base.env.filter((kv) => !Object.hasOwn(extraEnv, kv.slice(0, kv.indexOf('='))));
  for (const [k, v] of Object.entries(extraEnv)) env.push(`${k}=${v}`);
  return { ...base, terminal: false, args: [...args], env };
}
