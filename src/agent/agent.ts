/**
 * Agent runs the instances the control plane placed on this host. Its reconcile loop compares desired
 * state (assignments from the ControlPlaneLink) with what runs here and makes them agree, idempotently:
 * running it twice, or after a crash, converges to the same state. Each instance gets an
 * InstanceSupervisor (supervisor.ts) that takes it through the hooks (hooks/) and the restart policy.
 *
 * On start the agent asks the runtime what outlived the previous agent (recover()) and hands each
 * running process to its supervisor, which adopts it without restarting it. Instances and network
 * attachments this host no longer has assignments for are removed. On close the agent leaves its
 * instances running (they serve while the control plane is away) unless asked to stop them.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import { isId, newId, type HostCapacity } from '../core/index.ts';
import { readJson, writeAtomic } from './files.ts';
import { HealthRegistry } from './health/index.ts';
import { VolumeManager, type VolumeSource } from './volumes/index.ts';
import { defaultHooks, type Drain, type HealthHookOptions, type HookDeps, type InstanceHook, type SecretsSource } from './hooks/index.ts';
import { LogJournal, type CaptureOptions, type JournalLimits } from './logs/index.ts';
import type { DnsRecord, OrgNetwork } from './network/index.ts';
import { DEFAULT_RESTART, type RestartSettings } from './restart-policy.ts';
import type { ExecOptions, ExecResult, InstanceInfo, Runtime } from './runtime/index.ts';
import { InstanceSupervisor, type StateFile, type SupervisorState } from './supervisor.ts';
import { SILENT_LOGGER, type AgentLogger, type Assignment, type ControlPlaneLink, type ImageProvider } from './types.ts';

export interface AgentOptions {
  link: ControlPlaneLink;
  runtime: Runtime;
  network: OrgNetwork;
  images: ImageProvider;
  /** dataDir holds the agent's state (`agent/`) and the instances' journals (`logs/`). */
  dataDir: string;
  host: { name: string; region: string; capacity?: HostCapacity };
  /** hooks builds the runner's hook list; default defaultHooks (image, network, volumes, secrets, start, health). */
  hooks?: (deps: HookDeps) => InstanceHook[];
  secrets?: SecretsSource;
  /**
   * volumes hands out volume keys (the control plane's VolumeKeyService); without it a release with
   * `[[mounts]]` is refused. Volumes live under `<dataDir>/volumes` (docs/volumes.md).
   */
  volumes?: VolumeSource;
  restart?: Partial<RestartSettings>;
  journal?: Partial<JournalLimits>;
  capture?: CaptureOptions;
  healthOptions?: HealthHookOptions;
  /**
   * drain is the edge's wait, when an instance stops on purpose, for the requests in flight to it
   * (health hook prestop, before the kill signal). The edge role provides it; none: nothing to wait for.
   */
  drain?: Drain;
  /** reconcileIntervalMs: how often desired state is read when nothing signals a change; default 5 s. */
  reconcileIntervalMs?: number;
  /** heartbeatIntervalMs: default 10 s. */
  heartbeatIntervalMs?: number;
  /** journalRetentionMs: journals of instances gone from this host are kept this long; default 7 days. */
  journalRetentionMs?: number;
  logger?: AgentLogger;
  /**
   * dns hears the instances running here whenever they change (the internal resolver's records:
   * app, instance, region, org, address); none when the network has no resolver.
   */
  dns?: DnsPublisher;
}

/** DnsPublisher is the internal resolver as the agent feeds it (InternalResolver implements it). */
export interface DnsPublisher {
  setRecords(records: DnsRecord[]): void;
}

/** hostCapacity is what this machine has: its memory and CPUs. */
export function hostCapacity(): HostCapacity {
  return { memoryBytes: totalmem(), cpus: availableParallelism() };
}

