// bench/backup: backup and restore throughput of a volume's worth of data through Ward (ResticEngine:
// password on stdin, JSON judged, the snapshot looked up afterwards; restore with --verify and the
// comparison with the snapshot's listing) against plain `restic` on the same data, as ratios.
//
//   node bench/backup/run.ts [--mb 500] [--runs 3]      (a benchmark, not a test)
//
// The data is random (incompressible, no dedup between files): --mb MiB in 16 MiB files. Each run backs
// up into a fresh repository (plain restic and Ward alternate, so neither gets a warmer page cache), then
// restores the snapshot into a fresh directory. Plain restic: `restic backup .` and `restic restore`
// with RESTIC_PASSWORD set; Ward: ResticEngine.backup and ResticEngine.restoreTo + compareWithListing
// (what a restore drill does after its check). Both without a cache, as Ward runs by default.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/exec/index.ts';
import { compareWithListing, ResticEngine } from '../../src/backups/index.ts';

const arg = (name: string, dflt: number) => Number(process.argv[process.argv.indexOf(`--${name}`) + 1]) || dflt;
const MB = arg('mb', 500);
const RUNS = arg('runs', 3);
const FILE_MB = 16;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'ward-bench-backup-'));
  try {
    const data = join(root, 'data');
    await mkdir(data);
    for (let i = 0; i * FILE_MB < MB; i++) await writeFile(join(data, `f${i}.bin`), randomBytes(Math.min(FILE_MB, MB - i * FILE_MB) * 1024 * 1024));
    const password = randomBytes(32).toString('base64url');
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', RESTIC_PASSWORD: password };
    const engine = new ResticEngine();
    const times = { plainBackup: [] as number[], wardBackup: [] as number[], plainRestore: [] as number[], wardRestore: [] as number[] };

    for (let r = 0; r < RUNS; r++) {
      // Plain restic.
      const prepo = join(root, `plain-${r}`);
      await run(['restic', '--repo=' + prepo, '--no-cache', '--quiet', 'init'], { env });
      let t = performance.now();
      await run(['restic', '--repo=' + prepo, '--no-cache', '--quiet', 'backup', '.'], { env, cwd: data, timeoutMs: 3600_000 });
      times.plainBackup.push(performance.now() - t);
      t = performance.now();
      await run(['restic', '--repo=' + prepo, '--no-cache', '--quiet', 'restore', 'latest', '--target=' + join(root, `plain-out-${r}`)], { env, timeoutMs: 3600_000 });
      times.plainRestore.push(performance.now() - t);
      await rm(prepo, { recursive: true, force: true });
      await rm(join(root, `plain-out-${r}`), { recursive: true, force: true });

      // Ward.
      const target = { repository: join(root, `ward-${r}`), password: Buffer.from(password) };
      await engine.open(target);
      t = performance.now();
      const { snapshotId } = await engine.backup(target, { volumeId: 'vol_bench', dir: data });
      times.wardBackup.push(performance.now() - t);
      t = performance.now();
      const out = join(root, `ward-out-${r}`);
      await engine.restoreTo(target, snapshotId, out);
      const cmp = await compareWithListing(out, await engine.listing(target, snapshotId));
      if (cmp.problems.length) throw new Error(`restore differs: ${cmp.problems.join('; ')}`);
      times.wardRestore.push(performance.now() - t);
      await rm(target.repository, { recursive: true, force: true });
      await rm(out, { recursive: true, force: true });
    }

    const mbps = (ms: number) => (MB / (ms / 1000)).toFixed(1);
    const row = (what: string, plain: number[], ward: number[]) => {
      const p = median(plain);
      const w = median(ward);
      console.log(`${what.padEnd(8)} plain restic ${mbps(p).padStart(7)} MiB/s   Ward ${mbps(w).padStart(7)} MiB/s   Ward/plain throughput ${(p / w).toFixed(2)}`);
    };
    console.log(`bench/backup: ${MB} MiB of random data in ${FILE_MB} MiB files, median of ${RUNS} runs, no cache`);
    row('backup', times.plainBackup, times.wardBackup);
    row('restore', times.plainRestore, times.wardRestore);
    console.log('Ward restore includes restic --verify (re-reads every file against the snapshot) and the listing comparison with SHA-256 of every file.');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
