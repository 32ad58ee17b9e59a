/**
 * CrunRuntime runs each instance as an OCI container under crun, with every confinement in spec.ts.
 *
 * Per instance, on a tmpfs of Ward's own (`<runDir>/runtime/instances/<id>/`): the bundle (config.json, which
 * holds the env values, mode 0600), the instance's /etc files, its root (an overlay: the image's
 * read-only snapshot below, an empty directory above) and the state the monitor and the tracker keep.
 * crun's own state (`--root`) is `<runDir>/runtime/crun`, apart from any other crun user on the host.
 *
 * Each instance runs as `sh monitor.sh EXIT_FILE crun run …` in a session of its own: crun stays in the
 * foreground as the container's parent and exits with its status, which the monitor records. Nothing
 * of this is a child the agent must keep, so the agent can restart and recover() finds it all again.
 */
import { closeSync, existsSync, openSync, readFileSync, statfsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run, start as spawnProcess, type Argv } from '../../../exec/index.ts';
import { UserError } from '../../../core/errors.ts';
import {
  DEFAULT_ID_MAPPING,
  DEFAULT_NOFILE,
  type ExecOptions,
  type ExecResult,
  type ExitStatus,
  type IdMapping,
  type InstanceHandle,
  type InstanceInfo,
  type InstanceSpec,
  type InstanceStats,
  type OutputTarget,
  type Runtime,
  type StopOptions,
} from '../types.ts';
import { InstanceTracker, hostUptimeMs, procStartTime, type InstanceRecord } from '../state.ts';
import { validateSpec } from '../validate.ts';
import { cgroupFiles, detectCgroupLayout, isMountPoint, parseKeyedCounter, parseLimit, type CgroupLayout } from './cgroups.ts';
import {
  crunDeleteArgv,
  crunExecArgv,
  crunKillArgv,
  crunListArgv,
  crunRunArgv,
  monitorArgv,
  overlayMountArgv,
  tmpfsMountArgv,
  umountArgv,
  type CrunContext,
} from './commands.ts';
import { oomKilledIn, readKmsg } from './oom.ts';
import { execProcess, hostsFile, ociSpec, resolvConf, type OciConfig } from './spec.ts';
import { seccompArch, type SeccompArch } from './seccomp.ts';

/** TMPFS_MAGIC is statfs(2)'s f_type of a tmpfs (linux/magic.h). */
export const TMPFS_MAGIC = 0x01021994;

/** DEFAULT_INIT is Debian's static tini, run as each instance's pid 1 (package `tini`). */
export const DEFAULT_INIT = '/usr/bin/tini-static';

export interface CrunRuntimeOptions {
  /**
   * runDir is Ward's run-time directory (default /run/ward). The runtime keeps its state in
   * `<runDir>/runtime` and mounts a tmpfs there unless that already is on one.
   */
  runDir?: string;
  /** crun is the crun program; default `crun` from PATH. */
  crun?: string;
  /** initPath is a static init binary on the host; null runs the app itself as pid 1. Default DEFAULT_INIT. */
  initPath?: string | null;
  idMapping?: IdMapping;
  /** cgroupParent is the cgroup under which instances get theirs (`/ward/ins_…`). Default /ward. */
  cgroupParent?: string;
  /** startTimeoutMs bounds how long start waits for crun to report the container's pid. Default 30 s. */
  startTimeoutMs?: number;
}

interface Ready {
  ctx: CrunContext;
  layout: CgroupLayout;
  arch: SeccompArch;
  nofileLimit: number;
  initPath: string | undefined;
}

const KILL_GRACE_MS = 10_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** raceTimeout resolves true when p settles within ms, false otherwise. */
async function raceTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** hardNofileLimit reads this process's hard RLIMIT_NOFILE: an instance cannot be given more than crun has. */
function hardNofileLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const hard = line?.trim().split(/\s+/)[4];
    return hard === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(hard) || DEFAULT_NOFILE;
  } catch {
    return DEFAULT_NOFILE;
  }
}

