/**
 * Which cgroup layout this host has, read from /proc/self/mountinfo. crun handles pure v1 and pure v2
 * hosts itself and refuses hybrid ones (v1 controllers plus a cgroup2 mount beside them, systemd's
 * "hybrid" mode): there Ward runs crun in a private mount namespace without the cgroup2 mount. The
 * layout is detected at start, never assumed.
 */
import { join } from 'node:path';

export type CgroupLayout =
  | { mode: 'v2'; root: string }
  /** v1: controllers maps each controller (memory, pids, cpuacct…) to its hierarchy's mount point. */
  | { mode: 'v1'; controllers: Record<string, string>; hierarchies: string[] }
  /** hybrid: like v1, plus the cgroup2 mount that crun must not see. */
  | { mode: 'hybrid'; controllers: Record<string, string>; hierarchies: string[]; unifiedMount: string };

interface MountEntry {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

// Mount points escape space, tab, newline and backslash as octal (\040…) in mountinfo.
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** parseMountinfo reads the lines of /proc/<pid>/mountinfo (proc(5)) into mount point, type and super options. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [fsType, , superOpts] = right.split(' ');
    if (fields[4] === undefined || fsType === undefined) continue;
    out.push({ mountPoint: unescapeMountPath(fields[4]), fsType, superOptions: (superOpts ?? '').split(',') });
  }
  return out;
}

/** isTmpfsMount reports whether path is itself the mount point of a tmpfs, per mountinfo text. */
export function isTmpfsMount(mountinfo: string, path: string): boolean {
  // The last mount on a path is the visible one.
  const mounts = parseMountinfo(mountinfo).filter((m) => m.mountPoint === path);
  return mounts.length > 0 && mounts[mounts.length - 1]!.fsType === 'tmpfs';
}

/** isMountPoint reports whether something is mounted on path, per mountinfo text. */
export function isMountPoint(mountinfo: string, path: string): boolean {
  return parseMountinfo(mountinfo).some((m) => m.mountPoint === path);
}

/** mountsUnder lists the mount points at or below dir, deepest first (the order to unmount them in). */
export function mountsUnder(mountinfo: string, dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  const found = parseMountinfo(mountinfo)
    .map((m) => m.mountPoint)
    .filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(found)].sort((a, b) => b.length - a.length || (a < b ? 1 : -1));
}

const V1_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'hugetlb', 'net_cls', 'net_prio', 'perf_event', 'rdma', 'misc'];

/** detectCgroupLayout classifies the host from its mountinfo text; it throws when no cgroup is mounted. */
export function detectCgroupLayout(mountinfo: string): CgroupLayout {
  const mounts = parseMountinfo(mountinfo);
  const v2 = mounts.filter((m) => m.fsType === 'cgroup2');
  const controllers: Record<string, string> = {};
  // hierarchies are all v1 mounts, named ones (name=systemd) included: crun makes the instance's cgroup in each.
  const hierarchies: string[] = [];
  for (const m of mounts) {
    if (m.fsType !== 'cgroup') continue;
    if (!hierarchies.includes(m.mountPoint)) hierarchies.push(m.mountPoint);
    for (const opt of m.superOptions) if (V1_CONTROLLERS.includes(opt)) controllers[opt] ??= m.mountPoint;
  }
  const hasV1 = Object.keys(controllers).length > 0;
  if (!hasV1) {
    const root = v2.find((m) => m.mountPoint === '/sys/fs/cgroup') ?? v2[0];
    if (!root) throw new Error('no cgroup filesystem is mounted: instances cannot be confined');
    return { mode: 'v2', root: root.mountPoint };
  }
  const unified = v2[0];
  return unified ? { mode: 'hybrid', controllers, hierarchies, unifiedMount: unified.mountPoint } : { mode: 'v1', controllers, hierarchies };
}

/** CgroupFiles names the files stats reads for one instance's cgroup. */
export interface CgroupFiles {
  memoryCurrent: string;
  memoryLimit: string;
  /** oomEvents is memory.oom_control (v1: `oom_kill N`) or memory.events (v2: `oom_kill N`). */
  oomEvents: string;
  /** cpuUsage is cpuacct.usage (v1, nanoseconds) or cpu.stat (v2, `usage_usec N`). */
  cpuUsage: string;
  pidsCurrent: string;
  pidsMax: string;
}

/**
 * cgroupFiles locates an instance's cgroup files. Under v1 and hybrid, crun (as run by Ward) sees only
 * the v1 hierarchies, so that is where the instance's cgroup lives; the host sees them too.
 */
export function cgroupFiles(layout: CgroupLayout, cgroupsPath: string): CgroupFiles {
  if (layout.mode === 'v2') {
    const dir = join(layout.root, cgroupsPath);
    return {
      memoryCurrent: join(dir, 'memory.current'),
      memoryLimit: join(dir, 'memory.max'),
      oomEvents: join(dir, 'memory.events'),
      cpuUsage: join(dir, 'cpu.stat'),
      pidsCurrent: join(dir, 'pids.current'),
      pidsMax: join(dir, 'pids.max'),
    };
  }
  const c = layout.controllers;
  const under = (controller: string, file: string) => join(c[controller] ?? `/sys/fs/cgroup/${controller}`, cgroupsPath, file);
  return {
    memoryCurrent: under('memory', 'memory.usage_in_bytes'),
    memoryLimit: under('memory', 'memory.limit_in_bytes'),
    oomEvents: under('memory', 'memory.oom_control'),
    cpuUsage: under('cpuacct', 'cpuacct.usage'),
    pidsCurrent: under('pids', 'pids.current'),
    pidsMax: under('pids', 'pids.max'),
  };
}

/** cgroupDirs lists every directory a cgroup path has on this host (one per v1 hierarchy, one under v2). */
export function cgroupDirs(layout: CgroupLayout, cgroupsPath: string): string[] {
  if (layout.mode === 'v2') return [join(layout.root, cgroupsPath)];
  return layout.hierarchies.map((mp) => join(mp, cgroupsPath));
}

/** parseKeyedCounter reads `key N` out of a flat-keyed cgroup file (memory.oom_control, memory.events, cpu.stat). */
export function parseKeyedCounter(text: string, key: string): number | undefined {
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key && v !== undefined) return Number(v);
  }
  return undefined;
}

/** parseLimit reads a cgroup limit file: `max` (v2) or an absurdly large v1 value means none. */
export function parseLimit(text: string): number | undefined {
  const t = text.trim();
  if (t === 'max' || t === '') return undefined;
  const n = Number(t);
  // v1 reports "no limit" as a page-aligned LONG_MAX (9223372036854771712).
  if (!Number.isFinite(n) || n >= 2 ** 62) return undefined;
  return n;
}
