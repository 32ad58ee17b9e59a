import { start, type Argv } from '../exec/index.ts';
import type { RetentionPolicy } from './retention.ts';
import { retentionArgs } from './retention.ts';

/**
 * restic, driven as data: pure functions build each argv (tested by equality), and ResticRepository runs
 * them through src/exec. The repository password never appears in argv or the environment: restic reads
 * it from its stdin (a pipe) when stdin is not a terminal, so it exists only in Ward's memory and restic's
 * and is never written to a disk or a log. Every command runs with `--json` where restic supports it, and
 * success is judged by the exit code AND the output (a backup without a summary naming its snapshot is a
 * failure, whatever the exit code said).
 */

/** RESTIC is the program run; bootstrap installs Debian's restic (0.14 on bookworm). */
export const RESTIC = 'restic';

/** REPOSITORY_KINDS are the backends Ward accepts (shared/CLI.md): a local path, sftp:, s3:, rest:. */
export type RepositoryKind = 'local' | 'sftp' | 's3' | 'rest';

/**
 * repositoryKind returns the backend of a restic repository string, or undefined when Ward does not accept
 * it. A local path must be absolute (the server's working directory is not something to depend on).
 */
export function repositoryKind(repo: string): RepositoryKind | undefined {
  if (repo.length === 0 || repo.length > 1024 || /[\u0000-\u001f\u007f]/.test(repo)) return undefined;
  if (repo.startsWith('/')) return 'local';
  if (/^sftp:[^/\s]+:.+/.test(repo) || /^sftp:\/\/[^/\s]+\/.+/.test(repo)) return 'sftp';
  if (/^s3:(https?:\/\/)?[^/\s]+\/[^\s]+/.test(repo)) return 's3';
  if (/^rest:https?:\/\/[^\s]+/.test(repo)) return 'rest';
  return undefined;
}

/**
 * redactRepository hides a password in a repository URL (`rest:https://user:secret@host/` →
 * `rest:https://user:***@host/`), for logs, audit details and answers.
 */
export function redactRepository(repo: string): string {
  return repo.replace(/^((?:rest:|s3:|sftp:)?[a-z][a-z0-9+.-]*:\/\/[^/:@\s]*):[^@/\s]*@/i, '$1:***@');
}

/** SnapshotRef selects snapshots by Ward's tags, so one repository holds every volume of an org. */
export function volumeTag(volumeId: string): string {
  return `ward-volume=${volumeId}`;
}

/** baseArgs are the flags every command gets: the repository, JSON output, no cache, no progress bars. */
export function baseArgs(repo: string, opts: { cacheDir?: string } = {}): string[] {
  return ['--repo=' + repo, '--json', '--quiet', ...(opts.cacheDir ? ['--cache-dir=' + opts.cacheDir] : ['--no-cache'])];
}

export interface BackupArgs {
  /** tags are added to the snapshot (the volume tag first). */
  tags: string[];
  /** host is the snapshot's hostname; Ward sets the volume id so snapshots do not depend on which host made them. */
  host: string;
  /** time backdates the snapshot (tests of retention); restic's format `YYYY-MM-DD HH:MM:SS`. */
  time?: string;
}

/** backupArgv backs up the current directory (the volume's root, as cwd), so snapshot paths are relative to it. */
export function backupArgv(repo: string, a: BackupArgs, opts?: { cacheDir?: string }): Argv {
  return [RESTIC, ...baseArgs(repo, opts), 'backup', '--host=' + a.host, ...a.tags.map((t) => '--tag=' + t), ...(a.time ? ['--time=' + a.time] : []), '.'];
}

export function initArgv(repo: string, opts?: { cacheDir?: string }): Argv {
  return [RESTIC, ...baseArgs(repo, opts), 'init'];
}

export function snapshotsArgv(repo: string, tag: string | undefined, opts?: { cacheDir?: string }): Argv {
  return [RESTIC, ...baseArgs(repo, opts), 'snapshots', ...(tag ? ['--tag=' + tag] : [])];
}

/**
 * forgetArgv applies a policy to one volume's snapshots: `--tag` selects them and `--group-by ''` puts
 * them in one group whatever their paths or hosts were. Pruning is a separate command (pruneArgv), so
 * this one's JSON answer is not mixed with prune's prose.
 */
export function forgetArgv(repo: string, volumeId: string, p: RetentionPolicy, opts?: { cacheDir?: string }): Argv {
  return [RESTIC, ...baseArgs(repo, opts), 'forget', '--tag=' + volumeTag(volumeId), '--group-by=', ...retentionArgs(p)];
}

