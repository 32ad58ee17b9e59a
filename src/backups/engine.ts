import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  backupArgv,
  checkArgv,
  classify,
  forgetArgv,
  initArgv,
  judgeBackup,
  lsArgv,
  parseJsonLines,
  pruneArgv,
  ResticError,
  restoreArgv,
  runRestic,
  snapshotsArgv,
  volumeTag,
  type ResticNode,
  type ResticSnapshot,
  type ResticSummary,
} from './restic.ts';
import type { RetentionPolicy } from './retention.ts';
import type { Scratch } from './scratch.ts';

/**
 * BackupTarget is an org's restic repository and its password (the org's backup key, unsealed only for
 * the duration of an operation). The password is a Buffer so callers can wipe it when done.
 */
export interface BackupTarget {
  repository: string;
  password: Buffer;
}

/** BackupResult is a snapshot restic made and Ward then found in the repository. */
export interface BackupResult {
  snapshotId: string;
  summary: ResticSummary;
}

/** ForgetResult lists the snapshots a retention run kept and removed (full ids). */
export interface ForgetResult {
  kept: string[];
  removed: string[];
}

/** DrillResult is what a restore drill found; `ok` only when every step passed. */
export interface DrillResult {
  ok: boolean;
  snapshotId: string;
  /** durationMs is the whole drill: check, restore and comparison (the recovery time an auditor asks for). */
  durationMs: number;
  checkMs: number;
  restoreMs: number;
  files: number;
  bytes: number;
  /** treeDigest is SHA-256 over every restored path, type and file content, in path order. */
  treeDigest: string;
  /** problems say what failed, first problem first; empty when ok. */
  problems: string[];
}

export interface EngineOptions {
  /** cacheDir is restic's cache; without one restic runs with --no-cache. */
  cacheDir?: string;
  /** timeoutMs bounds each restic command; default 6 h. */
  timeoutMs?: number;
}

export interface BackupOptions {
  volumeId: string;
  /** dir is the volume's files on this host; it is backed up as the snapshot's root. */
  dir: string;
  /** tags are extra snapshot tags (consistency=command|live). */
  tags?: string[];
  /** time backdates the snapshot (tests of retention only). */
  time?: string;
  onSpawn?: (pid: number) => void;
  signal?: AbortSignal;
}

/**
 * ResticEngine runs backups, retention, restores and restore drills against restic repositories. It knows
 * nothing of orgs or the store: the BackupService decides what to run and records what happened. Each
 * method either returns what restic did, checked, or throws ResticError; none reports a success it did not
 * see (see judgeBackup and the snapshot look-up after each backup).
 */
export class ResticEngine {
  readonly #o: EngineOptions;

  constructor(o: EngineOptions = {}) {
    this.#o = o;
  }

  #run(argv: Parameters<typeof runRestic>[0], t: BackupTarget, extra: Parameters<typeof runRestic>[2] = {}) {
    return runRestic(argv, t.password, { timeoutMs: this.#o.timeoutMs, ...extra });
  }

  #opts() {
    return this.#o.cacheDir ? { cacheDir: this.#o.cacheDir } : {};
  }

  /**
   * open makes sure the repository exists and opens with the password: it initializes an empty target,
   * and fails with `wrong_password` for a repository made with another key (someone else's, or this
   * org's before its key was lost). Returns whether it initialized.
   */
  async open(t: BackupTarget): Promise<{ initialized: boolean }> {
    const probe = await this.#run(snapshotsArgv(t.repository, undefined, this.#opts()), t);
    if (probe.code === 0 && !probe.signal) return { initialized: false };
    const err = classify('open repository', probe);
    if (err.kind !== 'no_repository') throw err;
    const init = await this.#run(initArgv(t.repository, this.#opts()), t);
    if (init.code !== 0 || init.signal) throw classify('init repository', init);
    return { initialized: true };
  }

  /** snapshots lists a volume's snapshots (or all, without a volume), oldest first. */
  async snapshots(t: BackupTarget, volumeId?: string): Promise<ResticSnapshot[]> {
    const r = await this.#run(snapshotsArgv(t.repository, volumeId ? volumeTag(volumeId) : undefined, this.#opts()), t);
    if (r.code !== 0 || r.signal) throw classify('list snapshots', r);
    const parsed = parseJsonLines(r.lines).find(Array.isArray) as ResticSnapshot[] | undefined;
    if (!parsed) throw new ResticError('failed', 'list snapshots: restic printed no snapshot list', r.code);
    return parsed.sort((a, b) => a.time.localeCompare(b.time));
  }

