import { newId, newPlacement, toTimestamp, type Clock, type Instance, type Release } from '../core/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import { StoreConflictError, type Store } from '../store/index.ts';
import type { AppView } from './apps.ts';
import type { RolloutSummary, SecretsRollout } from './secrets.ts';

export interface ReleaseRolloutOptions {
  store: Store;
  clock: Clock;
  audit: Auditor;
  /** onRelease hands the new release to the Deployer (Deployer.track), as DeployService does. */
  onRelease?: (releaseId: string) => void;
  /** onDesiredChange tells agents to reconcile. */
  onDesiredChange?: () => void;
}

/**
 * ReleaseRollout is how `ward secrets set` (without --stage) moves a running app onto its new secrets:
 * releases pin a secrets version, so new values need a new release. It makes release N+1 with the
 * current release's image, config and strategy and the new secrets version, places one new instance
 * where each running one is, and hands the release to the Deployer, exactly as a deploy does: the
 * strategy starts the new instances, waits until each passes its health checks, and only then stops the
 * old ones; a new instance that never gets healthy fails the release and the old ones keep serving.
 * With the rolling strategy (issue "Deploys") that is one instance at a time; with `immediate`, the only
 * strategy before it, all new instances start together and the old stop once every new one is healthy.
 *
 * Nothing to roll (no instance runs) or a deploy already in progress: the change stays stored, and the
 * next deploy pins it (DeployService reads the app's newest secrets version).
 */
export class ReleaseRollout implements SecretsRollout {
  readonly #o: ReleaseRolloutOptions;

  constructor(options: ReleaseRolloutOptions) {
    this.#o = options;
  }

  async roll(app: AppView, secretsVersion: number, userId: string, ctx: CallContext): Promise<RolloutSummary> {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.#o.store.transaction((tx) => this.#plan(tx, app, secretsVersion, userId, ctx));
        if (r.status === 'started' && r.releaseId) {
          this.#o.onRelease?.(r.releaseId);
          this.#o.onDesiredChange?.();
        }
        return r.summary;
      } catch (e) {
        // A deploy raced this one for the same release version: look again (and find it running).
        if (e instanceof StoreConflictError && e.constraint === 'releases.app_version' && attempt < 2) continue;
        throw e;
      }
    }
  }

  async #plan(tx: Store, app: AppView, secretsVersion: number, userId: string, ctx: CallContext): Promise<{ status: RolloutSummary['status']; releaseId?: string; summary: RolloutSummary }> {
    const later = `the next deploy applies secrets version ${secretsVersion}`;
    const recent = await tx.releases.listForApp(app.id, 20);
    const busy = recent.find((r) => r.status === 'running' || r.status === 'pending');
    if (busy) {
      const summary: RolloutSummary = { status: 'deferred', instances: 0, message: `release v${busy.version} is being deployed now; ${later}` };
      return { status: 'deferred', summary };
    }
    const running = (await tx.instances.listForApp(app.id, { active: true })).filter((i) => i.desiredState === 'running');
    const current = recent.find((r) => r.status === 'succeeded' && running.some((i) => i.releaseId === r.id));
    if (running.length === 0 || !current) {
      return { status: 'none', summary: { status: 'none', instances: 0, message: `no instance of ${app.name} runs; ${later}` } };
    }
    const now = toTimestamp(this.#o.clock.now());
    const release: Release = {
      ...current,
      id: newId('release'),
      version: (recent[0]?.version ?? (await tx.releases.latestVersion(app.id))) + 1,
      secretsVersion,
      status: 'running',
      reason: null,
      createdBy: userId,
      createdAt: now,
      updatedAt: now,
    };
    await tx.releases.create(release);
    const instances = running.map((old): Instance =>
      newPlacement({ id: newId('instance'), appId: old.appId, releaseId: release.id, hostId: old.hostId, region: old.region, at: now }),
    );
    for (const i of instances) await tx.instances.create(i);
    await this.#o.audit.record(tx, ctx, {
      orgId: app.orgId,
      action: 'secret.rollout',
      target: release.id,
      outcome: 'success',
      details: { app: app.name, version: release.version, from_version: current.version, secrets_version: secretsVersion, strategy: release.strategy, instances: instances.length },
    });
    const summary: RolloutSummary = {
      status: 'started',
      release: release.version,
      instances: instances.length,
      message: `release v${release.version} (v${current.version} with secrets version ${secretsVersion}) replaces ${instances.length} instance(s); old ones stop only after new ones pass their health checks`,
    };
    return { status: 'started', releaseId: release.id, summary };
  }
}