export function pruneArgv(repo: string, opts?: { cacheDir?: string }): Argv {
  return [RESTIC, ...baseArgs(repo, opts), 'prune'];
}

/** checkArgv checks the repository's structure and reads back `subset` of its data (`10%`, `1/5`, `500M`). */
export function checkArgv(repo: string, subset: string | undefined, opts?: { cacheDir?: string }): Argv {
  return [RESTIC, ...baseArgs(repo, opts), 'check', ...(subset ? ['--read-data-subset=' + subset] : [])];
}

/** restoreArgv restores a snapshot into target; `--verify` re-reads every restored file against the snapshot's blob hashes. */
export function restoreArgv(repo: string, snapshotId: string, target: string, opts?: { cacheDir?: string }): Argv {
  return [RESTIC, ...baseArgs(repo, opts), 'restore', snapshotId, '--target=' + target, '--verify'];
}

export function lsArgv(repo: string, snapshotId: string, opts?: { cacheDir?: string }): Argv {
  return [RESTIC, ...baseArgs(repo, opts), 'ls', snapshotId];
}

/** ResticSnapshot is one entry of `restic snapshots --json`. */
export interface ResticSnapshot {
  id: string;
  short_id: string;
  time: string;
  hostname: string;
  tags?: string[];
  paths: string[];
}

/** ResticSummary is the last line of `restic backup --json`. */
export interface ResticSummary {
  snapshot_id: string;
  files_new: number;
  files_changed: number;
  files_unmodified: number;
  total_files_processed: number;
  total_bytes_processed: number;
  data_added: number;
  total_duration: number;
}

/** ResticNode is one file, directory or link in `restic ls --json`. */
export interface ResticNode {
  type: string;
  path: string;
  size?: number;
}

/**
 * ResticError is a restic command that failed; `kind` says why when restic told us, so callers can give
 * the right hint. Its message quotes restic's stderr (never the password: restic does not print it).
 */
export class ResticError extends Error {
  readonly kind: 'wrong_password' | 'no_repository' | 'already_initialized' | 'killed' | 'timeout' | 'incomplete' | 'failed';
  readonly exitCode: number | null;
  constructor(kind: ResticError['kind'], message: string, exitCode: number | null) {
    super(message);
    this.name = 'ResticError';
    this.kind = kind;
    this.exitCode = exitCode;
  }
}

export interface ResticRunOptions {
  /** cwd is the directory restic runs in (the volume's root for a backup). */
  cwd?: string;
  /** timeoutMs kills restic after this long; default 6 h (a backup of a large volume is slow, not stuck). */
  timeoutMs?: number;
  /** onSpawn sees restic's pid once it runs (tests kill it mid-backup). */
  onSpawn?: (pid: number) => void;
  /** onLine sees each stdout line (ls of a large snapshot is streamed, not buffered). */
  onLine?: (line: string) => void;
  /** signal stops restic (SIGTERM, then SIGKILL 10 s later) when aborted. */
  signal?: AbortSignal;
}

export interface ResticResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** lines are stdout's lines, unless onLine took them. */
  lines: string[];
  /** stderr is the last 16 KiB of restic's stderr. */
  stderr: string;
}

const STDERR_TAIL = 16 * 1024;

/**
 * resticEnv is the whole environment restic gets: nothing of Ward's own environment leaks in (a stray
 * RESTIC_PASSWORD or RESTIC_REPOSITORY would override what Ward passes), just what a process needs.
 */
export function resticEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: process.env.HOME ?? '/root',
    LANG: 'C.UTF-8',
    ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
  };
}

/**
 * runRestic runs one restic argv with the password on stdin and collects its output. It never throws for
 * a non-zero exit (the caller decides what a code means); it rejects only when restic cannot start.
 */
export function runRestic(argv: Argv, password: Buffer, o: ResticRunOptions = {}): Promise<ResticResult> {
  return new Promise((resolve, reject) => {
    const child = start(argv, { cwd: o.cwd, env: resticEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let partial = '';
    let stderr = '';
    let settled = false;
    const take = (line: string) => {
      if (line.length === 0) return;
      if (o.onLine) o.onLine(line);
      else lines.push(line);
    };
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      partial += chunk;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        take(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL);
    });
    // restic may exit before reading its stdin (a missing repository): a broken pipe is not our failure.
    child.stdin!.on('error', () => {});
    child.stdin!.end(Buffer.concat([password, Buffer.from('\n')]));
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      killTimer.unref();
    };
    const timeout = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs ?? 6 * 3600_000);
    timeout.unref();
    let timedOut = false;
    o.signal?.addEventListener('abort', stop, { once: true });
    child.on('spawn', () => {
      if (child.pid !== undefined) o.onSpawn?.(child.pid);
    });
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      reject(new ResticError('failed', `restic could not start: ${(e as NodeJS.ErrnoException).code ?? e.message}`, null));
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      if (killTimer) clearTimeout(killTimer);
      o.signal?.removeEventListener('abort', stop);
      take(partial);
      if (timedOut) stderr += `\n(killed by Ward after ${o.timeoutMs ?? 6 * 3600_000} ms)`;
      resolve({ code, signal, lines, stderr });
    });
  });
}

