import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../exec/index.ts';

/**
 * A restore drill restores a volume's decrypted files somewhere to check them. That somewhere must not
 * be a plain disk: it would leave the plaintext of an encrypted volume behind on the host (docs/backups.md
 * "Restore drills"). A Scratch is where a drill restores: by default a tmpfs Ward mounts for one drill,
 * sized to the snapshot, and unmounts after, so the files only ever live in memory.
 */
export interface Scratch {
  /** acquire returns an empty directory with room for `bytes`, and a release that removes it and what it holds. */
  acquire(bytes: number): Promise<{ dir: string; release(): Promise<void> }>;
}

/** SCRATCH_HEADROOM is added to a snapshot's size for the tmpfs (directories, metadata, restic's temporary files). */
const SCRATCH_HEADROOM = 64 * 1024 * 1024;

/** tmpfsArgv mounts a private tmpfs of `bytes` at dir (mode 0700: only root reads the drill's files). */
export function tmpfsArgv(dir: string, bytes: number): [string, ...string[]] {
  return ['mount', '-t', 'tmpfs', '-o', `size=${bytes},mode=0700,nosuid,nodev,noexec`, 'ward-drill', dir];
}

async function memAvailable(): Promise<number> {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(await readFile('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * tmpfsScratch mounts a tmpfs per drill under parent. A snapshot larger than half the memory available
 * is refused (the drill fails loudly) rather than pushing the host into swap or the OOM killer.
 */
export function tmpfsScratch(parent: string): Scratch {
  return {
    async acquire(bytes: number) {
      const size = Math.ceil((bytes + SCRATCH_HEADROOM) / 4096) * 4096;
      const avail = await memAvailable();
      if (size > avail / 2) {
        throw new Error(`the snapshot needs ${size} bytes of scratch memory, more than half of the ${avail} bytes available; drills of this volume need a bigger host (see docs/backups.md)`);
      }
      await mkdir(parent, { recursive: true, mode: 0o700 });
      const dir = await mkdtemp(join(parent, 'drill-'));
      try {
        await run(tmpfsArgv(dir, size));
      } catch (e) {
        await rm(dir, { recursive: true, force: true });
        throw e;
      }
      return {
        dir,
        async release() {
          await run(['umount', dir], { allowFailure: true });
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/** directoryScratch uses plain directories under parent: for tests, and hosts whose parent is itself encrypted. */
export function directoryScratch(parent: string): Scratch {
  return {
    async acquire() {
      await mkdir(parent, { recursive: true, mode: 0o700 });
      const dir = await mkdtemp(join(parent, 'drill-'));
      return { dir, release: () => rm(dir, { recursive: true, force: true }) };
    },
  };
}