  /**
   * backup snapshots o.dir, then looks the snapshot up in the repository: restic's exit code and summary
   * both have to say it worked, and the repository has to hold it afterwards.
   */
  async backup(t: BackupTarget, o: BackupOptions): Promise<BackupResult> {
    const argv = backupArgv(t.repository, { tags: [volumeTag(o.volumeId), ...(o.tags ?? [])], host: o.volumeId, ...(o.time ? { time: o.time } : {}) }, this.#opts());
    const r = await this.#run(argv, t, { cwd: o.dir, ...(o.onSpawn ? { onSpawn: o.onSpawn } : {}), ...(o.signal ? { signal: o.signal } : {}) });
    const { summary } = judgeBackup(r);
    const found = (await this.snapshots(t, o.volumeId)).find((s) => s.id.startsWith(summary.snapshot_id));
    if (!found) throw new ResticError('failed', `backup: restic reported snapshot ${summary.snapshot_id}, but the repository does not hold it`, r.code);
    return { snapshotId: found.id, summary };
  }

  /** forget applies a retention policy to one volume's snapshots and prunes the data no snapshot uses any more. */
  async forget(t: BackupTarget, volumeId: string, policy: RetentionPolicy): Promise<ForgetResult> {
    const r = await this.#run(forgetArgv(t.repository, volumeId, policy, this.#opts()), t);
    if (r.code !== 0 || r.signal) throw classify('forget', r);
    const groups = parseJsonLines(r.lines).find(Array.isArray) as Array<{ keep: ResticSnapshot[] | null; remove: ResticSnapshot[] | null }> | undefined;
    if (!groups) throw new ResticError('failed', 'forget: restic printed no result', r.code);
    const kept = groups.flatMap((g) => (g.keep ?? []).map((s) => s.id));
    const removed = groups.flatMap((g) => (g.remove ?? []).map((s) => s.id));
    if (removed.length > 0) {
      const p = await this.#run(pruneArgv(t.repository, this.#opts()), t);
      if (p.code !== 0 || p.signal) throw classify('prune', p);
    }
    return { kept, removed };
  }

  /** check verifies the repository's structure and reads back `subset` of its pack files (`5%`, `1/10`). */
  async check(t: BackupTarget, subset: string | undefined): Promise<void> {
    const r = await this.#run(checkArgv(t.repository, subset, this.#opts()), t);
    if (r.code !== 0 || r.signal) throw classify('check', r);
  }

  /** listing returns the snapshot's nodes (paths relative to the volume root, leading '/'). */
  async listing(t: BackupTarget, snapshotId: string): Promise<ResticNode[]> {
    const nodes: ResticNode[] = [];
    const r = await this.#run(lsArgv(t.repository, snapshotId, this.#opts()), t, {
      onLine: (line) => {
        const [m] = parseJsonLines([line]) as Array<{ struct_type?: string } & ResticNode>;
        if (m?.struct_type === 'node') nodes.push({ type: m.type, path: m.path, ...(typeof m.size === 'number' ? { size: m.size } : {}) });
      },
    });
    if (r.code !== 0 || r.signal) throw classify('list snapshot', r);
    return nodes;
  }

  /** restoreTo restores a snapshot into target (a new or empty directory); restic re-reads every file against the snapshot. */
  async restoreTo(t: BackupTarget, snapshotId: string, target: string): Promise<void> {
    await mkdir(target, { recursive: true, mode: 0o700 });
    const r = await this.#run(restoreArgv(t.repository, snapshotId, target, this.#opts()), t);
    if (r.code !== 0 || r.signal) throw classify('restore', r);
  }

  /**
   * restoreInto replaces the contents of dir (a volume's root) with the snapshot: it restores into a
   * staging directory inside dir first (same filesystem, so the swap is renames), compares the result
   * with the snapshot's listing, and only then removes the old files and moves the restored ones up.
   * A restore that fails leaves dir as it was (plus nothing: the staging directory is removed).
   */
  async restoreInto(t: BackupTarget, snapshotId: string, dir: string): Promise<{ files: number; bytes: number }> {
    const staging = await mkdtemp(join(dir, '.ward-restore-'));
    const stagingName = staging.slice(dir.length + 1);
    try {
      await this.restoreTo(t, snapshotId, staging);
      const cmp = await compareWithListing(staging, await this.listing(t, snapshotId));
      if (cmp.problems.length > 0) throw new ResticError('failed', `restore: the restored files do not match the snapshot: ${cmp.problems.slice(0, 3).join('; ')}`, null);
      // ext4's lost+found belongs to the filesystem (fsck uses its preallocated blocks): it stays.
      for (const name of await readdir(dir)) {
        if (name !== stagingName && name !== 'lost+found') await rm(join(dir, name), { recursive: true, force: true });
      }
      for (const name of await readdir(staging)) {
        if (name === 'lost+found') continue;
        await rename(join(staging, name), join(dir, name));
      }
      return { files: cmp.files, bytes: cmp.bytes };
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /**
   * drill is a restore drill: `restic check --read-data-subset`, a restore of the snapshot into a scratch
   * area (sized from the snapshot's listing, released after), and a comparison of what came back with
   * the listing (every path, type and size) after restic's own --verify re-read every file's content
   * against the snapshot's hashes. It never throws for a failed step: the result says what failed.
   */
  async drill(t: BackupTarget, snapshotId: string, scratch: Scratch, subset = '10%'): Promise<DrillResult> {
    const started = performance.now();
    const result: DrillResult = { ok: false, snapshotId, durationMs: 0, checkMs: 0, restoreMs: 0, files: 0, bytes: 0, treeDigest: '', problems: [] };
    const c0 = performance.now();
    try {
      await this.check(t, subset);
    } catch (e) {
      result.problems.push(e instanceof Error ? e.message : String(e));
    }
    result.checkMs = Math.round(performance.now() - c0);
    const r0 = performance.now();
    try {
      const listing = await this.listing(t, snapshotId);
      const area = await scratch.acquire(listing.reduce((n, x) => n + (x.size ?? 0), 0));
      try {
        await this.restoreTo(t, snapshotId, area.dir);
        const cmp = await compareWithListing(area.dir, listing);
        result.files = cmp.files;
        result.bytes = cmp.bytes;
        result.treeDigest = cmp.treeDigest;
        result.problems.push(...cmp.problems);
      } finally {
        await area.release();
      }
    } catch (e) {
      result.problems.push(e instanceof Error ? e.message : String(e));
    }
    result.restoreMs = Math.round(performance.now() - r0);
    result.durationMs = Math.round(performance.now() - started);
    result.ok = result.problems.length === 0;
    return result;
  }
}

/** Comparison is what compareWithListing found. */
export interface Comparison {
  files: number;
  bytes: number;
  treeDigest: string;
  problems: string[];
}

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * compareWithListing checks a restored tree against the snapshot's listing: every listed path exists with
 * its type (and size, for files), and nothing is there that the snapshot does not list. It also hashes
 * every file into a tree digest, so two drills of one snapshot can be compared and a drill's record
 * says exactly what it saw.
 */
export async function compareWithListing(root: string, nodes: ResticNode[]): Promise<Comparison> {
  const problems: string[] = [];
  const listed = new Map(nodes.map((n) => [n.path, n]));
  const seen = new Set<string>();
  const tree = createHash('sha256');
  let files = 0;
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    const entries = (await readdir(join(root, rel))).sort();
    for (const name of entries) {
      const path = `${rel}/${name}`;
      const full = join(root, path);
      const st = await lstat(full);
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
      seen.add(path);
      const want = listed.get(path);
      if (!want) {
        problems.push(`${path} is not in the snapshot`);
        continue;
      }
      if (want.type !== type) problems.push(`${path} is a ${type}, the snapshot has a ${want.type}`);
      if (type === 'file') {
        files += 1;
        bytes += st.size;
        if (want.size !== undefined && want.size !== st.size) problems.push(`${path} has ${st.size} bytes, the snapshot has ${want.size}`);
        tree.update(`${path}\0file\0${await fileSha256(full)}\n`);
      } else {
        tree.update(`${path}\0${type}\n`);
      }
      if (type === 'dir') await walk(path);
    }
  };
  await walk('');
  for (const p of listed.keys()) if (!seen.has(p)) problems.push(`${p} is in the snapshot but was not restored`);
  return { files, bytes, treeDigest: tree.digest('hex'), problems };
}

/** treeDigestOf hashes a directory the way a drill does (for comparing a source with its restore). */
export async function treeDigestOf(root: string): Promise<{ digest: string; files: number; bytes: number }> {
  // A listing that matches whatever is there, so the comparison reports nothing and only hashes.
  const nodes: ResticNode[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = `${rel}/${name}`;
      const st = await lstat(join(root, path));
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
      nodes.push({ type, path, ...(type === 'file' ? { size: st.size } : {}) });
      if (type === 'dir') await walk(path);
    }
  };
  await walk('');
  const c = await compareWithListing(root, nodes);
  return { digest: c.treeDigest, files: c.files, bytes: c.bytes };
}