/** stderrTail is the last few meaningful lines restic printed, for messages. */
export function stderrTail(stderr: string, n = 4): string {
  return stderr
    .split('\n')
    // restic may quote the repository URL; a password in it never reaches a message or a log.
    .map((l) => l.trim().replace(/([a-z][a-z0-9+.-]*:\/\/[^/:@\s]*):[^@/\s]*@/gi, '$1:***@'))
    .filter((l) => l.length > 0 && !l.startsWith('reading repository password'))
    .slice(-n)
    .join(' | ');
}

/** classify turns a failed run into a ResticError whose kind says what happened. */
export function classify(what: string, r: ResticResult): ResticError {
  const tail = stderrTail(r.stderr);
  if (r.signal) return new ResticError('killed', `${what}: restic was killed by ${r.signal}${tail ? `: ${tail}` : ''}`, null);
  if (/wrong password or no key found|empty password is not a password/i.test(r.stderr)) return new ResticError('wrong_password', `${what}: the repository does not open with this org's backup key (wrong password)`, r.code);
  if (/config (file )?already exists/i.test(r.stderr)) return new ResticError('already_initialized', `${what}: the repository is initialized already`, r.code);
  if (/Is there a repository at the following location|unable to open config file|does not exist/i.test(r.stderr)) {
    return new ResticError('no_repository', `${what}: there is no restic repository at the target${tail ? `: ${tail}` : ''}`, r.code);
  }
  if (/killed by Ward after/.test(r.stderr)) return new ResticError('timeout', `${what}: restic took too long and was stopped`, r.code);
  return new ResticError('failed', `${what}: restic exited with ${r.code}${tail ? `: ${tail}` : ''}`, r.code);
}

/** parseJsonLines parses the lines that are JSON objects or arrays, skipping restic's occasional prose. */
export function parseJsonLines(lines: string[]): unknown[] {
  const out: unknown[] = [];
  for (const l of lines) {
    const t = l.trim();
    if (!t.startsWith('{') && !t.startsWith('[')) continue;
    try {
      out.push(JSON.parse(t));
    } catch {
      // A truncated line (restic killed mid-write) is not a result.
    }
  }
  return out;
}

/** BackupOutcome is a backup restic says it finished, with the summary that proves it. */
export interface BackupOutcome {
  summary: ResticSummary;
  /** errors are files restic could not read (it exits 3 then: the snapshot is incomplete). */
  errors: string[];
}

/**
 * judgeBackup decides whether a `restic backup --json` run succeeded: exit code 0 AND a summary line
 * with a snapshot id. Exit 3 (some files unreadable) is a failure with the snapshot named, because a
 * backup that silently lacks files is what the issue calls reporting success that did not happen.
 */
export function judgeBackup(r: ResticResult): BackupOutcome {
  const msgs = parseJsonLines(r.lines) as Array<Record<string, unknown>>;
  const summary = msgs.find((m) => m.message_type === 'summary') as (ResticSummary & { message_type: string }) | undefined;
  const errors = msgs
    .filter((m) => m.message_type === 'error')
    .map((m) => `${String(m.item ?? '')}: ${String((m.error as { message?: string } | undefined)?.message ?? m.error ?? 'error')}`);
  if (r.signal || r.code !== 0) {
    if (r.code === 3 && summary?.snapshot_id) {
      throw new ResticError('incomplete', `backup: snapshot ${summary.snapshot_id} is incomplete: restic could not read ${errors.length} file(s)${errors[0] ? ` (${errors[0]})` : ''}`, 3);
    }
    throw classify('backup', r);
  }
  if (!summary || typeof summary.snapshot_id !== 'string' || !/^[0-9a-f]{8,64}$/.test(summary.snapshot_id)) {
    throw new ResticError('failed', 'backup: restic exited 0 but printed no summary with a snapshot id; treating it as failed', r.code);
  }
  return { summary, errors };
}
