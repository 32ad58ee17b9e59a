/**
 * The on-host record of instances, shared by CrunRuntime and ProcessRuntime. Each instance has a
 * directory holding what survives an agent restart: its record (meta.json), the exit status its monitor
 * writes (exit), the final status once read (status.json) and whether a stop was asked for. The agent
 * reads these files instead of holding state in memory, so recover() is just reading them again.
 */
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { ExitReason, ExitStatus, InstanceInfo } from './types.ts';

/** InstanceRecord is meta.json: written once the instance runs. */
export interface InstanceRecord {
  id: string;
  labels: Record<string, string>;
  addresses: string[];
  startedAt: string;
  /** pid is the host pid of the instance's first process; pidStart guards against pid reuse. */
  pid: number;
  pidStart: number;
  /** monitorPid is monitor.sh's pid: while it lives, an exit status is still to come. */
  monitorPid: number;
  monitorStart: number;
  /** uptimeMs is the host's uptime at start, to match kernel log records (OOM kills) to this run. */
  uptimeMs: number;
  cgroupsPath?: string;
}

export interface StoredExit {
  code: number;
  signal: NodeJS.Signals | undefined;
  reason: ExitReason;
  exitedAt: string;
}

const SIGNAL_NAMES: Record<number, NodeJS.Signals> = Object.fromEntries(
  Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

/** signalForCode names the signal behind a shell-style exit code (128+N), if it is one. */
export function signalForCode(code: number): NodeJS.Signals | undefined {
  return code > 128 && code < 128 + 65 ? SIGNAL_NAMES[code - 128] : undefined;
}

/**
 * exitStatusFor classifies an exit code. A stop the runtime was asked for wins (the supervisor must not
 * restart it); then an OOM kill the kernel recorded; then a signal; else the process exited by itself.
 */
export function exitStatusFor(code: number, facts: { stopRequested: boolean; oomKilled: boolean; exitedAt: Date }): ExitStatus {
  const signal = signalForCode(code);
  let reason: ExitReason = code < 0 ? 'unknown' : signal ? 'signal' : 'exited';
  if (facts.oomKilled && signal === 'SIGKILL') reason = 'oom';
  if (facts.stopRequested) reason = 'stopped';
  return { code, signal, reason, exitedAt: facts.exitedAt };
}

/** procStartTime reads field 22 (starttime) of /proc/<pid>/stat, or undefined when the pid is gone. */
export function procStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]);
  } catch {
    return undefined;
  }
}

/** isSameProcess reports whether pid still names the process that had start time `start`. */
export function isSameProcess(pid: number, start: number): boolean {
  return pid > 0 && procStartTime(pid) === start;
}

/** lost: neither the monitor nor the instance's process lives, and no exit status was written. */
function lost(record: InstanceRecord): boolean {
  return !isSameProcess(record.monitorPid, record.monitorStart) && !isSameProcess(record.pid, record.pidStart);
}

