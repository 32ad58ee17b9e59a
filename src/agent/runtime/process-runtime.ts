/**
 * ProcessRuntime is the Runtime for tests about scheduling and supervision: each instance is a real
 * host process, with real exits, signals, timeouts, output files and recovery after the runtime object
 * is dropped, but no isolation at all (no namespaces, no seccomp, no limits enforced). Never use it in a
 * test about isolation, and never in production.
 *
 * process.args run on the host as given (args[0] looked up in the host's PATH), in
 * `<rootfs>/<cwd>` when that directory exists and in rootfs otherwise, with exactly process.env (plus
 * the host's PATH when it has none). Like CrunRuntime it runs each instance under monitor.sh, which
 * records the exit status, so recover() works the same way.
 */
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism, totalmem } from 'node:os';
import { run, start as spawnProcess } from '../../exec/index.ts';
import { monitorArgv } from './crun/commands.ts';
import { InstanceTracker, hostUptimeMs, isSameProcess, procStartTime, type InstanceRecord } from './state.ts';
import {
  DEFAULT_ID_MAPPING,
  type ExecOptions,
  type ExecResult,
  type ExitStatus,
  type InstanceHandle,
  type InstanceInfo,
  type InstanceSpec,
  type InstanceStats,
  type OutputTarget,
  type Runtime,
  type StopOptions,
} from './types.ts';
import { validateSpec } from './validate.ts';

export interface ProcessRuntimeOptions {
  /** stateDir holds the instance records (a temp dir of the test). */
  stateDir: string;
}

const CLOCK_TICKS_PER_SECOND = 100;
const KILL_GRACE_MS = 10_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function raceTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** childrenOf lists a process's children (the monitor has exactly one: the instance's process). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

export class ProcessRuntime implements Runtime {
  readonly #tracker: InstanceTracker;
  readonly #specs = new Map<string, InstanceSpec>();

  constructor(options: ProcessRuntimeOptions) {
    this.#tracker = new InstanceTracker(options.stateDir);
  }

  async start(spec: InstanceSpec): Promise<InstanceHandle> {
    validateSpec(spec, { memoryBytes: totalmem(), cpus: availableParallelism() }, DEFAULT_ID_MAPPING);
    if (!existsSync(spec.rootfs)) throw new TypeError(`rootfs ${spec.rootfs} does not exist`);
    const t = this.#tracker;
    const { id } = spec;
    await t.create(id);
    try {
      const cwd = existsSync(join(spec.rootfs, spec.process.cwd)) ? join(spec.rootfs, spec.process.cwd) : spec.rootfs;
      const env = { ...spec.process.env };
      env.PATH ??= process.env.PATH ?? '/usr/bin:/bin';
      const opened: number[] = [];
      const fdFor = (o: OutputTarget): number => {
        if ('fd' in o) return o.fd;
        const fd = openSync(o.file, 'a', 0o640);
        opened.push(fd);
        return fd;
      };
      let child;
      try {
        const out = fdFor(spec.stdout);
        const err = 'file' in spec.stderr && 'file' in spec.stdout && spec.stderr.file === spec.stdout.file ? out : fdFor(spec.stderr);
        child = spawnProcess(monitorArgv(t.file(id, 'exit'), spec.process.args as [string, ...string[]]), {
          cwd,
          env,
          detached: true,
          stdio: ['ignore', out, err],
        });
      } finally {
        for (const fd of opened) closeSync(fd);
      }
      const monitorPid = child.pid!;
      let exited = false;
      // This run's watch only: by the time an earlier run's monitor is reaped, the id may be another run's.
      let watching: { check: () => void } | undefined;
      child.once('exit', () => {
        exited = true;
        watching?.check();
      });
      child.once('error', () => (exited = true));
      // The instance's process is the monitor's only child; if the program cannot run, the monitor ends
      // at once and the instance is reported as exited (127), as a container whose app is missing.
      let pid = 0;
      for (let delay = 1; pid === 0 && !exited; delay = Math.min(delay * 2, 10)) {
        pid = childrenOf(monitorPid)[0] ?? 0;
        if (pid === 0) await sleep(delay);
      }
      if (pid === 0) pid = monitorPid;
      const startedAt = new Date();
      const record: InstanceRecord = {
        id,
        labels: { ...(spec.labels ?? {}) },
        addresses: [...(spec.network?.addresses ?? [])],
        startedAt: startedAt.toISOString(),
        pid,
        pidStart: procStartTime(pid) ?? 0,
        monitorPid,
        monitorStart: procStartTime(monitorPid) ?? 0,
        uptimeMs: hostUptimeMs(),
      };
      await t.writeRecord(record);
      this.#specs.set(id, spec);
      watching = t.watch(id);
      child.unref();
      return { id, pid, startedAt };
    } catch (e) {
      await t.remove(id);
      throw e;
    }
  }