/** FileStateFile keeps each supervisor's state as `<dir>/<ins_…>.json`. */
class FileStateFile implements StateFile {
  readonly #dir: string;
  constructor(dir: string) {
    this.#dir = dir;
  }
  #path(id: string): string {
    if (!isId(id, 'instance')) throw new TypeError(`not an instance id: ${id}`);
    return join(this.#dir, `${id}.json`);
  }
  load(id: string): Promise<SupervisorState | undefined> {
    return readJson<SupervisorState>(this.#path(id));
  }
  async save(id: string, s: SupervisorState): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    await writeAtomic(this.#path(id), JSON.stringify(s));
  }
  async remove(id: string): Promise<void> {
    await rm(this.#path(id), { force: true });
  }
}

export class Agent {
  readonly health = new HealthRegistry();
  readonly journal: LogJournal;
  readonly #o: AgentOptions;
  readonly #logger: AgentLogger;
  readonly #hooks: InstanceHook[];
  readonly #state: StateFile;
  readonly #restart: RestartSettings;
  readonly #sups = new Map<string, InstanceSupervisor>();
  #recovered = new Map<string, InstanceInfo>();
  #hostId = '';
  /** volumes opens and closes this host's encrypted volumes (backups use its withMounted). */
  readonly volumes: VolumeManager;
  #timers: NodeJS.Timeout[] = [];
  #unwatch: (() => void) | undefined;
  #reconciling: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #lastPrune = 0;
  /** #observed is each supervised instance's last reported state (what DNS publishes: running ones). */
  readonly #observed = new Map<string, string>();
  #publishing: Promise<void> | undefined;
  #publishAgain = false;
  /** #orgSettings is each org's network settings as last applied (ensure runs again only on a change). */
  readonly #orgSettings = new Map<string, string>();

  constructor(options: AgentOptions) {
    this.#o = options;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.journal = new LogJournal({ dir: join(options.dataDir, 'logs'), ...(options.journal ? { limits: options.journal } : {}) });
    this.#state = new FileStateFile(join(options.dataDir, 'agent', 'instances'));
    this.#restart = { ...DEFAULT_RESTART, ...options.restart };
    this.volumes = new VolumeManager({ root: join(options.dataDir, 'volumes'), ...(options.volumes ? { source: options.volumes } : {}), hostId: () => this.#hostId });
    const deps: HookDeps = {
      images: options.images,
      network: options.network,
      runtime: options.runtime,
      journal: this.journal,
      health: this.health,
      ...(options.secrets ? { secrets: options.secrets } : {}),
      ...(options.volumes ? { volumes: { manager: this.volumes, source: options.volumes } } : {}),
      capture: { ...options.capture, onWarning: (m) => this.#logger.warn({}, m) },
      ...(options.healthOptions ? { healthOptions: options.healthOptions } : {}),
      ...(options.drain ? { drain: options.drain } : {}),
    };
    this.#hooks = (options.hooks ?? defaultHooks)(deps);
  }

  /** hostId is this host's id (`hst_…`), stable across agent restarts. */
  get hostId(): string {
    return this.#hostId;
  }

  /** supervisor returns an instance's supervisor on this host, if it has one (tests, diagnostics). */
  supervisor(instanceId: string): InstanceSupervisor | undefined {
    return this.#sups.get(instanceId);
  }

  /**
   * exec runs argv inside one of this host's running instances (Runtime.exec): backups run a mount's
   * backup_command this way, in the instance's own confinement.
   */
  exec(instanceId: string, argv: string[], options?: ExecOptions): Promise<ExecResult> {
    return this.#o.runtime.exec(instanceId, argv, options);
  }

  /** start registers the host, recovers what still runs, reconciles once, then keeps reconciling. */
  async start(): Promise<void> {
    const dir = join(this.#o.dataDir, 'agent');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const hostFile = join(dir, 'host.json');
    let saved = await readJson<{ id: string }>(hostFile);
    if (!saved || !isId(saved.id, 'host')) {
      saved = { id: newId('host') };
      await writeAtomic(hostFile, JSON.stringify(saved));
    }
    this.#hostId = saved.id;
    // Recover first: it proves the runtime works before the host is announced as ready for instances.
    for (const info of await this.#o.runtime.recover()) this.#recovered.set(info.id, info);
    await this.#o.link.registerHost({ id: this.#hostId, name: this.#o.host.name, region: this.#o.host.region, capacity: this.#o.host.capacity ?? hostCapacity() });
    await this.reconcile();
    this.#unwatch = this.#o.link.watch?.(() => this.nudge());
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.#timers.push(t);
    };
    every(this.#o.reconcileIntervalMs ?? 5000, () => this.nudge());
    every(this.#o.heartbeatIntervalMs ?? 10_000, () => {
      this.#o.link.heartbeat(this.#hostId).catch((e: unknown) => this.#logger.warn({ err: e }, 'heartbeat failed'));
    });
    this.#logger.info({ host_id: this.#hostId, host: this.#o.host.name, recovered: [...this.#sups.keys()].length }, 'agent started');
  }

  /** nudge asks for a reconcile soon (desired state may have changed). */
  nudge(): void {
    if (this.#closed) return;
    void this.reconcile().catch((e: unknown) => this.#logger.error({ err: e }, 'reconcile failed'));
  }

  /**
   * reconcile makes this host's instances match the control plane's assignments. Calls never overlap:
   * one that arrives during a pass makes one more pass afterwards.
   */
  reconcile(): Promise<void> {
    if (this.#reconciling) {
      this.#again = true;
      return this.#reconciling;
    }
    this.#reconciling = (async () => {
      try {
        do {
          this.#again = false;
          await this.#pass();
        } while (this.#again && !this.#closed);
      } finally {
        this.#reconciling = undefined;
      }
    })();
    return this.#reconciling;
  }

  async #pass(): Promise<void> {
    if (this.#closed) return;
    let assignments: Assignment[];
    try {
      assignments = await this.#o.link.assignments(this.#hostId);
    } catch (e) {
      // The control plane is away: keep everything as it is and try again later.
      this.#logger.warn({ err: e }, 'cannot read assignments; keeping instances as they are');
      return;
    }
    // Each org's settings (egress) as the control plane has them now: ensure applies a change at once
    // and is a no-op otherwise.
    const orgs = new Map(assignments.map((a) => [a.app.orgId, a.app.network]));
    for (const [orgId, opts] of orgs) {
      const key = JSON.stringify(opts ?? {});
      if (this.#orgSettings.get(orgId) === key) continue;
      try {
        await this.#o.network.ensure(orgId, opts);
        this.#orgSettings.set(orgId, key);
      } catch (e) {
        this.#logger.warn({ err: e, org_id: orgId }, 'cannot apply org network settings');
      }
    }
    const seen = new Set<string>();
    for (const a of assignments) {
      const id = a.instance.id;
      seen.add(id);
      const existing = this.#sups.get(id);
      if (existing) {
        existing.update(a);
        continue;
      }
      const recovered = this.#recovered.get(id);
      this.#recovered.delete(id);
      const sup = new InstanceSupervisor(a, {
        hooks: this.#hooks,
        runtime: this.#o.runtime,
        journal: this.journal,
        state: this.#state,
        restart: this.#restart,
        host: { id: this.#hostId, name: this.#o.host.name, region: this.#o.host.region },
        report: (instanceId, r) => {
          if (r.observedState && r.observedState !== this.#observed.get(instanceId)) {
            this.#observed.set(instanceId, r.observedState);
            this.#publishDns();
          }
          return this.#o.link.report(instanceId, r);
        },
        logger: this.#logger,
      });
      this.#sups.set(id, sup);
      sup.begin(recovered);
      void sup.done.then(() => {
        if (this.#sups.get(id) === sup && !this.#closed) this.#sups.delete(id);
      });
    }
    for (const [id, sup] of this.#sups) {
      if (seen.has(id)) continue;
      // The control plane no longer knows the instance (its app was destroyed, or it was deleted).
      this.#logger.info({ instance_id: id }, 'instance no longer assigned to this host; removing it');
      await sup.remove();
      this.#sups.delete(id);
    }
    for (const id of this.#observed.keys()) if (!this.#sups.has(id)) this.#observed.delete(id);
    this.#publishDns();
    await this.#removeOrphans(seen);
    await this.#pruneJournals(seen);
  }

  /**
   * #publishDns gives the resolver the instances running here: each supervised instance reported
   * `running` that has an attachment, with its app, org and region from its assignment. Calls never
   * overlap; one that arrives during a pass makes one more.
   */
  #publishDns(): void {
    const dns = this.#o.dns;
    if (!dns || this.#closed) return;
    if (this.#publishing) {
      this.#publishAgain = true;
      return;
    }
    this.#publishing = (async () => {
      do {
        this.#publishAgain = false;
        const attachments = new Map((await this.#o.network.attachments()).map((a) => [a.instanceId, a]));
        const records: DnsRecord[] = [];
        for (const [id, sup] of this.#sups) {
          const at = attachments.get(id);
          if (!at || this.#observed.get(id) !== 'running') continue;
          const a = sup.assignment;
          records.push({ orgId: a.app.orgId, app: a.app.name, instanceId: id, region: a.instance.region, ipv6: at.ipv6 });
        }
        dns.setRecords(records);
      } while (this.#publishAgain && !this.#closed);
    })()
      .catch((e: unknown) => this.#logger.warn({ err: e }, 'cannot publish DNS records'))
      .finally(() => {
        this.#publishing = undefined;
      });
  }

  /** #removeOrphans removes instances and attachments this host has but no assignment names. */
  async #removeOrphans(assigned: Set<string>): Promise<void> {
    for (const [id] of this.#recovered) {
      if (assigned.has(id)) continue;
      this.#recovered.delete(id);
      this.#logger.info({ instance_id: id }, 'removing an instance no assignment names');
      await this.#o.runtime.destroy(id).catch((e: unknown) => this.#logger.warn({ err: e, instance_id: id }, 'cannot remove orphan instance'));
    }
    for (const a of await this.#o.network.attachments().catch(() => [])) {
      if (assigned.has(a.instanceId) || this.#sups.has(a.instanceId)) continue;
      await this.#o.network.detach(a.instanceId).catch((e: unknown) => this.#logger.warn({ err: e, instance_id: a.instanceId }, 'cannot detach orphan attachment'));
    }
  }

  /** #pruneJournals deletes journals of instances gone from this host for longer than the retention. */
  async #pruneJournals(assigned: Set<string>): Promise<void> {
    const now = Date.now();
    if (now - this.#lastPrune < 60 * 60 * 1000) return;
    this.#lastPrune = now;
    const keepMs = this.#o.journalRetentionMs ?? 7 * 24 * 60 * 60 * 1000;
    for (const id of await this.journal.instances()) {
      if (assigned.has(id) || this.#sups.has(id)) continue;
      const s = await stat(this.journal.instanceDir(id)).catch(() => undefined);
      if (s && now - s.mtimeMs > keepMs) await this.journal.remove(id).catch(() => {});
    }
  }

  /**
   * close stops the agent. By default its instances keep running (a later agent adopts them); with
   * stopInstances they are stopped (kill signal, kill_timeout) and their resources released, and they
   * are reported `pending` so a later agent starts them again.
   */
  async close(options: { stopInstances?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#unwatch?.();
    await this.#reconciling?.catch(() => {});
    const sups = [...this.#sups.values()];
    if (options.stopInstances) await Promise.all(sups.map((s) => s.stopForAgentShutdown()));
    else await Promise.all(sups.map((s) => s.detach()));
    this.#sups.clear();
    this.#logger.info({ host_id: this.#hostId, stopped_instances: Boolean(options.stopInstances) }, 'agent stopped');
  }
}
