/**
 * Deployer drives releases in status `running` to `succeeded` or `failed` with their strategy. All its
 * state is in the Store: on start it resumes every running release, so a control plane that was
 * killed mid-deploy picks up where it left off (promise 7). Each finishing step (desired states of the
 * instances it stops, the release's new status, the audit entry) commits in one transaction, guarded by
 * the release's conditional transition: of two control planes driving one deploy, one wins.
 */
import { systemClock, toTimestamp, type Clock } from '../core/index.ts';
import type { AppConfig } from '../config/index.ts';
import { SYSTEM_CONTEXT, type Auditor } from '../audit/index.ts';
import type { Store } from '../store/index.ts';
import { immediateStrategy } from './immediate.ts';
import type { DeployStrategy } from './strategy.ts';

export interface DeployerLogger {
  info(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

export interface DeployerOptions {
  store: Store;
  audit: Auditor;
  clock?: Clock;
  /** onDesiredChange tells the agents that instances' desired state changed. */
  onDesiredChange?: () => void;
  /** strategies by name; `immediate` is built in, issue "Deploys" adds the others. */
  strategies?: Record<string, DeployStrategy>;
  /** pollMs: how often running deploys are looked at without a nudge; default 500 ms. */
  pollMs?: number;
  logger?: DeployerLogger;
}

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
    this.#strategies = { immediate: immediateStrategy, ...options.strategies };
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

  /** track begins driving a release that was just made `running`. */
  track(releaseId: string): void {
    this.#tracked.add(releaseId);
    this.nudge();
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

  /** #step advances one deploy; it returns true when the deploy is over (or not this deployer's). */
  async #step(releaseId: string): Promise<boolean> {
    const { store } = this.#o;
    const release = await store.releases.get(releaseId);
    if (!release || release.status !== 'running') return true;
    const config = JSON.parse(release.config) as AppConfig;
    const fresh = await store.instances.listForRelease(release.id);
    const old = (await store.instances.listForApp(release.appId, { active: true })).filter((i) => i.releaseId !== release.id && i.desiredState === 'running');
    const strategy = this.#strategies[release.strategy] ?? immediateStrategy;
    const step = strategy.step({ release, config, fresh, old, now: this.#clock.now().getTime() });
    if (step.kind === 'wait') return false;
    const app = await store.apps.get(release.appId);
    const at = toTimestamp(this.#clock.now());
    const to = step.kind === 'succeed' ? 'succeeded' : 'failed';
    const reason = step.kind === 'fail' ? step.reason : null;
    try {
      await store.transaction(async (tx) => {
        if (!(await tx.releases.transition(release.id, ['running'], to, reason, at))) throw new TransitionLost();
        for (const id of step.stop) await tx.instances.setDesired(id, 'stopped', at);
        await this.#o.audit.record(tx, SYSTEM_CONTEXT, {
          orgId: app?.orgId ?? null,
          action: step.kind === 'succeed' ? 'release.succeed' : 'release.fail',
          target: release.id,
          outcome: step.kind === 'succeed' ? 'success' : 'failure',
          details: { app: app?.name ?? release.appId, version: release.version, strategy: release.strategy, stopped: step.stop.length, ...(reason ? { reason } : {}) },
        });
      });
    } catch (e) {
      if (e instanceof TransitionLost) return true;
      throw e;
    }
    this.#o.logger?.info({ release_id: release.id, app_id: release.appId, version: release.version, status: to, reason }, `release v${release.version} ${to}`);
    this.#o.onDesiredChange?.();
    return true;
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#started = false;
  }
}
