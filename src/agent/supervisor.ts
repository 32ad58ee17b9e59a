/**
 * InstanceSupervisor runs one instance on this host: it takes it through its hooks, watches its process,
 * applies the restart policy, honours restart requests and stops it when the control plane says so.
 * One supervisor per instance; its work is one loop, so nothing for one instance ever runs concurrently.
 *
 * States it reports (Instance.observedState): `starting` while prestart hooks run, `running`,
 * `restarting` while it waits out a backoff, `failed` when the restart policy gives up (crash loop,
 * max_retries, an error the user must fix) with the last exit and log lines, `stopped` when the process
 * ended and stays so (restart policy) or was stopped on purpose.
 *
 * What survives an agent restart: the process itself (the runtime's), the network attachment, the
 * journal, and the supervisor's own RunHistory and applied restart generation (StateFile). A new
 * supervisor given the recovered InstanceInfo adopts a running process without restarting it.
 */
import { isUserError, toTimestamp, type InstanceReport } from '../core/index.ts';
import type { LogJournal } from './logs/index.ts';
import { decideRestart, describeExit, type RestartSettings, type RunHistory } from './restart-policy.ts';
import type { ExitStatus, InstanceInfo, Runtime } from './runtime/index.ts';
import type { HookContext, HostInfo, InstanceHook } from './hooks/index.ts';
import type { AgentLogger, Assignment } from './types.ts';

/** LAST_LOG_LINES is how many of its last lines a failed instance reports (its deploy error shows them). */
export const LAST_LOG_LINES = 20;
const LAST_LOG_BYTES = 8 * 1024;

/** SupervisorState is what a supervisor persists for its instance (StateFile), to survive an agent restart. */
export interface SupervisorState {
  /** generation is the restart generation last applied. */
  generation: number;
  history: RunHistory;
}

/** StateFile persists SupervisorState per instance (the agent keeps it in its data dir). */
export interface StateFile {
  load(id: string): Promise<SupervisorState | undefined>;
  save(id: string, s: SupervisorState): Promise<void>;
  remove(id: string): Promise<void>;
}

export interface SupervisorDeps {
  hooks: readonly InstanceHook[];
  runtime: Runtime;
  journal: LogJournal;
  state: StateFile;
  restart: RestartSettings;
  host: HostInfo;
  report: (instanceId: string, r: InstanceReport) => Promise<void>;
  logger: AgentLogger;
  now?: () => number;
}

type Phase = 'idle' | 'running' | 'waiting' | 'done' | 'failed';

function sleep(ms: number, wake: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, ms)))), wake]).finally(() => clearTimeout(timer));
}

export class InstanceSupervisor {
  readonly id: string;
  readonly #d: SupervisorDeps;
  #assignment: Assignment;
  #removed = false;
  #detaching = false;
  #halting = false;
  #wakeUp: () => void = () => {};
  #wake: Promise<void>;
  #phase: Phase = 'idle';
  #state: SupervisorState = { generation: 0, history: { failures: 0 } };
  #restarts = 0;
  #waitUntil = 0;
  #runStartedAt = 0;
  #exit: Promise<ExitStatus> | undefined;
  #ctx: HookContext;
  #loop: Promise<void> | undefined;
  #reports: Promise<void> = Promise.resolve();

  /** assignment is the latest assignment the supervisor was given. */
  get assignment(): Assignment {
    return this.#assignment;
  }

