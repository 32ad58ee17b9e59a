/**
 * Deployer drives releases in status `running` to `succeeded` or `failed` with their strategy. All its
 * state is in the Store: on start it resumes every running release, so a control plane that was
 * killed mid-deploy picks up where it left off (promise 7). Each step — the new instances it places,
 * the desired states of the instances it stops, the release's progress or new status, the audit entry
 * of a finish — commits in one transaction, guarded by the release's conditional step counter and
 * status transition: of two control planes driving one deploy, one makes each step, and a step that
 * was not committed never happened (the strategy is asked again).
 */
import { newId, newPlacement, systemClock, toTimestamp, UserError, type Clock, type Instance, type Release } from '../core/index.ts';
import type { AppConfig } from '../config/index.ts';
import { SYSTEM_CONTEXT, type Auditor } from '../audit/index.ts';
import type { Store } from '../store/index.ts';
import { bluegreenStrategy, immediateStrategy } from './all-at-once.ts';
import { canaryStrategy, rollingStrategy } from './rolling.ts';
import { place, volumeHost } from './placement.ts';
import type { DeployStep, DeployStrategy } from './strategy.ts';

export interface DeployerLogger {
  info(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

/** DeployerLogs reads instances' journals (the agent's LogJournal): a failed deploy's reason quotes them. */
export interface DeployerLogs {
  read(instanceIds: readonly string[], options?: { limit?: number }): Promise<Array<{ message: string }>>;
}

export interface DeployerOptions {
  store: Store;
  audit: Auditor;
  clock?: Clock;
  /** onDesiredChange tells the agents that instances' desired state changed. */
  onDesiredChange?: () => void;
  /** strategies by name, over the built-in rolling, canary, bluegreen and immediate. */
  strategies?: Record<string, DeployStrategy>;
  /** logs gives a failed deploy's reason the failed instance's last lines when its agent kept none. */
  logs?: DeployerLogs;
  /** pollMs: how often running deploys are looked at without a nudge; default 500 ms. */
  pollMs?: number;
  logger?: DeployerLogger;
}

/** LOG_LINES is how many of a failed instance's last lines a failed release's reason quotes. */
const LOG_LINES = 10;

class TransitionLost extends Error {}

export class Deployer {
  readonly #o: DeployerOptions;
  readonly #clock: Clock;
  readonly #strategies: Record<string, DeployStrategy>;
  readonly #tracked = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #stepping: Promise<void> | undefined;
  #again = false;
  #started = false;

  constructor(options: DeployerOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#strategies = { immediate: immediateStrategy, rolling: rollingStrategy, canary: canaryStrategy, bluegreen: bluegreenStrategy, ...options.strategies };
  }

  /** start resumes the deploys the store says are running and begins stepping them. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    for (const r of await this.#o.store.releases.listByStatus(['running'])) this.#tracked.add(r.id);
    this.#timer = setInterval(() => this.nudge(), this.#o.pollMs ?? 500);
    this.#timer.unref();
    this.nudge();
  }

  /**
   * track begins driving a release that was just made `running` and takes its first step at once (even
   * before start(), which adds the polling that carries it on): the promise settles once its first
   * instances are placed, so a deploy's answer can list them.
   */
  track(releaseId: string): Promise<void> {
    this.#tracked.add(releaseId);
    return this.stepAll().catch((e: unknown) => this.#o.logger?.error({ err: e }, 'deploy step failed'));
  }

  /** nudge steps the tracked deploys soon (an agent reported something). Without start() it does nothing. */
  nudge(): void {
    if (!this.#started || this.#tracked.size === 0) return;
    void this.stepAll().catch((e: unknown) => this.#o.logger?.error({ err: e }, 'deploy step failed'));
  }

  /** stepAll looks at every tracked deploy once; calls never overlap (one during a pass makes one more). */
  stepAll(): Promise<void> {
    if (this.#stepping) {
      this.#again = true;
      return this.#stepping;
    }
    this.#stepping = (async () => {
      try {
        do {
          this.#again = false;
          for (const id of [...this.#tracked]) {
            try {
              if (await this.#step(id)) this.#tracked.delete(id);
            } catch (e) {
              this.#o.logger?.error({ err: e, release_id: id }, 'deploy step failed');
            }
          }
        } while (this.#again);
      } finally {
        this.#stepping = undefined;
      }
    })();
    return this.#stepping;
  }

  /**
   * #step advances one deploy as far as it can go now (a progress step that places instances is
   * followed at once by another look); it returns true when the deploy is over (or not this deployer's).
   */
  async #step(releaseId: string): Promise<boolean> {
    for (let round = 0; round < 10; round++) {
      const { store } = this.#o;
      const release = await store.releases.get(releaseId);
      if (!release || release.status !== 'running') return true;
      const config = JSON.parse(release.config) as AppConfig;
      const fresh = await store.instances.listForRelease(release.id);
      const others = (await store.instances.listForApp(release.appId, { active: true })).filter((i) => i.releaseId !== release.id);
      const old = others.filter((i) => i.desiredState === 'running');
      const stopping = others.filter((i) => i.desiredState === 'stopped' && i.observedState !== 'stopped' && i.observedState !== 'failed');
      const strategy = this.#strategies[release.strategy] ?? rollingStrategy;
      const step = strategy.step({ release, config, fresh, old, ...(stopping.length > 0 ? { stopping } : {}), now: this.#clock.now().getTime() });
      try {
        if (step.kind === 'wait') {
          if (step.progress !== release.progress) await store.releases.advance(release.id, release.steps ?? 0, step.progress, this.#at());
          return false;
        }
        if (step.kind === 'progress') {
          const placed = await this.#progress(release, config, step);
          if (placed === 'failed') return true;
          this.#o.onDesiredChange?.();
          continue;
        }
        await this.#finish(release, fresh, step);
        return true;
      } catch (e) {
        // Another control plane made this step first: look again next time.
        if (e instanceof TransitionLost) return false;
        throw e;
      }
    }
    return false;
  }

  #at(): string {
    return toTimestamp(this.#clock.now());
  }

  /** #progress commits a progress step: new instances placed, old ones stopped, progress recorded. */
  async #progress(release: Release, config: AppConfig, step: Extract<DeployStep, { kind: 'progress' }>): Promise<'ok' | 'failed'> {
    const at = this.#at();
    try {
      await this.#o.store.transaction(async (tx) => {
        if (!(await tx.releases.advance(release.id, release.steps ?? 0, step.progress, at))) throw new TransitionLost();
        if (step.start > 0) await placeInstances(tx, release, config, step.start, at);
        for (const id of step.stop) await tx.instances.setDesired(id, 'stopped', at);
      });
    } catch (e) {
      // No host can take the next instances (it went away, or is full): the deploy cannot go on.
      if (!(e instanceof UserError)) throw e;
      const fresh = await this.#o.store.instances.listForRelease(release.id);
      await this.#finish(release, fresh, { kind: 'fail', reason: `cannot place new instances: ${e.message}`, stop: fresh.map((i) => i.id) });
      return 'failed';
    }
    this.#o.logger?.info({ release_id: release.id, app_id: release.appId, version: release.version, started: step.start, stopped: step.stop.length, progress: step.progress }, `release v${release.version}: ${step.progress}`);
    return 'ok';
  }

  /** #finish commits the end of a deploy: the release's status, instances stopped (and restored), the audit entry. */
  async #finish(release: Release, fresh: Instance[], step: Extract<DeployStep, { kind: 'succeed' | 'fail' }>): Promise<void> {
    const { store } = this.#o;
    const app = await store.apps.get(release.appId);
    const to = step.kind === 'succeed' ? 'succeeded' : 'failed';
    const reason = step.kind === 'fail' ? await this.#withLastLines(step.reason, fresh.find((i) => i.id === step.failed)) : null;
    const restore = step.kind === 'fail' ? step.restore : undefined;
    const at = this.#at();
    await store.transaction(async (tx) => {
      if (step.kind === 'succeed' && step.progress !== release.progress && !(await tx.releases.advance(release.id, release.steps ?? 0, step.progress, at))) throw new TransitionLost();
      if (!(await tx.releases.transition(release.id, ['running'], to, reason, at))) throw new TransitionLost();
      for (const id of step.stop) await tx.instances.setDesired(id, 'stopped', at);
      let restored = 0;
      if (restore) {
        const from = await tx.releases.get(restore.releaseId);
        // Best effort: the old instances still running keep serving even if no host takes more.
        if (from) restored = (await placeInstances(tx, from, JSON.parse(from.config) as AppConfig, restore.count, at).catch((e: unknown) => (e instanceof UserError ? [] : Promise.reject(e)))).length;
      }
      await this.#o.audit.record(tx, SYSTEM_CONTEXT, {
        orgId: app?.orgId ?? null,
        action: step.kind === 'succeed' ? 'release.succeed' : 'release.fail',
        target: release.id,
        outcome: step.kind === 'succeed' ? 'success' : 'failure',
        details: { app: app?.name ?? release.appId, version: release.version, strategy: release.strategy, stopped: step.stop.length, ...(restored ? { restored } : {}), ...(reason ? { reason } : {}) },
      });
    });
    this.#o.logger?.info({ release_id: release.id, app_id: release.appId, version: release.version, status: to, reason }, `release v${release.version} ${to}`);
    this.#o.onDesiredChange?.();
  }

  /** #withLastLines adds the failed instance's last output to a reason: what its agent kept, else its journal. */
  async #withLastLines(reason: string, instance: Instance | undefined): Promise<string> {
    if (!instance) return reason;
    let lines = instance.lastLog ?? [];
    if (lines.length === 0 && this.#o.logs) {
      lines = (await this.#o.logs.read([instance.id], { limit: LOG_LINES }).catch(() => [])).map((e) => e.message);
    }
    lines = lines.slice(-LOG_LINES);
    return lines.length === 0 ? reason : `${reason}\nlast log lines of ${instance.id}:\n${lines.map((l) => `  ${l}`).join('\n')}`;
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#started = false;
  }
}

/**
 * placeInstances places `count` new instances of a release on the hosts `place` picks (spread, fewest
 * of the app's instances first), inside the caller's transaction. It throws `unavailable` or
 * `resources_exceed_host` when no host fits.
 */
export async function placeInstances(tx: Store, release: Release, config: AppConfig, count: number, at: string): Promise<Instance[]> {
  const running = (await tx.instances.listForApp(release.appId, { active: true })).filter((i) => i.desiredState === 'running');
  // An instance that mounts volumes runs on their host (issue "Volumes").
  const hostId = await volumeHost(tx, release.appId, config.mounts);
  const hosts = place(await tx.hosts.list(), running, { count, resources: config.resources, region: config.primaryRegion, hostId });
  const out = hosts.map((h) => newPlacement({ id: newId('instance'), appId: release.appId, releaseId: release.id, hostId: h.id, region: h.region, at }));
  for (const i of out) await tx.instances.create(i);
  return out;
}