  async #record(id: string): Promise<InstanceRecord> {
    const record = await this.#tracker.readRecord(id);
    if (!record) throw new Error(`no instance ${id} on this host`);
    return record;
  }

  wait(id: string): Promise<ExitStatus> {
    return this.#tracker.wait(id);
  }

  async stop(id: string, options: StopOptions = {}): Promise<ExitStatus> {
    const record = await this.#record(id);
    const already = await this.#tracker.exitStatus(id);
    if (already) return already;
    const done = this.#tracker.watch(id).done;
    await this.#tracker.markStopRequested(id);
    const alive = () => isSameProcess(record.pid, record.pidStart);
    if (alive()) signal(record.pid, options.signal ?? 'SIGTERM');
    if (!(await raceTimeout(done, options.timeoutMs ?? 5000))) {
      if (alive()) signal(record.pid, 'SIGKILL');
      if (!(await raceTimeout(done, KILL_GRACE_MS))) throw new Error(`instance ${id} did not end after SIGKILL`);
    }
    return this.#tracker.wait(id);
  }

  async destroy(id: string): Promise<void> {
    const record = await this.#tracker.readRecord(id);
    if (record && !(await this.#tracker.exitStatus(id))) await this.stop(id, { signal: 'SIGKILL', timeoutMs: KILL_GRACE_MS }).catch(() => {});
    this.#specs.delete(id);
    await this.#tracker.remove(id);
  }

  inspect(id: string): Promise<InstanceInfo | undefined> {
    return this.#tracker.info(id);
  }

  async recover(): Promise<InstanceInfo[]> {
    const { complete, incomplete } = await this.#tracker.list();
    for (const id of incomplete) await this.#tracker.remove(id);
    const out: InstanceInfo[] = [];
    for (const id of complete) {
      const info = await this.#tracker.info(id);
      if (!info) continue;
      if (info.state === 'running') this.#tracker.watch(id);
      out.push(info);
    }
    return out;
  }

  /** stats reads /proc for the instance's process (its descendants are not counted); limits are as asked, not enforced. */
  async stats(id: string): Promise<InstanceStats> {
    const record = await this.#record(id);
    if ((await this.#tracker.exitStatus(id)) || !isSameProcess(record.pid, record.pidStart)) throw new Error(`instance ${id} is not running`);
    const status = readFileSync(`/proc/${record.pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${record.pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    const spec = this.#specs.get(id);
    return {
      memoryBytes: field('VmRSS') * 1024,
      memoryLimitBytes: spec?.resources.memoryBytes,
      cpuNanos: (ticks * 1e9) / CLOCK_TICKS_PER_SECOND,
      pids: field('Threads'),
      pidsLimit: spec?.resources.pids,
      oomKills: 0,
    };
  }

  async exec(id: string, argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    await this.#record(id);
    if (await this.#tracker.exitStatus(id)) throw new Error(`instance ${id} is not running`);
    if (argv.length === 0) throw new TypeError('exec needs a command');
    const spec = this.#specs.get(id);
    const env = { ...(spec?.process.env ?? {}), ...(options.env ?? {}) };
    env.PATH ??= process.env.PATH ?? '/usr/bin:/bin';
    const r = await run(argv as [string, ...string[]], { env, timeoutMs: options.timeoutMs ?? 30_000, allowFailure: true, ...(spec ? { cwd: spec.rootfs } : {}) });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }
}