export class CrunRuntime implements Runtime {
  readonly runDir: string;
  readonly stateRoot: string;
  readonly #options: CrunRuntimeOptions;
  readonly #mapping: IdMapping;
  readonly #cgroupParent: string;
  readonly #tracker: InstanceTracker;
  #ready: Promise<Ready> | undefined;
  /** #starting holds ids whose start is in progress here, which recover() must leave alone. */
  readonly #starting = new Set<string>();

  constructor(options: CrunRuntimeOptions = {}) {
    this.#options = options;
    this.runDir = options.runDir ?? '/run/ward';
    this.stateRoot = join(this.runDir, 'runtime');
    this.#mapping = options.idMapping ?? DEFAULT_ID_MAPPING;
    this.#cgroupParent = options.cgroupParent ?? '/ward';
    this.#tracker = new InstanceTracker(join(this.stateRoot, 'instances'), { oomCheck: (r) => this.#oomKilled(r) });
  }

  /** cgroupsPath is where an instance's cgroup lives in each hierarchy. */
  cgroupsPath(id: string): string {
    return `${this.#cgroupParent}/${id}`;
  }

  /** layout reports the host's cgroup layout as detected (for tests and diagnostics). */
  async layout(): Promise<CgroupLayout> {
    return (await this.#init()).layout;
  }

  #init(): Promise<Ready> {
    this.#ready ??= this.#setUp().catch((e) => {
      this.#ready = undefined;
      throw e;
    });
    return this.#ready;
  }

  async #setUp(): Promise<Ready> {
    const crun = this.#options.crun ?? 'crun';
    try {
      await run([crun, '--version'], { timeoutMs: 10_000 });
    } catch (e) {
      throw new UserError('unavailable', `crun cannot be run (${(e as Error).message}).`, {
        hint: 'Install it with scripts/bootstrap (Debian package crun).',
        cause: e,
      });
    }
    // Bundles hold env values: they must live on a tmpfs, never a disk, and /run is not always one.
    // The instances' mapped root must be able to traverse every directory down to its rootfs.
    await mkdir(this.stateRoot, { recursive: true, mode: 0o711 });
    const runDirMode = (await stat(this.runDir)).mode;
    if ((runDirMode & 0o001) === 0) await chmod(this.runDir, (runDirMode & 0o7777) | 0o011);
    if (statfsSync(this.stateRoot).type !== TMPFS_MAGIC) await run(tmpfsMountArgv(this.stateRoot, '0711'));
    await chmod(this.stateRoot, 0o711);
    await mkdir(join(this.stateRoot, 'crun'), { recursive: true, mode: 0o700 });
    await mkdir(this.#tracker.root, { recursive: true, mode: 0o711 });
    const layout = detectCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
    const initPath = this.#options.initPath === null ? undefined : (this.#options.initPath ?? DEFAULT_INIT);
    if (initPath && !existsSync(initPath)) {
      throw new UserError('unavailable', `The instance init ${initPath} is missing.`, { hint: 'Install it with scripts/bootstrap (Debian package tini).' });
    }
    return {
      ctx: { crun, stateDir: join(this.stateRoot, 'crun'), layout },
      layout,
      arch: seccompArch(process.arch),
      nofileLimit: hardNofileLimit(),
      initPath,
    };
  }

  async start(spec: InstanceSpec): Promise<InstanceHandle> {
    validateSpec(spec, { memoryBytes: totalmem(), cpus: availableParallelism() }, this.#mapping);
    const ready = await this.#init();
    const { id } = spec;
    const t = this.#tracker;
    this.#starting.add(id);
    const dir = await t.create(id).catch((e) => {
      this.#starting.delete(id);
      throw e;
    });
    let monitorPid: number | undefined;
    try {
      const rootfs = join(dir, 'rootfs');
      const paths = { rootfs, resolvConf: join(dir, 'resolv.conf'), hosts: join(dir, 'hosts'), hostname: join(dir, 'hostname') };
      await writeFile(paths.resolvConf, resolvConf(spec.dns), { mode: 0o644 });
      await writeFile(paths.hosts, hostsFile(spec), { mode: 0o644 });
      await writeFile(paths.hostname, `${spec.hostname ?? id}\n`, { mode: 0o644 });
      await this.#mountRoot(spec.rootfs, dir);

      const nofile = spec.resources.nofile ?? Math.min(DEFAULT_NOFILE, ready.nofileLimit);
      const config = ociSpec({
        spec: { ...spec, resources: { ...spec.resources, nofile } },
        paths,
        cgroupsPath: this.cgroupsPath(id),
        idMapping: this.#mapping,
        arch: ready.arch,
        ...(ready.initPath ? { initPath: ready.initPath } : {}),
      });
      await writeFile(t.file(id, 'config.json'), JSON.stringify(config), { mode: 0o600 });

      const uptimeMs = hostUptimeMs();
      const argv = monitorArgv(
        t.file(id, 'exit'),
        crunRunArgv(ready.ctx, { id, bundle: dir, pidFile: t.file(id, 'pid'), logFile: t.file(id, 'crun.log') }),
      );
      const child = this.#spawnDetached(argv, spec.stdout, spec.stderr);
      monitorPid = child.pid;
      const exited = new Promise<void>((resolve) => {
        child.once('exit', () => {
          // Reaped: its pid is free for any process now and must never be signalled again.
          monitorPid = undefined;
          resolve();
        });
        child.once('error', () => resolve());
      });
      const pid = await this.#waitForPid(id, exited);
      // This run's watch only: by the time this monitor is reaped, the id may belong to a later run.
      let watching: { check: () => void } | undefined;
      child.once('exit', () => watching?.check());
      const startedAt = new Date();
      const record: InstanceRecord = {
        id,
        labels: { ...(spec.labels ?? {}) },
        addresses: [...(spec.network?.addresses ?? [])],
        startedAt: startedAt.toISOString(),
        pid,
        pidStart: procStartTime(pid) ?? 0,
        monitorPid: child.pid!,
        monitorStart: procStartTime(child.pid!) ?? 0,
        uptimeMs,
        cgroupsPath: this.cgroupsPath(id),
      };
      await t.writeRecord(record);
      watching = t.watch(id);
      child.unref();
      return { id, pid, startedAt };
    } catch (e) {
      await this.#cleanUp(id, monitorPid).catch(() => {});
      throw e;
    } finally {
      this.#starting.delete(id);
    }
  }

  /** #mountRoot mounts the overlay root; its top directory looks like the image's (owner, mode). */
  async #mountRoot(lower: string, dir: string): Promise<void> {
    const upper = join(dir, 'upper');
    const work = join(dir, 'work');
    const target = join(dir, 'rootfs');
    const top = await stat(lower);
    for (const d of [upper, work, target]) await mkdir(d, { mode: 0o700 });
    await chown(upper, top.uid, top.gid);
    await chmod(upper, top.mode & 0o7777);
    await run(overlayMountArgv({ lower, upper, work, target }));
  }

  #spawnDetached(argv: Argv, stdout: OutputTarget, stderr: OutputTarget) {
    const opened: number[] = [];
    const fdFor = (o: OutputTarget, other?: { target: OutputTarget; fd: number }): number => {
      if ('fd' in o) return o.fd;
      if (other && 'file' in other.target && other.target.file === o.file) return other.fd;
      const fd = openSync(o.file, 'a', 0o640);
      opened.push(fd);
      return fd;
    };
    try {
      const out = fdFor(stdout);
      const err = fdFor(stderr, { target: stdout, fd: out });
      // A session of its own: the instance must not share the agent's fate (signals to its process group).
      return spawnProcess(argv, { detached: true, stdio: ['ignore', out, err] });
    } finally {
      for (const fd of opened) closeSync(fd);
    }
  }

  /** #waitForPid waits for crun's pid file; if the monitor ends first, crun failed and its log says why. */
  async #waitForPid(id: string, exited: Promise<void>): Promise<number> {
    const pidFile = this.#tracker.file(id, 'pid');
    const deadline = Date.now() + (this.#options.startTimeoutMs ?? 30_000);
    let done = false;
    void exited.then(() => (done = true));
    let delay = 1;
    for (;;) {
      try {
        const text = await readFile(pidFile, 'utf8');
        const pid = Number(text.trim());
        if (pid > 0) return pid;
      } catch {
        // Not written yet.
      }
      if (done) {
        const log = await readFile(this.#tracker.file(id, 'crun.log'), 'utf8').catch(() => '');
        throw new Error(`crun could not start instance ${id}: ${crunMessage(log) || 'it exited without a reason'}`);
      }
      if (Date.now() > deadline) throw new Error(`crun did not start instance ${id} within ${this.#options.startTimeoutMs ?? 30_000} ms`);
      await sleep(delay);
      delay = Math.min(delay * 2, 10);
    }
  }

  /** #cleanUp removes whatever a failed or abandoned start left: the container, the root mount, the directory. */
  async #cleanUp(id: string, monitorPid?: number): Promise<void> {
    const ready = await this.#init();
    await run(crunDeleteArgv(ready.ctx, id), { allowFailure: true });
    if (monitorPid) {
      try {
        process.kill(monitorPid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    await this.#unmountRoot(id);
    await this.#tracker.remove(id);
  }

  /**
   * #unmountRoot unmounts the instance's root, detaching it lazily if it stays busy, and checks it is
   * gone: the directory is removed next, and a recursive removal must never run through a mount.
   */
  async #unmountRoot(id: string): Promise<void> {
    const target = join(this.#tracker.dir(id), 'rootfs');
    const mounted = () => isMountPoint(readFileSync('/proc/self/mountinfo', 'utf8'), target);
    for (let i = 0; i < 3 && mounted(); i++) {
      const r = await run(umountArgv(target), { allowFailure: true });
      if (r.code !== 0) await sleep(50 * (i + 1));
    }
    if (mounted()) await run(umountArgv(target, { lazy: true }), { allowFailure: true });
    if (mounted()) throw new Error(`the root of instance ${id} at ${target} cannot be unmounted`);
  }

  async #oomKilled(record: InstanceRecord): Promise<boolean> {
    if (!record.cgroupsPath) return false;
    // Kernel and uptime clocks may differ by a few milliseconds; no earlier run can have ended that close.
    return oomKilledIn(readKmsg(), record.cgroupsPath, (record.uptimeMs - 50) * 1000);
  }

  async #requireKnown(id: string): Promise<InstanceRecord> {
    const record = await this.#tracker.readRecord(id);
    if (!record) throw new Error(`no instance ${id} on this host`);
    return record;
  }

  wait(id: string): Promise<ExitStatus> {
    return this.#tracker.wait(id);
  }

  async stop(id: string, options: StopOptions = {}): Promise<ExitStatus> {
    await this.#requireKnown(id);
    const already = await this.#tracker.exitStatus(id);
    if (already) return already;
    const ready = await this.#init();
    const done = this.#tracker.watch(id).done;
    await this.#tracker.markStopRequested(id);
    await run(crunKillArgv(ready.ctx, id, options.signal ?? 'SIGTERM'), { allowFailure: true });
    if (!(await raceTimeout(done, options.timeoutMs ?? 5000))) {
      await run(crunKillArgv(ready.ctx, id, 'SIGKILL'), { allowFailure: true });
      if (!(await raceTimeout(done, KILL_GRACE_MS))) throw new Error(`instance ${id} did not end after SIGKILL`);
    }
    return this.#tracker.wait(id);
  }

  async destroy(id: string): Promise<void> {
    const record = await this.#tracker.readRecord(id);
    if (record && !(await this.#tracker.exitStatus(id))) {
      await this.stop(id, { signal: 'SIGKILL', timeoutMs: KILL_GRACE_MS }).catch(() => {});
    }
    if (!existsSync(this.#tracker.dir(id))) return;
    await this.#cleanUp(id);
  }

  inspect(id: string): Promise<InstanceInfo | undefined> {
    return this.#tracker.info(id);
  }

  async recover(): Promise<InstanceInfo[]> {
    const ready = await this.#init();
    const { complete, incomplete } = await this.#tracker.list();
    // A start the agent did not finish (it died in between) left a half-made instance: remove it.
    for (const id of incomplete) if (!this.#starting.has(id)) await this.#cleanUp(id);
    // Containers in Ward's crun state without an instance directory are leftovers of the same kind.
    const listed = await run(crunListArgv(ready.ctx), { allowFailure: true });
    for (const id of listed.stdout.split('\n').map((s) => s.trim()).filter(Boolean)) {
      if (!complete.includes(id) && !this.#starting.has(id)) await run(crunDeleteArgv(ready.ctx, id), { allowFailure: true });
    }
    const out: InstanceInfo[] = [];
    for (const id of complete) {
      const info = await this.#tracker.info(id);
      if (!info) continue;
      if (info.state === 'running') this.#tracker.watch(id);
      out.push(info);
    }
    return out;
  }

  async stats(id: string): Promise<InstanceStats> {
    const record = await this.#requireKnown(id);
    if (await this.#tracker.exitStatus(id)) throw new Error(`instance ${id} is not running`);
    const { layout } = await this.#init();
    const f = cgroupFiles(layout, record.cgroupsPath ?? this.cgroupsPath(id));
    const read = (p: string) => readFile(p, 'utf8');
    const [mem, memMax, oom, cpu, pids, pidsMax] = await Promise.all([
      read(f.memoryCurrent),
      read(f.memoryLimit),
      read(f.oomEvents),
      read(f.cpuUsage),
      read(f.pidsCurrent),
      read(f.pidsMax),
    ]);
    const cpuNanos = layout.mode === 'v2' ? (parseKeyedCounter(cpu, 'usage_usec') ?? 0) * 1000 : Number(cpu.trim());
    return {
      memoryBytes: Number(mem.trim()),
      memoryLimitBytes: parseLimit(memMax),
      cpuNanos,
      pids: Number(pids.trim()),
      pidsLimit: parseLimit(pidsMax),
      oomKills: parseKeyedCounter(oom, 'oom_kill') ?? 0,
    };
  }

  async exec(id: string, argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    await this.#requireKnown(id);
    if (await this.#tracker.exitStatus(id)) throw new Error(`instance ${id} is not running`);
    if (argv.length === 0) throw new TypeError('exec needs a command');
    const ready = await this.#init();
    const config = JSON.parse(await readFile(this.#tracker.file(id, 'config.json'), 'utf8')) as OciConfig;
    // process.json carries env values: same tmpfs directory, same mode as config.json, removed after.
    const processFile = join(this.#tracker.dir(id), `exec-${randomBytes(6).toString('hex')}.json`);
    await writeFile(processFile, JSON.stringify(execProcess(config.process, argv, options.env)), { mode: 0o600 });
    try {
      const r = await run(crunExecArgv(ready.ctx, id, processFile), { timeoutMs: options.timeoutMs ?? 30_000, allowFailure: true });
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    } finally {
      await rm(processFile, { force: true });
    }
  }
}

/** crunMessage picks the last message out of crun's log (plain lines or JSON lines). */
export function crunMessage(log: string): string {
  const lines = log.trim().split('\n').filter(Boolean);
  const last = lines[lines.length - 1];
  if (!last) return '';
  try {
    const j = JSON.parse(last) as { msg?: string };
    return j.msg ?? last;
  } catch {
    return last;
  }
}
