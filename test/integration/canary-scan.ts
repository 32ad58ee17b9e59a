// canaryScan searches files for byte strings (secret canaries), the way an attacker with a copy of a disk
// would: every regular file under the given roots, as bytes, on disk filesystems only. Memory-backed
// filesystems (tmpfs, where Ward keeps instance bundles and secret files on purpose; proc; sysfs) are
// where secrets may live, so they are skipped by filesystem type, never by path: a Ward bug that writes a
// secret to /run on a host whose /run is a plain directory on disk (this one) is found.
import { open, opendir, lstat } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import { join } from 'node:path';

/** Filesystem types (statfs f_type) that are not disks: tmpfs, ramfs, proc, sysfs, devpts, cgroup, cgroup2, mqueue, nsfs. */
const MEMORY_FS = new Set([0x01021994, 0x858458f6, 0x9fa0, 0x62656572, 0x1cd1, 0x27e0eb, 0x63677270, 0x19800202, 0x6e736673, 0x64626720, 0x74726163, 0x73636673, 0xcafe4a11]);

export interface ScanOptions {
  /** skip lists absolute paths (directories or files) not to enter: bulky, irrelevant, or the scanner's own. */
  skip?: readonly string[];
}

export interface ScanResult {
  /** hits maps each needle (by index) to the files it was found in. */
  hits: string[][];
  files: number;
  bytes: number;
  /** skippedMemoryFs lists memory-backed mount points met and not entered. */
  skippedMemoryFs: string[];
}

const CHUNK = 1 << 20;

/** scanFiles searches every regular file under roots for each needle; see the file comment. */
export async function scanFiles(roots: readonly string[], needles: readonly Buffer[], opts: ScanOptions = {}): Promise<ScanResult> {
  const skip = new Set(opts.skip ?? []);
  const result: ScanResult = { hits: needles.map(() => []), files: 0, bytes: 0, skippedMemoryFs: [] };
  const overlap = Math.max(...needles.map((n) => n.length)) - 1;
  const buf = Buffer.alloc(CHUNK + overlap);

  const scanFile = async (path: string, size: number) => {
    let fh;
    try {
      fh = await open(path, 'r');
    } catch {
      return; // vanished, or a special file that refuses to open
    }
    try {
      let carried = 0;
      let pos = 0;
      while (pos < size) {
        const { bytesRead } = await fh.read(buf, carried, CHUNK, pos);
        if (bytesRead === 0) break;
        const view = buf.subarray(0, carried + bytesRead);
        needles.forEach((n, i) => {
          if (view.includes(n) && !result.hits[i]!.includes(path)) result.hits[i]!.push(path);
        });
        pos += bytesRead;
        carried = Math.min(overlap, view.length);
        view.copy(buf, 0, view.length - carried);
      }
      result.files += 1;
      result.bytes += pos;
    } finally {
      await fh.close();
    }
  };

  const walk = async (dir: string): Promise<void> => {
    if (skip.has(dir)) return;
    let fsType: number;
    try {
      fsType = Number(statfsSync(dir).type);
    } catch {
      return;
    }
    if (MEMORY_FS.has(fsType)) {
      result.skippedMemoryFs.push(dir);
      return;
    }
    let d;
    try {
      d = await opendir(dir);
    } catch {
      return;
    }
    for await (const e of d) {
      const p = join(dir, e.name);
      if (skip.has(p)) continue;
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const st = await lstat(p).catch(() => undefined);
        if (st?.isFile()) await scanFile(p, st.size);
      }
      // Symlinks are not followed (their targets are scanned where they live); sockets, FIFOs and
      // devices hold no stored bytes.
    }
  };

  for (const root of roots) {
    const st = await lstat(root).catch(() => undefined);
    if (!st) continue;
    if (st.isDirectory()) await walk(root);
    else if (st.isFile()) await scanFile(root, st.size);
  }
  return result;
}

/**
 * SYSTEM_SCAN_ROOTS are the system directories the canary tests search besides their own data dir and
 * the checkout: /var (PostgreSQL's files and WAL under /var/lib/postgresql, logs), /tmp, /etc, and /run,
 * which is a plain directory on disk on some hosts (this one), so Ward must keep secrets off it.
 */
export const SYSTEM_SCAN_ROOTS = ['/var', '/tmp', '/etc', '/run'] as const;

/**
 * SYSTEM_SCAN_SKIP are left out: Debian's package cache and lists (/var/cache/apt alone is 2.3 GB of
 * .deb files here; dpkg's and apt's databases), which only the package manager writes.
 */
export const SYSTEM_SCAN_SKIP = ['/var/cache/apt', '/var/lib/apt', '/var/lib/dpkg'] as const;