/** hostUptimeMs reads /proc/uptime. */
export function hostUptimeMs(): number {
  return Math.round(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000);
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** writeAtomic writes a file whole or not at all (temp file, then rename). */
export async function writeAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  // Unique per writer: two runtimes over the same state (an agent and its successor) may race here.
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

/** OomCheck tells whether the kernel OOM-killed the instance during this run (CrunRuntime reads the kernel log). */
export type OomCheck = (record: InstanceRecord) => Promise<boolean>;

const POLL_MS = 250;

/**
 * InstanceTracker owns the instance directories under one root and the watches on their exit files.
 * Directory names are instance ids, which callers validate (no slashes, no dots).
 */
export class InstanceTracker {
  readonly root: string;
  #oomCheck: OomCheck | undefined;
  #watches = new Map<string, { done: Promise<void>; check: () => void; close: () => void }>();
  #statuses = new Map<string, Promise<ExitStatus | undefined>>();

  constructor(root: string, options: { oomCheck?: OomCheck } = {}) {
    this.root = root;
    this.#oomCheck = options.oomCheck;
  }

  dir(id: string): string {
    return join(this.root, id);
  }

  file(id: string, name: 'meta.json' | 'exit' | 'status.json' | 'stop-requested' | 'pid' | 'crun.log' | 'config.json'): string {
    return join(this.root, id, name);
  }

  /**
   * create makes the instance's directory; it fails if one exists (the id is in use). Mode 0711: the
   * instance's mapped root must traverse it to reach its rootfs, but may not list it.
   */
  async create(id: string): Promise<string> {
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    try {
      await mkdir(this.dir(id), { mode: 0o711 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`instance ${id} exists already on this host`);
      throw e;
    }
    // A new run of a reused id: nothing watched or read of an earlier run may answer for this one.
    this.forget(id);
    return this.dir(id);
  }

  async writeRecord(record: InstanceRecord): Promise<void> {
    await writeAtomic(this.file(record.id, 'meta.json'), JSON.stringify(record));
  }

  async readRecord(id: string): Promise<InstanceRecord | undefined> {
    const text = await readText(this.file(id, 'meta.json'));
    return text === undefined ? undefined : (JSON.parse(text) as InstanceRecord);
  }

  /** list returns the ids with a directory, split into those with a record and half-made ones without. */
  async list(): Promise<{ complete: string[]; incomplete: string[] }> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { complete: [], incomplete: [] };
      throw e;
    }
    const complete: string[] = [];
    const incomplete: string[] = [];
    for (const name of names.sort()) {
      if ((await readText(this.file(name, 'meta.json'))) === undefined) incomplete.push(name);
      else complete.push(name);
    }
    return { complete, incomplete };
  }

  async markStopRequested(id: string): Promise<void> {
    await writeFile(this.file(id, 'stop-requested'), '', { mode: 0o600 });
  }

  /**
   * watch starts (once per id) watching for the instance's end: an inotify watch on its directory, a
   * slow poll as a safety net, and check() for callers that learn of it first (their child exited).
   */
  watch(id: string): { done: Promise<void>; check: () => void } {
    const existing = this.#watches.get(id);
    if (existing) return existing;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    let watcher: FSWatcher | undefined;
    let timer: NodeJS.Timeout | undefined;
    let finished = false;
    const close = () => {
      finished = true;
      watcher?.close();
      if (timer) clearInterval(timer);
    };
    const check = () => {
      if (finished) return;
      void this.#ended(id).then(
        (ended) => {
          if (ended && !finished) {
            close();
            resolve();
          }
        },
        () => {},
      );
    };
    try {
      watcher = watch(this.dir(id), () => check());
      watcher.on('error', () => {});
      watcher.unref();
    } catch {
      // The directory is gone: check() settles it.
    }
    timer = setInterval(check, POLL_MS);
    timer.unref();
    const entry = { done, check, close };
    this.#watches.set(id, entry);
    check();
    return entry;
  }

  /**
   * #ended: the monitor wrote the exit file, or both the monitor and the instance's process are gone
   * (someone killed the monitor: the status is unknown). A live instance whose monitor was killed still
   * counts as running.
   */
  async #ended(id: string): Promise<boolean> {
    if ((await readText(this.file(id, 'exit'))) !== undefined) return true;
    const record = await this.readRecord(id);
    if (!record) return (await readText(this.file(id, 'status.json'))) !== undefined || !(await this.#exists(id));
    return lost(record);
  }

  async #exists(id: string): Promise<boolean> {
    try {
      await readdir(this.dir(id));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * exitStatus is the instance's final status, or undefined while it runs. The first reading after the
   * end classifies it (stop asked for, OOM, signal) and stores it, so later readings, after an agent
   * restart too, agree.
   */
  exitStatus(id: string): Promise<ExitStatus | undefined> {
    const pending = this.#statuses.get(id);
    if (pending) return pending;
    const p = this.#readExitStatus(id).then((s) => {
      if (s === undefined) this.#statuses.delete(id);
      return s;
    });
    this.#statuses.set(id, p);
    return p;
  }

  async #readExitStatus(id: string): Promise<ExitStatus | undefined> {
    const stored = await readText(this.file(id, 'status.json'));
    if (stored !== undefined) {
      const s = JSON.parse(stored) as StoredExit;
      // JSON drops an undefined signal; put the key back so every reader sees the same object.
      return { code: s.code, signal: s.signal ?? undefined, reason: s.reason, exitedAt: new Date(s.exitedAt) };
    }
    const record = await this.readRecord(id);
    if (!record) return undefined;
    const exitText = await readText(this.file(id, 'exit'));
    let code: number;
    // The exit file's time is when the instance ended, the same for every reader (not when one looked).
    let exitedAt = new Date();
    if (exitText !== undefined) {
      code = Number(exitText.trim());
      exitedAt = (await stat(this.file(id, 'exit'))).mtime;
    } else if (lost(record)) code = -1;
    else return undefined;
    const stopRequested = (await readText(this.file(id, 'stop-requested'))) !== undefined;
    const oomKilled = code === 137 && this.#oomCheck ? await this.#oomCheck(record).catch(() => false) : false;
    const status = exitStatusFor(code, { stopRequested, oomKilled, exitedAt });
    const out: StoredExit = { ...status, exitedAt: status.exitedAt.toISOString() };
    await writeAtomic(this.file(id, 'status.json'), JSON.stringify(out));
    return status;
  }

  /** wait resolves with the exit status once the instance has ended; it rejects for an unknown id. */
  async wait(id: string): Promise<ExitStatus> {
    if (!(await this.readRecord(id))) throw new Error(`no instance ${id} on this host`);
    await this.watch(id).done;
    const status = await this.exitStatus(id);
    if (!status) throw new Error(`instance ${id} ended but its status cannot be read`);
    return status;
  }

  /** info builds an InstanceInfo from the record and the exit status, or undefined for an unknown id. */
  async info(id: string): Promise<InstanceInfo | undefined> {
    const record = await this.readRecord(id);
    if (!record) return undefined;
    const exit = await this.exitStatus(id);
    return {
      id,
      state: exit ? 'exited' : 'running',
      pid: exit ? undefined : record.pid,
      startedAt: new Date(record.startedAt),
      exit,
      labels: record.labels,
      addresses: record.addresses,
    };
  }

  /** forget stops watching an instance and drops what is cached about it. */
  forget(id: string): void {
    this.#watches.get(id)?.close();
    this.#watches.delete(id);
    this.#statuses.delete(id);
  }

  async remove(id: string): Promise<void> {
    this.forget(id);
    await rm(this.dir(id), { recursive: true, force: true });
  }
}