  constructor(assignment: Assignment, deps: SupervisorDeps) {
    this.id = assignment.instance.id;
    this.#d = deps;
    this.#assignment = assignment;
    this.#restarts = assignment.instance.restarts;
    this.#wake = this.#newWake();
    const self = this;
    this.#ctx = {
      instanceId: this.id,
      get assignment() {
        return self.#assignment;
      },
      get config() {
        return self.#assignment.release.config;
      },
      host: deps.host,
      note: (m) => void deps.journal.system(this.id, m).catch(() => {}),
      report: (r) => void this.#report(r),
      mounts: [],
      secretEnv: {},
      health: 'unknown',
    };
  }

  #newWake(): Promise<void> {
    return new Promise<void>((r) => (this.#wakeUp = r));
  }

  #poke(): void {
    const wake = this.#wakeUp;
    this.#wake = this.#newWake();
    wake();
  }

  #now(): number {
    return (this.#d.now ?? Date.now)();
  }

  /** phase is where the supervisor stands (for tests and diagnostics). */
  get phase(): Phase {
    return this.#phase;
  }

  /** done resolves when the supervisor has finished: the instance stopped for good, or the agent detached. */
  get done(): Promise<void> {
    return this.#loop ?? Promise.resolve();
  }

  /** begin starts supervising; `recovered` is what the runtime knows of the instance after an agent restart. */
  begin(recovered?: InstanceInfo): void {
    this.#loop ??= this.#run(recovered).catch((e: unknown) => {
      this.#d.logger.error({ err: e, instance_id: this.id }, 'instance supervisor failed');
    });
  }

  /** update hands the supervisor the control plane's latest wishes (desired state, restart generation). */
  update(a: Assignment): void {
    this.#assignment = a;
    this.#poke();
  }

  /** remove stops the instance for good because the control plane no longer knows it (app destroyed). */
  remove(): Promise<void> {
    this.#removed = true;
    this.#poke();
    return this.done;
  }

  /**
   * stopForAgentShutdown stops the process and releases its resources because the agent is shutting
   * down and was told to take its instances along; it reports `pending` so a later agent starts it again.
   */
  stopForAgentShutdown(): Promise<void> {
    this.#halting = true;
    this.#poke();
    return this.done;
  }

  /** detach stops supervising and leaves the process running (agent shutdown). */
  detach(): Promise<void> {
    this.#detaching = true;
    this.#poke();
    return this.done;
  }

  /**
   * #report sends observed fields to the control plane. Reports go out one at a time, in the order they
   * were made, so a late health report can never overwrite the state that followed it.
   */
  #report(r: InstanceReport): Promise<void> {
    const next = this.#reports.then(async () => {
      try {
        await this.#d.report(this.id, r);
      } catch (e) {
        // The control plane may be down; the next report carries the state again.
        this.#d.logger.warn({ err: e, instance_id: this.id }, 'cannot report instance state');
      }
    });
    this.#reports = next;
    return next;
  }

  #note(m: string): void {
    this.#ctx.note(m);
  }

  async #hooks(phase: 'prestart' | 'poststart', reverse = false): Promise<void> {
    const list = reverse ? [...this.#d.hooks].reverse() : this.#d.hooks;
    for (const h of list) await h[phase]?.(this.#ctx);
  }

  /** #each runs a phase on every hook (reverse order), going on past failures; teardown must not stop half-way. */
  async #each(phase: 'prestop' | 'exited' | 'poststop' | 'detach', exit?: ExitStatus): Promise<void> {
    for (const h of [...this.#d.hooks].reverse()) {
      try {
        if (phase === 'exited') await h.exited?.(this.#ctx, exit);
        else await h[phase]?.(this.#ctx);
      } catch (e) {
        this.#d.logger.warn({ err: e, instance_id: this.id, hook: h.name, phase }, 'instance hook failed');
      }
    }
  }

  async #saveState(): Promise<void> {
    await this.#d.state.save(this.id, this.#state).catch((e: unknown) => this.#d.logger.warn({ err: e, instance_id: this.id }, 'cannot save instance state'));
  }

  async #run(recovered: InstanceInfo | undefined): Promise<void> {
    const inst = this.#assignment.instance;
    this.#state = (await this.#d.state.load(this.id)) ?? { generation: inst.restartGeneration, history: { failures: 0 } };
    if (recovered?.state === 'running') {
      // Adopted even when it should stop: the loop then stops it properly (signal, kill_timeout, hooks).
      await this.#adopt(recovered);
    } else if (recovered?.state === 'exited' && recovered.exit) {
      // It ended while no agent watched: the restart policy decides as if it had just happened.
      this.#runStartedAt = recovered.startedAt.getTime();
      this.#phase = await this.#onExit(recovered.exit);
    } else if (inst.observedState === 'failed' && this.#state.generation === inst.restartGeneration) {
      this.#phase = 'failed';
    } else if (inst.observedState === 'stopped' && this.#state.generation === inst.restartGeneration) {
      this.#phase = 'done';
    }

    for (;;) {
      const wake = this.#wake;
      if (this.#detaching) {
        await this.#each('detach');
        return;
      }
      if (this.#halting) {
        if (this.#phase === 'running') await this.#stopRun();
        await this.#each('poststop');
        await this.#report({ observedState: 'pending', health: 'unknown', pid: null });
        this.#note('stopped with the agent');
        return;
      }
      const a = this.#assignment;
      if (this.#removed || a.instance.desiredState === 'stopped') {
        await this.#shutdown();
        return;
      }
      const restartAsked = a.instance.restartGeneration !== this.#state.generation;
      if (restartAsked && this.#phase !== 'idle') {
        if (this.#phase === 'running') {
          this.#note('restart requested: stopping');
          await this.#stopRun('restarting');
        }
        this.#state = { generation: a.instance.restartGeneration, history: { failures: 0 } };
        await this.#saveState();
        this.#phase = 'idle';
        continue;
      }
      switch (this.#phase) {
        case 'idle':
          if (restartAsked) {
            this.#state = { generation: a.instance.restartGeneration, history: { failures: 0 } };
            await this.#saveState();
          }
          this.#phase = await this.#start();
          break;
        case 'running': {
          const exit = this.#exit!;
          const ended = await Promise.race([exit.then((e) => ({ e })), wake.then(() => undefined)]);
          if (ended) this.#phase = await this.#onExit(ended.e);
          break;
        }
        case 'waiting':
          if (this.#now() >= this.#waitUntil) this.#phase = 'idle';
          else await sleep(this.#waitUntil - this.#now(), wake);
          break;
        case 'done':
        case 'failed':
          await wake;
          break;
      }
    }
  }

  /** #adopt takes over a process that outlived the previous agent: recover hooks, then poststart. */
  async #adopt(info: InstanceInfo): Promise<void> {
    for (const h of this.#d.hooks) await h.recover?.(this.#ctx, info);
    this.#runStartedAt = info.startedAt.getTime();
    this.#exit = this.#d.runtime.wait(this.id);
    this.#phase = 'running';
    const at = this.#ctx.attachment;
    await this.#report({ observedState: 'running', pid: info.pid ?? null, startedAt: toTimestamp(info.startedAt), privateIpv6: at?.ipv6 ?? null, privateIpv4: at?.ipv4 ?? null });
    this.#note(`agent restarted: re-attached to the running instance (pid ${info.pid})`);
    await this.#hooks('poststart');
  }

  async #start(): Promise<Phase> {
    const a = this.#assignment;
    await this.#report({ observedState: 'starting', health: 'unknown', pid: null });
    this.#note(`starting release v${a.release.version} (${a.release.imageDigest.slice(0, 19)})`);
    try {
      await this.#hooks('prestart');
    } catch (e) {
      await this.#each('exited');
      return this.#startFailed(e);
    }
    const handle = this.#ctx.handle!;
    this.#runStartedAt = handle.startedAt.getTime();
    this.#exit = this.#d.runtime.wait(this.id);
    const at = this.#ctx.attachment;
    // lastLog belongs to a failure; a new run starts without one.
    await this.#report({ observedState: 'running', pid: handle.pid, startedAt: toTimestamp(handle.startedAt), privateIpv6: at?.ipv6 ?? null, privateIpv4: at?.ipv4 ?? null, lastLog: null });
    this.#note(`running (pid ${handle.pid}${at ? `, ${at.addresses.join(' ')}` : ''})`);
    try {
      await this.#hooks('poststart');
    } catch (e) {
      this.#d.logger.warn({ err: e, instance_id: this.id }, 'poststart hook failed');
    }
    return 'running';
  }

  /** #startFailed: a UserError (bad image, limits beyond the host) fails at once; anything else counts as a crash. */
  async #startFailed(e: unknown): Promise<Phase> {
    const message = isUserError(e) ? e.message : `start failed: ${(e as Error)?.message ?? String(e)}`;
    this.#note(message);
    this.#d.logger.warn({ err: e, instance_id: this.id }, 'instance start failed');
    const at = toTimestamp(this.#now());
    if (isUserError(e)) {
      await this.#report({ observedState: 'failed', pid: null, lastExitCode: null, lastExitReason: message, lastExitAt: at, lastLog: await this.#tail() });
      return 'failed';
    }
    const d = decideRestart({ policy: 'always', maxRetries: 0 }, this.#state.history, { code: -1, signal: undefined, reason: 'unknown' }, 0, this.#d.restart);
    this.#state.history = d.history;
    await this.#saveState();
    if (d.action !== 'restart') {
      await this.#report({ observedState: 'failed', pid: null, lastExitCode: null, lastExitReason: `${message} (${d.history.failures} times in a row)`, lastExitAt: at, lastLog: await this.#tail() });
      return 'failed';
    }
    this.#waitUntil = this.#now() + d.delayMs;
    await this.#report({ observedState: 'restarting', pid: null, lastExitCode: null, lastExitReason: message, lastExitAt: at });
    return 'waiting';
  }

  async #tail(): Promise<string[]> {
    const lines = await this.#d.journal.tail(this.id, LAST_LOG_LINES).catch(() => [] as string[]);
    // Bounded: a report must stay small whatever the app printed.
    let total = 0;
    const out: string[] = [];
    for (const l of lines.reverse()) {
      total += Buffer.byteLength(l);
      if (total > LAST_LOG_BYTES) break;
      out.unshift(l.length > 1000 ? l.slice(0, 1000) : l);
    }
    return out;
  }

  /** #onExit handles a run that ended by itself: hooks, then the restart policy. */
  async #onExit(exit: ExitStatus): Promise<Phase> {
    await this.#each('exited', exit);
    this.#exit = undefined;
    const ran = exit.exitedAt.getTime() - this.#runStartedAt;
    const base: InstanceReport = { pid: null, health: 'unknown', lastExitCode: exit.code, lastExitReason: describeExit(exit), lastExitAt: toTimestamp(exit.exitedAt) };
    if (exit.reason === 'stopped') {
      // Someone stopped it through the runtime, not through us; respect it as a stop.
      this.#note('stopped');
      await this.#report({ ...base, observedState: 'stopped' });
      return 'done';
    }
    const d = decideRestart(this.#assignment.release.config.restart, this.#state.history, exit, ran, this.#d.restart);
    this.#state.history = d.history;
    await this.#saveState();
    this.#note(`exited: ${describeExit(exit)} after ${Math.round(ran / 100) / 10}s; ${d.action === 'restart' ? d.reason.slice(d.reason.indexOf('restarting')) : d.reason}`);
    if (d.action === 'restart') {
      this.#restarts += 1;
      this.#waitUntil = this.#now() + d.delayMs;
      await this.#report({ ...base, observedState: 'restarting', restarts: this.#restarts });
      return 'waiting';
    }
    if (d.action === 'stop') {
      await this.#report({ ...base, observedState: 'stopped' });
      return 'done';
    }
    await this.#report({ ...base, observedState: 'failed', lastExitReason: d.reason, lastLog: await this.#tail() });
    return 'failed';
  }

  /**
   * #stopRun stops the running process on purpose: prestop (health withdraws, then the signal), then exited.
   * `then` is the state to report once the process is gone (a restart is `restarting`, never a `running`
   * without a pid); without it the caller reports the next state itself.
   */
  async #stopRun(then?: 'restarting'): Promise<void> {
    await this.#each('prestop');
    let exit: ExitStatus | undefined;
    try {
      exit = this.#exit ? await this.#exit : undefined;
    } catch {
      exit = undefined;
    }
    await this.#each('exited', exit);
    this.#exit = undefined;
    if (exit) await this.#report({ pid: null, lastExitCode: exit.code, lastExitReason: describeExit(exit), lastExitAt: toTimestamp(exit.exitedAt), ...(then ? { observedState: then } : {}) });
    else if (then) await this.#report({ pid: null, observedState: then });
  }

  /** #shutdown stops the instance for good and releases everything (poststop). */
  async #shutdown(): Promise<void> {
    if (this.#phase === 'running') {
      this.#note('stopping');
      await this.#stopRun();
    }
    await this.#each('poststop');
    this.#phase = 'done';
    await this.#d.state.remove(this.id).catch(() => {});
    if (!this.#removed) {
      await this.#report({ observedState: 'stopped', health: 'unknown', pid: null });
      this.#note('stopped');
    }
  }
}
