// The restic engine against real repositories (a local path and a REST server from `rclone serve
// restic`), on plain directories standing in for volumes. Each test tries to break a promise of
// docs/backups.md: encrypted repository, loud wrong password, byte-identical restore, exact retention,
// corrupted pack found by a drill, killed restic is a failure, full target fails and keeps old snapshots.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run, start } from '../../src/exec/index.ts';
import { ResticEngine, treeDigestOf, type BackupTarget } from '../../src/backups/engine.ts';
import { ResticError } from '../../src/backups/restic.ts';
import { directoryScratch, tmpfsScratch } from '../../src/backups/scratch.ts';
import { scanFiles } from './canary-scan.ts';

const engine = new ResticEngine();
let root: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ward-backups-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

// Drills restore into a tmpfs per drill when root (what the server does), else into plain directories.
const scratch = () => (process.getuid?.() === 0 ? tmpfsScratch(join(root, 'scratch')) : directoryScratch(join(root, 'scratch')));

function target(repository: string): BackupTarget {
  return { repository, password: Buffer.from(randomBytes(32).toString('base64url')) };
}

async function sourceDir(name: string): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

async function rejectsKind(p: Promise<unknown>, kind: ResticError['kind']): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ResticError, `expected ResticError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    return true;
  });
}

async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walkFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('restic engine', () => {
  test('the repository is encrypted: a canary in the volume is not in its bytes, and the password is in no argv or environment', async () => {
    const src = await sourceDir('canary-src');
    const canary = `WARD-CANARY-${randomBytes(12).toString('hex')}`;
    await writeFile(join(src, 'notes.txt'), `patient record ${canary}\n`.repeat(50));
    const t = target(join(root, 'canary-repo'));
    assert.deepEqual(await engine.open(t), { initialized: true });
    const seen: Array<{ cmdline: string; environ: string }> = [];
    await engine.backup(t, {
      volumeId: 'vol_canary',
      dir: src,
      onSpawn: (pid) => {
        // Read what any local user (or a crash dump) could: restic's argv and environment.
        void Promise.all([readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => ''), readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '')]).then(([cmdline, environ]) =>
          seen.push({ cmdline, environ }),
        );
      },
    });
    const scan = await scanFiles([t.repository], [Buffer.from(canary), t.password]);
    assert.ok(scan.files > 5, 'the repository has files');
    assert.deepEqual(scan.hits, [[], []], 'neither the canary nor the password is in the repository');
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(seen.length > 0);
    for (const s of seen) {
      assert.ok(!s.cmdline.includes(t.password.toString()), 'password not in argv');
      assert.ok(!s.environ.includes(t.password.toString()), 'password not in the environment');
      assert.ok(!/RESTIC_PASSWORD/.test(s.environ));
    }
  });

  test('a wrong or absent password fails loudly, and changes nothing', async () => {
    const src = await sourceDir('pw-src');
    await writeFile(join(src, 'a'), 'a');
    const t = target(join(root, 'pw-repo'));
    await engine.open(t);
    await engine.backup(t, { volumeId: 'vol_pw', dir: src });
    const wrong = { repository: t.repository, password: Buffer.from('not-the-key') };
    await rejectsKind(engine.open(wrong), 'wrong_password');
    await rejectsKind(engine.backup(wrong, { volumeId: 'vol_pw', dir: src }), 'wrong_password');
    await rejectsKind(engine.snapshots({ repository: t.repository, password: Buffer.alloc(0) }), 'wrong_password');
    assert.equal((await engine.snapshots(t, 'vol_pw')).length, 1);
    // A target that is not a repository is never "opened" by a wrong password: open initializes it only when empty.
    await rejectsKind(engine.snapshots(target(join(root, 'nowhere'))), 'no_repository');
  });

  test('a restore brings back byte-identical files, and a restore into a volume replaces what was there', async () => {
    const src = await sourceDir('rt-src');
    await mkdir(join(src, 'db/base'), { recursive: true });
    await writeFile(join(src, 'db/base/16384'), randomBytes(3 * 1024 * 1024 + 17));
    await writeFile(join(src, 'empty'), '');
    await writeFile(join(src, 'unicode-é.txt'), 'ü\n');
    await symlink('db/base/16384', join(src, 'link'));
    const t = target(join(root, 'rt-repo'));
    await engine.open(t);
    const { snapshotId, summary } = await engine.backup(t, { volumeId: 'vol_rt', dir: src, tags: ['consistency=live'] });
    assert.equal(summary.total_files_processed, 3, 'three files (the symlink is not a file)');
    const before = await treeDigestOf(src);

    const out = join(root, 'rt-out');
    await engine.restoreTo(t, snapshotId, out);
    assert.deepEqual(await treeDigestOf(out), before);
    assert.deepEqual(await readFile(join(out, 'db/base/16384')), await readFile(join(src, 'db/base/16384')));

    // Into the volume itself: changed and new files go, the snapshot comes back exactly.
    await writeFile(join(src, 'db/base/16384'), 'overwritten');
    await writeFile(join(src, 'added-later'), 'x');
    const r = await engine.restoreInto(t, snapshotId, src);
    assert.equal(r.files, 3);
    assert.deepEqual(await treeDigestOf(src), before);

    const drill = await engine.drill(t, snapshotId, scratch(), '100%');
    assert.deepEqual(drill.problems, []);
    assert.equal(drill.ok, true);
    assert.equal(drill.treeDigest, before.digest);
    assert.equal(drill.files, 3);
    assert.deepEqual(await readdir(join(root, 'scratch')), [], 'the drill removes (and unmounts) its scratch area');
  });

  test('a flipped byte in a pack file makes the drill fail', async () => {
    const src = await sourceDir('corrupt-src');
    await writeFile(join(src, 'data.bin'), randomBytes(2 * 1024 * 1024));
    const t = target(join(root, 'corrupt-repo'));
    await engine.open(t);
    const { snapshotId } = await engine.backup(t, { volumeId: 'vol_c', dir: src });
    assert.equal((await engine.drill(t, snapshotId, scratch(), '100%')).ok, true);
    // The biggest pack holds the file's data; flip one byte in its middle.
    const packs = await walkFiles(join(t.repository, 'data'));
    const sizes = await Promise.all(packs.map(async (p) => ({ p, size: (await stat(p)).size })));
    const biggest = sizes.sort((a, b) => b.size - a.size)[0]!;
    const fh = await open(biggest.p, 'r+');
    try {
      const b = Buffer.alloc(1);
      const at = Math.floor(biggest.size / 2);
      await fh.read(b, 0, 1, at);
      b[0] = b[0]! ^ 0xff;
      await fh.write(b, 0, 1, at);
    } finally {
      await fh.close();
    }
    const drill = await engine.drill(t, snapshotId, scratch(), '100%');
    assert.equal(drill.ok, false);
    assert.ok(drill.problems.length > 0);
    assert.match(drill.problems[0]!, /check/);
    await rejectsKind(engine.check(t, '100%'), 'failed');
  });

  test('retention keeps exactly what the policy says (backdated snapshots)', async () => {
    const src = await sourceDir('ret-src');
    await writeFile(join(src, 'f'), 'x');
    const t = target(join(root, 'ret-repo'));
    await engine.open(t);
    // One snapshot a day at noon from 2025-12-26 to 2026-01-10 (16 days), and another volume's that must not be touched.
    const days: string[] = [];
    for (let d = Date.UTC(2025, 11, 26); d <= Date.UTC(2026, 0, 10); d += 86_400_000) days.push(new Date(d).toISOString().slice(0, 10));
    for (const day of days) {
      await writeFile(join(src, 'f'), day);
      await engine.backup(t, { volumeId: 'vol_r', dir: src, time: `${day} 12:00:00` });
    }
    await engine.backup(t, { volumeId: 'vol_other', dir: src, time: '2020-01-01 12:00:00' });
    const r = await engine.forget(t, 'vol_r', { daily: 3, weekly: 3, monthly: 2, yearly: 1 });
    const kept = (await engine.snapshots(t, 'vol_r')).map((s) => s.time.slice(0, 10));
    // restic applies each count on its own, newest first, and keeps the union: 3 days (Jan 10, 9, 8); the
    // last of 3 ISO weeks (Sat Jan 10, Sun Jan 4, Sun Dec 28); the last of 2 months (Jan 10, Dec 31); the
    // last of 1 year (Jan 10).
    assert.deepEqual(kept, ['2025-12-28', '2025-12-31', '2026-01-04', '2026-01-08', '2026-01-09', '2026-01-10']);
    assert.equal(r.kept.length, 6);
    assert.equal(r.removed.length, days.length - 6);
    assert.equal((await engine.snapshots(t, 'vol_other')).length, 1, 'another volume keeps its snapshots');
    assert.equal((await engine.drill(t, (await engine.snapshots(t, 'vol_r')).at(-1)!.id, scratch(), '100%')).ok, true, 'the prune left a sound repository');
  });

  test('a restic killed mid-backup is a failure, and leaves no snapshot', async () => {
    const src = await sourceDir('kill-src');
    for (let i = 0; i < 8; i++) await writeFile(join(src, `chunk-${i}`), randomBytes(8 * 1024 * 1024));
    const t = target(join(root, 'kill-repo'));
    await engine.open(t);
    await rejectsKind(
      engine.backup(t, {
        volumeId: 'vol_k',
        dir: src,
        // Killed once restic has written its first pack file: mid-upload, before any snapshot.
        onSpawn: (pid) => void killOnceAPackExists(t.repository, pid),
      }),
      'killed',
    );
    assert.deepEqual(await engine.snapshots(t, 'vol_k'), []);
  });

  test('a target that fills up mid-backup fails loudly and keeps its earlier snapshots', { skip: process.getuid?.() !== 0 ? 'needs root to mount a small tmpfs' : false }, async () => {
    const mnt = await sourceDir('small-target');
    await run(['mount', '-t', 'tmpfs', '-o', 'size=6m,mode=0700', 'ward-test-backup-full', mnt]);
    try {
      const src = await sourceDir('full-src');
      await writeFile(join(src, 'small'), 'first');
      const t = target(join(mnt, 'repo'));
      await engine.open(t);
      const first = await engine.backup(t, { volumeId: 'vol_f', dir: src });
      await writeFile(join(src, 'big'), randomBytes(16 * 1024 * 1024));
      await assert.rejects(engine.backup(t, { volumeId: 'vol_f', dir: src }), (e: unknown) => e instanceof ResticError && /no space left|exited with/i.test(e.message));
      const snaps = await engine.snapshots(t, 'vol_f');
      assert.deepEqual(snaps.map((s) => s.id), [first.snapshotId]);
      const out = join(root, 'full-out');
      await engine.restoreTo(t, first.snapshotId, out);
      assert.equal(await readFile(join(out, 'small'), 'utf8'), 'first');
    } finally {
      await run(['umount', mnt], { allowFailure: true });
    }
  });

  test('a REST repository (rclone serve restic) works the same, and one that vanished mid-run fails', async () => {
    const port = await freePort();
    const dir = await sourceDir('rest-store');
    const server = start(['rclone', 'serve', 'restic', '--addr', `127.0.0.1:${port}`, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      await waitForPort(port);
      const src = await sourceDir('rest-src');
      await writeFile(join(src, 'a'), randomBytes(100_000));
      const t = target(`rest:http://127.0.0.1:${port}/acme/`);
      await engine.open(t);
      const { snapshotId } = await engine.backup(t, { volumeId: 'vol_rest', dir: src });
      const drill = await engine.drill(t, snapshotId, scratch(), '100%');
      assert.equal(drill.ok, true, drill.problems.join('; '));
      assert.equal(drill.treeDigest, (await treeDigestOf(src)).digest);
      server.kill('SIGKILL');
      await new Promise((r) => server.once('exit', r));
      await assert.rejects(engine.backup(t, { volumeId: 'vol_rest', dir: src }), ResticError);
    } finally {
      if (server.exitCode === null && server.signalCode === null) {
        server.kill('SIGKILL');
        await new Promise((r) => server.once('exit', r));
      }
    }
  });
});

async function killOnceAPackExists(repo: string, pid: number): Promise<void> {
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return; // restic is gone already: the test's assertion says how it ended
    }
    const subdirs = await readdir(join(repo, 'data')).catch(() => [] as string[]);
    for (const d of subdirs) {
      if ((await readdir(join(repo, 'data', d)).catch(() => [])).length > 0) {
        process.kill(pid, 'SIGKILL');
        return;
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}
