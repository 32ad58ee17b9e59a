/**
 * BackupService: encrypted off-site backups of an app's volumes with restic (docs/backups.md).
 *
 * - Each org has one target (a restic repository) and one backup key: 32 random bytes, used as the
 *   repository password, sealed with the full repository URL (which may hold a password of its own)
 *   under the server's root data key (purpose `backup-key`, bound to the org). The root key is itself wrapped by the KEK, so the hierarchy is the one TOTP secrets use and a
 *   KEK rotation keeps the key readable. The key is unsealed for one operation, handed to restic on its
 *   stdin, and wiped; it is never in argv, an environment, a file, a log or an answer.
 * - Each volume has a schedule (cron, UTC; default daily) and a retention policy (default 7 daily,
 *   4 weekly, 12 monthly, 6 yearly). Every attempt is a run in the store, 'running' until it ends.
 * - Loud failure: a failed backup, restore, drill or retention is a failed run (`ward backups list`), an
 *   audit event with outcome `failure`, a metric (ward_backup_failures_total) and an error log line.
 *   Nothing is recorded as succeeded that restic did not confirm (see ResticEngine).
 */
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { newId, toTimestamp, UserError, type Clock, type Org } from '../core/index.ts';
import type { AppConfig } from '../config/index.ts';
import type { Principal } from '../auth/index.ts';
import { SYSTEM_CONTEXT, type Auditor, type CallContext } from '../audit/index.ts';
import { seal, SealError, unseal, type SealingKeys } from '../secrets/index.ts';
import type { BackupConsistency, BackupPolicyRecord, BackupRunKind, BackupRunRecord, BackupTargetRecord, Store, VolumeRecord } from '../store/index.ts';
import {
  BackupMetrics,
  cronProblem,
  DEFAULT_RETENTION,
  parseCron,
  redactRepository,
  repositoryKind,
  ResticError,
  retentionProblem,
  type BackupTarget,
  type DrillResult,
  type ResticEngine,
  type RetentionPolicy,
  type Scratch,
} from '../backups/index.ts';
import { contextOf } from './audited.ts';
import type { AppService, AppView } from './apps.ts';
import type { OrgService } from './orgs.ts';

/** DEFAULT_SCHEDULE backs a volume up once a day, at 03:00 UTC. */
export const DEFAULT_SCHEDULE = '0 3 * * *';
/** DRILL_INTERVAL_MS is how often each org's volumes are drilled by themselves: weekly. */
export const DRILL_INTERVAL_MS = 7 * 86_400_000;
/** DRILL_SUBSET is the share of pack files a drill's `restic check` reads back (all of them on a manual verify). */
export const DRILL_SUBSET = '10%';
/** BACKUP_COMMAND_TIMEOUT_MS bounds a mount's backup_command (a pg_dump of a large database is slow). */
export const BACKUP_COMMAND_TIMEOUT_MS = 2 * 3600_000;
/** SEAL_PURPOSE is the SealingKeys purpose the org backup keys are sealed under. */
const SEAL_PURPOSE = 'backup-key';

/**
 * VolumeHost is what backups need of the host holding a volume: in `ward server` the agent in the same
 * process (its VolumeManager and Runtime). A volume on another host cannot be backed up from here yet
 * (`unavailable`).
 */
export interface VolumeHost {
  /** hostId is this host's id; a volume elsewhere is refused. */
  hostId(): string | undefined;
  /** withMounted runs fn with the volume's files mounted (VolumeManager.withMounted, docs/volumes.md). */
  withMounted<T>(volume: VolumeRecord, purpose: 'backup' | 'restore', fn: (dir: string) => Promise<T>): Promise<T>;
  /** instancesUsing lists the instances on this host that have the volume mounted now. */
  instancesUsing(volumeId: string): string[];
  /** exec runs argv inside a running instance (Runtime.exec). */
  exec(instanceId: string, argv: string[], options: { timeoutMs: number }): Promise<{ code: number; stdout: string; stderr: string }>;
}

export interface BackupLogger {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

export interface BackupServiceOptions {
  store: Store;
  clock: Clock;
  orgs: OrgService;
  apps: AppService;
  audit: Auditor;
  sealing: SealingKeys;
  engine: ResticEngine;
  metrics: BackupMetrics;
  /** scratch is where drills restore (a tmpfs per drill in `ward server`). */
  scratch: Scratch;
  /** host is this process's agent; without one, run, restore and verify answer `unavailable`. */
  host?: () => VolumeHost | undefined;
  logger: BackupLogger;
}

/** TargetView is an org's target as answers show it: the repository with any password in it hidden. */
export interface TargetView {
  org: string;
  repository: string;
  kind: string;
  nextDrillAt: string;
  updatedAt: string;
}

/** PolicyView is a volume's schedule and retention, defaults filled in. */
export interface PolicyView {
  volume: string;
  schedule: string;
  retention: RetentionPolicy;
  nextRunAt: string | null;
}

/** BackupRunView is a run as answers show it. */
export type BackupRunView = BackupRunRecord;

function errorText(e: unknown): string {
  if (e instanceof ResticError || e instanceof UserError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** policyOf fills a volume's policy with the defaults. */
function retentionOf(p: BackupPolicyRecord | undefined): RetentionPolicy {
  return p ? { daily: p.keepDaily, weekly: p.keepWeekly, monthly: p.keepMonthly, yearly: p.keepYearly } : { ...DEFAULT_RETENTION };
}

export class BackupService {
  readonly #o: BackupServiceOptions;
  /** #busy serialises operations on one volume in this process: a backup, restore or drill at a time. */
  readonly #busy = new Map<string, string>();

  constructor(o: BackupServiceOptions) {
    this.#o = o;
  }

  #now(): string {
    return toTimestamp(this.#o.clock.now());
  }

  // --- targets -----------------------------------------------------------------------------------

  /**
   * setTarget points the org's backups at a restic repository (org:manage). The org's backup key is made
   * on the first call and kept when the repository changes (so an old repository stays readable with
   * it). The repository is opened before anything is stored: an empty one is initialized, one made with
   * another key is refused, an unreachable one fails; either way nothing changes.
   */
  async setTarget(p: Principal, orgRef: string, input: { repository: unknown }, ctx: CallContext = contextOf(p)): Promise<{ org: Org; target: TargetView; initialized: boolean }> {
    const repository = input.repository;
    if (typeof repository !== 'string' || repositoryKind(repository) === undefined) {
      throw new UserError('bad_request', 'the repository must be an absolute path, sftp:USER@HOST:/PATH, s3:HOST/BUCKET/PATH or rest:https://HOST/PATH', {
        hint: 'for example: ward backups target set --repository /srv/ward-backups (a path on this host is not off-site: use it for tests only)',
      });
    }
    const { org } = await this.#o.orgs.resolve(p, orgRef, 'org:manage', ctx);
    const existing = await this.#o.store.backups.getTarget(org.id);
    const key = existing ? (await this.#unsealTarget(existing)).password : Buffer.from(randomBytes(32).toString('base64url'));
    let initialized = false;
    try {
      ({ initialized } = await this.#o.engine.open({ repository, password: key }));
    } catch (e) {
      key.fill(0);
      await this.#o.audit.record(this.#o.store, ctx, { orgId: org.id, action: 'backup.target.set', target: org.id, outcome: 'failure', details: { repository: redactRepository(repository), error: errorText(e) } });
      if (e instanceof ResticError && e.kind === 'wrong_password') {
        throw new UserError('backup_failed', `${redactRepository(repository)} is a restic repository made with another key: this org's backup key does not open it`, {
          hint: 'give each org an empty repository of its own; Ward initializes it',
        });
      }
      throw new UserError('backup_failed', `cannot open or initialize the repository ${redactRepository(repository)}: ${errorText(e)}`, { hint: 'check that the target is reachable from this host and writable' });
    }
    const now = this.#now();
    const record: BackupTargetRecord = {
      orgId: org.id,
      // A password inside the URL (rest:https://user:pw@…) is a secret too: the column keeps the URL with
      // it replaced by ***, and the whole URL is sealed with the key.
      repository: redactRepository(repository),
      passwordSealed: await seal(this.#o.sealing, SEAL_PURPOSE, JSON.stringify({ key: key.toString('utf8'), repository }), org.id),
      nextDrillAt: existing?.nextDrillAt ?? toTimestamp(new Date(this.#o.clock.now().getTime() + DRILL_INTERVAL_MS)),
      createdBy: existing?.createdBy ?? p.userId,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
    key.fill(0);
    await this.#o.store.transaction(async (tx) => {
      await tx.backups.putTarget(record);
      await this.#o.audit.record(tx, ctx, {
        orgId: org.id,
        action: 'backup.target.set',
        target: org.id,
        outcome: 'success',
        details: { repository: redactRepository(repository), kind: repositoryKind(repository), initialized, previous: existing ? redactRepository(existing.repository) : null },
      });
    });
    return { org, target: this.#targetView(org, record), initialized };
  }

  /** showTarget returns the org's target (org:read), or not_found. */
  async showTarget(p: Principal, orgRef: string, ctx: CallContext = contextOf(p)): Promise<{ org: Org; target: TargetView }> {
    const { org } = await this.#o.orgs.resolve(p, orgRef, 'org:read', ctx);
    const t = await this.#o.store.backups.getTarget(org.id);
    if (!t) throw noTarget(org.name);
    return { org, target: this.#targetView(org, t) };
  }

  #targetView(org: Org, t: BackupTargetRecord): TargetView {
    return { org: org.name, repository: redactRepository(t.repository), kind: repositoryKind(t.repository) ?? 'unknown', nextDrillAt: t.nextDrillAt, updatedAt: t.updatedAt };
  }

  /** #unsealTarget opens the sealed key and full repository URL of a target; the caller wipes the password. */
  async #unsealTarget(t: BackupTargetRecord): Promise<BackupTarget> {
    try {
      const plain = await unseal(this.#o.sealing, SEAL_PURPOSE, t.passwordSealed, t.orgId);
      const { key, repository } = JSON.parse(plain.toString('utf8')) as { key: string; repository: string };
      plain.fill(0);
      return { repository, password: Buffer.from(key, 'utf8') };
    } catch (e) {
      if (!(e instanceof SealError)) throw e;
      throw new UserError('secrets_unreadable', `the backup key of org ${t.orgId} does not open: ${e.message}`, { hint: 'the server runs with another master key, or the database row was altered' });
    }
  }

  async #target(orgId: string, orgName: string): Promise<BackupTarget> {
    const t = await this.#o.store.backups.getTarget(orgId);
    if (!t) throw noTarget(orgName);
    return this.#unsealTarget(t);
  }

  // --- policies ----------------------------------------------------------------------------------

  /** #volume resolves an app (with action) and one of its volumes by name. */
  async #volume(p: Principal, appRef: string, name: string, action: Parameters<AppService['resolve']>[2], ctx: CallContext): Promise<{ app: AppView; volume: VolumeRecord }> {
    const app = await this.#o.apps.resolve(p, appRef, action, ctx);
    const volume = await this.#o.store.volumes.findByName(app.id, name);
    if (!volume) throw new UserError('not_found', `app "${app.name}" has no volume "${name}"`, { hint: `list them: ward volumes list -a ${app.name}` });
    return { app, volume };
  }

  /** showPolicy returns a volume's schedule and retention, defaults included (app:read). */
  async showPolicy(p: Principal, appRef: string, name: string, ctx: CallContext = contextOf(p)): Promise<PolicyView> {
    const { volume } = await this.#volume(p, appRef, name, 'app:read', ctx);
    const pol = await this.#o.store.backups.getPolicy(volume.id);
    return { volume: volume.name, schedule: pol?.schedule ?? DEFAULT_SCHEDULE, retention: retentionOf(pol), nextRunAt: pol?.nextRunAt ?? null };
  }

  /** setPolicy changes a volume's schedule and/or retention (app:deploy); what is not given keeps its value. */
  async setPolicy(p: Principal, appRef: string, name: string, input: { schedule?: unknown; retention?: Partial<Record<keyof RetentionPolicy, unknown>> }, ctx: CallContext = contextOf(p)): Promise<PolicyView> {
    if (input.schedule !== undefined && (typeof input.schedule !== 'string' || cronProblem(input.schedule) !== undefined)) {
      throw new UserError('bad_request', `invalid schedule: ${typeof input.schedule === 'string' ? cronProblem(input.schedule) : 'a cron expression is required'}`, {
        hint: 'five fields, UTC: "30 2 * * *" is 02:30 every day; @daily, @weekly and @hourly work too',
      });
    }
    const { app, volume } = await this.#volume(p, appRef, name, 'app:deploy', ctx);
    return this.#o.store.transaction(async (tx) => {
      const before = await tx.backups.getPolicy(volume.id);
      const retention = { ...retentionOf(before) };
      for (const k of ['daily', 'weekly', 'monthly', 'yearly'] as const) {
        const v = input.retention?.[k];
        if (v !== undefined) retention[k] = v as number;
      }
      const problem = retentionProblem(retention);
      if (problem) throw new UserError('bad_request', `invalid retention: ${problem}`);
      const schedule = (input.schedule as string | undefined)?.trim() ?? before?.schedule ?? DEFAULT_SCHEDULE;
      const now = this.#o.clock.now();
      const rec: BackupPolicyRecord = {
        volumeId: volume.id,
        orgId: volume.orgId,
        schedule,
        keepDaily: retention.daily,
        keepWeekly: retention.weekly,
        keepMonthly: retention.monthly,
        keepYearly: retention.yearly,
        nextRunAt: schedule === before?.schedule && before ? before.nextRunAt : toTimestamp(parseCron(schedule).next(now)),
        updatedAt: toTimestamp(now),
      };
      await tx.backups.putPolicy(rec);
      await this.#o.audit.record(tx, ctx, { orgId: app.orgId, action: 'backup.policy.set', target: volume.id, outcome: 'success', details: { app: app.name, volume: volume.name, schedule, retention } });
      return { volume: volume.name, schedule, retention, nextRunAt: rec.nextRunAt };
    });
  }

  // --- runs --------------------------------------------------------------------------------------

  /** list returns the app's backup, restore and drill runs, newest first, failed ones included (app:read). */
  async list(p: Principal, appRef: string, q: { volume?: string; limit?: number } = {}, ctx: CallContext = contextOf(p)): Promise<{ app: AppView; runs: BackupRunView[] }> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:read', ctx);
    const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
    if (q.volume !== undefined) {
      const volume = await this.#o.store.volumes.findByName(app.id, q.volume);
      // A destroyed volume's runs are still listed by name.
      const runs = volume
        ? await this.#o.store.backups.listRuns(app.orgId, { volumeId: volume.id, limit })
        : (await this.#o.store.backups.listRuns(app.orgId, { limit: 500 })).filter((r) => r.appId === app.id && r.volumeName === q.volume).slice(0, limit);
      return { app, runs };
    }
    return { app, runs: (await this.#o.store.backups.listRuns(app.orgId, { limit: 500 })).filter((r) => r.appId === app.id).slice(0, limit) };
  }

  /** run backs a volume up now (app:deploy) and returns the finished run; a failed backup throws `backup_failed` after it is recorded. */
  async run(p: Principal, appRef: string, name: string, ctx: CallContext = contextOf(p)): Promise<BackupRunView> {
    const { app, volume } = await this.#volume(p, appRef, name, 'app:deploy', ctx);
    if (!(await this.#o.store.backups.getTarget(app.orgId))) throw noTarget((await this.#o.store.orgs.get(app.orgId))?.name ?? app.orgId);
    // No host to read the volume on is `unavailable` before anything is recorded: nothing was attempted.
    this.#host(volume);
    const run = await this.backupVolume(volume, 'manual', p.userId, ctx);
    if (run.status !== 'succeeded') throw runFailed(run);
    return run;
  }

  /**
   * verify runs a restore drill of a volume's newest snapshot, or of `snapshot` (app:deploy): restic
   * check reading back every pack, a restore into scratch and a comparison with the snapshot.
   */
  async verify(p: Principal, appRef: string, name: string, input: { snapshot?: string } = {}, ctx: CallContext = contextOf(p)): Promise<BackupRunView> {
    const { volume } = await this.#volume(p, appRef, name, 'app:deploy', ctx);
    const run = await this.drillVolume(volume, 'manual', p.userId, ctx, { snapshot: input.snapshot, subset: '100%' });
    if (run.status !== 'succeeded') throw runFailed(run);
    return run;
  }

  /**
   * restore replaces a volume's files with a snapshot (app:destroy: it overwrites data). It is refused
   * while an instance has the volume mounted unless `force`: restoring under a running database corrupts
   * it. The snapshot is restored beside the old files and checked before they are replaced.
   */
  async restore(p: Principal, appRef: string, name: string, input: { snapshot?: string; force?: boolean } = {}, ctx: CallContext = contextOf(p)): Promise<BackupRunView> {
    const { app, volume } = await this.#volume(p, appRef, name, 'app:destroy', ctx);
    const host = this.#host(volume);
    const users = host.instancesUsing(volume.id);
    if (users.length > 0 && !input.force) {
      throw new UserError('restore_refused', `volume "${volume.name}" is mounted by instance ${users.join(', ')}: restoring under a running app corrupts what it writes`, {
        hint: `stop the app first (ward scale count 0 -a ${app.name}), or pass --force to restore under it anyway`,
      });
    }
    const snapshot = await this.#snapshotFor(volume, input.snapshot);
    const run = await this.#track(volume, 'restore', 'manual', p.userId, ctx, snapshot, async (t) => {
      const r = await host.withMounted(volume, 'restore', (dir) => this.#o.engine.restoreInto(t, snapshot, dir));
      return { snapshotId: snapshot, files: r.files, bytes: r.bytes, details: { forced: users.length > 0 } };
    });
    if (run.status !== 'succeeded') throw runFailed(run);
    return run;
  }

  async #snapshotFor(volume: VolumeRecord, given: string | undefined): Promise<string> {
    if (given !== undefined) {
      if (!/^[0-9a-f]{8,64}$/.test(given)) throw new UserError('bad_request', 'a snapshot id is 8 to 64 hex digits', { hint: 'ward backups list shows them' });
      return given;
    }
    const last = await this.#o.store.backups.lastSnapshot(volume.id);
    if (!last?.snapshotId) throw new UserError('not_found', `volume "${volume.name}" has no backup yet`, { hint: 'make one: ward backups run VOLUME' });
    return last.snapshotId;
  }

  #host(volume: VolumeRecord): VolumeHost {
    const host = this.#o.host?.();
    if (!host) throw new UserError('unavailable', 'no agent runs with this control plane, so volumes cannot be read here', { hint: 'run ward server with the agent role' });
    if (host.hostId() !== volume.hostId) {
      throw new UserError('unavailable', `volume "${volume.name}" lives on host ${volume.hostId}, not on this server's host`, { hint: 'backups of volumes on other hosts run on those hosts (not yet supported)' });
    }
    return host;
  }

  /**
   * backupVolume backs a volume up and applies its retention; it records the run whatever happens and
   * returns it (failed runs too). The scheduler calls it with trigger 'schedule'.
   */
  async backupVolume(volume: VolumeRecord, trigger: 'manual' | 'schedule', requestedBy: string | null, ctx: CallContext = SYSTEM_CONTEXT): Promise<BackupRunView> {
    return this.#track(volume, 'backup', trigger, requestedBy, ctx, null, async (t) => {
      const host = this.#host(volume);
      const { consistency, result } = await host.withMounted(volume, 'backup', async (dir) => {
        const consistency = await this.#quiesce(host, volume);
        // restic refuses to snapshot an empty directory ("snapshot is empty"); a volume nothing has
        // written to yet is not a failure, and there is nothing to keep: the run says so, with no snapshot.
        if ((await readdir(dir)).length === 0) return { consistency, result: undefined };
        const result = await this.#o.engine.backup(t, { volumeId: volume.id, dir, tags: [`consistency=${consistency}`] });
        return { consistency, result };
      });
      if (!result) return { snapshotId: null, consistency, files: 0, bytes: 0, details: { empty: true } };
      const s = result.summary;
      const details: Record<string, unknown> = { data_added: s.data_added, files_new: s.files_new, files_changed: s.files_changed, restic_seconds: s.total_duration };
      // Retention is part of the backup's job but not of its success: the snapshot exists either way.
      // A failed forget is its own loud failure (audit, metric, log) and is noted on the run.
      try {
        const pol = await this.#o.store.backups.getPolicy(volume.id);
        const f = await this.#o.engine.forget(t, volume.id, retentionOf(pol));
        const pruned = await this.#o.store.backups.markPruned(volume.id, f.removed, this.#now());
        details.retention = { kept: f.kept.length, removed: f.removed.length, runs_marked: pruned };
        this.#o.metrics.finished('retention', true, 0, volume.id, this.#o.clock.now());
      } catch (e) {
        details.retention_error = errorText(e);
        this.#o.metrics.finished('retention', false, 0, volume.id, this.#o.clock.now());
        this.#o.logger.error({ org_id: volume.orgId, volume_id: volume.id, err: errorText(e) }, 'backup retention failed');
        await this.#o.audit.record(this.#o.store, ctx, { orgId: volume.orgId, action: 'backup.retention', target: volume.id, outcome: 'failure', details: { volume: volume.name, error: errorText(e) } });
      }
      return { snapshotId: result.snapshotId, consistency, files: s.total_files_processed, bytes: s.total_bytes_processed, details };
    });
  }

  /**
   * #quiesce makes the volume's files consistent before a backup: the mount's backup_command runs in the
   * instance that has it mounted ('command'); with no command, files of a running instance are copied
   * live ('live', and the run says so); with no instance, they are at rest ('stopped'). A command that
   * fails fails the backup: a backup the app asked to be consistent is not silently taken live.
   */
  async #quiesce(host: VolumeHost, volume: VolumeRecord): Promise<BackupConsistency> {
    const instances = host.instancesUsing(volume.id);
    if (instances.length === 0) return 'stopped';
    const instanceId = instances[0]!;
    const command = await this.#backupCommand(instanceId, volume.name);
    if (!command) return 'live';
    // The command is the app's own, from its ward.toml, run inside its own confinement: a shell there is
    // the app's, not the host's (Ward never builds a shell string for the host).
    const r = await host.exec(instanceId, ['/bin/sh', '-c', command], { timeoutMs: BACKUP_COMMAND_TIMEOUT_MS });
    if (r.code !== 0) {
      const tail = r.stderr.trim().split('\n').slice(-3).join(' | ');
      throw new Error(`the backup_command of mount "${volume.name}" exited with ${r.code} in instance ${instanceId}${tail ? `: ${tail}` : ''}`);
    }
    return 'command';
  }

  async #backupCommand(instanceId: string, volumeName: string): Promise<string | undefined> {
    const ins = await this.#o.store.instances.get(instanceId);
    const rel = ins ? await this.#o.store.releases.get(ins.releaseId) : undefined;
    if (!rel) return undefined;
    const config = JSON.parse(rel.config) as Pick<AppConfig, 'mounts'>;
    return config.mounts?.find((m) => m.source === volumeName)?.backupCommand || undefined;
  }

  /** drillVolume runs a restore drill of the volume's newest snapshot (or the one given) and records it. */
  async drillVolume(volume: VolumeRecord, trigger: 'manual' | 'schedule', requestedBy: string | null, ctx: CallContext = SYSTEM_CONTEXT, o: { snapshot?: string | undefined; subset?: string } = {}): Promise<BackupRunView> {
    const snapshot = await this.#snapshotFor(volume, o.snapshot);
    return this.#track(volume, 'drill', trigger, requestedBy, ctx, snapshot, async (t) => {
      const d: DrillResult = await this.#o.engine.drill(t, snapshot, this.#o.scratch, o.subset ?? DRILL_SUBSET);
      const details = { check_ms: d.checkMs, restore_ms: d.restoreMs, tree_sha256: d.treeDigest, subset: o.subset ?? DRILL_SUBSET, problems: d.problems.slice(0, 20) };
      if (!d.ok) throw Object.assign(new Error(`restore drill failed: ${d.problems.slice(0, 3).join('; ')}`), { details, files: d.files, bytes: d.bytes });
      return { snapshotId: snapshot, files: d.files, bytes: d.bytes, details };
    });
  }

  /**
   * #track records one run around fn: 'running' first (so a crash leaves a trace that the next start
   * fails), then 'succeeded' with what fn returned, or 'failed' with its error, plus the audit event,
   * metric and log line either way. It never throws for fn's failure: the returned run says.
   */
  async #track(
    volume: VolumeRecord,
    kind: BackupRunKind,
    trigger: 'manual' | 'schedule',
    requestedBy: string | null,
    ctx: CallContext,
    snapshotId: string | null,
    fn: (t: BackupTarget) => Promise<{ snapshotId: string | null; consistency?: BackupConsistency; files: number; bytes: number; details: Record<string, unknown> }>,
  ): Promise<BackupRunView> {
    const holder = this.#busy.get(volume.id);
    if (holder) throw new UserError('conflict', `a ${holder} of volume "${volume.name}" is running`, { hint: 'wait for it to finish: ward backups list' });
    this.#busy.set(volume.id, kind);
    const startedAt = this.#o.clock.now();
    const t0 = performance.now();
    const run: BackupRunRecord = {
      id: newId('backupRun'),
      orgId: volume.orgId,
      appId: volume.appId,
      volumeId: volume.id,
      volumeName: volume.name,
      kind,
      trigger,
      status: 'running',
      snapshotId,
      consistency: null,
      files: null,
      bytes: null,
      durationMs: null,
      error: null,
      details: null,
      requestedBy,
      startedAt: toTimestamp(startedAt),
      finishedAt: null,
      prunedAt: null,
    };
    let target: BackupTarget | undefined;
    try {
      await this.#o.store.backups.createRun(run);
      let outcome: Awaited<ReturnType<typeof fn>> | undefined;
      let failure: unknown;
      try {
        const org = (await this.#o.store.orgs.get(volume.orgId))!;
        target = await this.#target(volume.orgId, org.name);
        outcome = await fn(target);
      } catch (e) {
        failure = e;
      }
      const finishedAt = this.#o.clock.now();
      const durationMs = Math.round(performance.now() - t0);
      const ended: BackupRunRecord = failure === undefined
        ? { ...run, status: 'succeeded', snapshotId: outcome!.snapshotId, consistency: outcome!.consistency ?? null, files: outcome!.files, bytes: outcome!.bytes, details: outcome!.details, durationMs, finishedAt: toTimestamp(finishedAt) }
        : {
            ...run,
            status: 'failed',
            error: errorText(failure).slice(0, 2000),
            details: ((failure as { details?: Record<string, unknown> }).details) ?? null,
            files: (failure as { files?: number }).files ?? null,
            bytes: (failure as { bytes?: number }).bytes ?? null,
            durationMs,
            finishedAt: toTimestamp(finishedAt),
          };
      const ok = ended.status === 'succeeded';
      await this.#o.store.transaction(async (tx) => {
        const finished = await tx.backups.finishRun(run.id, {
          status: ended.status as 'succeeded' | 'failed',
          finishedAt: ended.finishedAt!,
          durationMs,
          snapshotId: ended.snapshotId,
          consistency: ended.consistency,
          files: ended.files,
          bytes: ended.bytes,
          error: ended.error,
          details: ended.details,
        });
        if (!finished) throw new Error(`backup run ${run.id} was ended by someone else while it ran`);
        await this.#o.audit.record(tx, ctx, {
          orgId: volume.orgId,
          action: `backup.${kind}`,
          target: volume.id,
          outcome: ok ? 'success' : 'failure',
          details: {
            run_id: run.id,
            volume: volume.name,
            trigger,
            snapshot_id: ended.snapshotId,
            ...(ended.consistency ? { consistency: ended.consistency } : {}),
            duration_ms: durationMs,
            ...(ok ? {} : { error: ended.error }),
          },
        });
      });
      this.#o.metrics.finished(kind, ok, durationMs / 1000, volume.id, finishedAt);
      const log = { org_id: volume.orgId, app_id: volume.appId, volume_id: volume.id, run_id: run.id, kind, trigger, snapshot_id: ended.snapshotId, duration_ms: durationMs };
      if (ok) this.#o.logger.info({ ...log, consistency: ended.consistency, files: ended.files, bytes: ended.bytes }, `backup ${kind} succeeded`);
      else this.#o.logger.error({ ...log, err: ended.error }, `backup ${kind} FAILED`);
      return ended;
    } finally {
      target?.password.fill(0);
      this.#busy.delete(volume.id);
    }
  }

  // --- scheduling --------------------------------------------------------------------------------

  /**
   * recover fails the runs a previous process left 'running' (it died mid-run), loudly like any failure.
   * Call it once at start, before the scheduler's first tick.
   */
  async recover(): Promise<number> {
    const hostId = this.#o.host?.()?.hostId();
    if (!hostId) return 0;
    const now = this.#now();
    // Only this host's volumes: another host's runs are its own to judge.
    const volumeIds = (await this.#o.store.volumes.listForHost(hostId)).map((v) => v.id);
    const failed = await this.#o.store.backups.failInterrupted(now, now, 'interrupted: the server stopped while this ran; nothing of it is trusted', volumeIds);
    for (const r of failed) {
      this.#o.metrics.finished(r.kind, false, 0, r.volumeId, this.#o.clock.now());
      this.#o.logger.error({ org_id: r.orgId, volume_id: r.volumeId, run_id: r.id, kind: r.kind }, `backup ${r.kind} FAILED: interrupted`);
      await this.#o.audit.record(this.#o.store, SYSTEM_CONTEXT, { orgId: r.orgId, action: `backup.${r.kind}`, target: r.volumeId, outcome: 'failure', details: { run_id: r.id, volume: r.volumeName, error: r.error } });
    }
    return failed.length;
  }

  /**
   * tick runs what is due on this host, one thing at a time: each volume whose next backup time has come
   * (volumes of orgs with a target get the default policy on first sight), then each org's weekly drill.
   * Next times are moved before the work starts and are stored, so a restart neither repeats nor skips a
   * backup: a time that passed while the server was down runs on the first tick.
   */
  async tick(): Promise<{ backups: number; drills: number }> {
    const host = this.#o.host?.();
    const hostId = host?.hostId();
    if (!host || !hostId) return { backups: 0, drills: 0 };
    let backups = 0;
    let drills = 0;
    const now = this.#o.clock.now();
    const nowText = toTimestamp(now);
    for (const target of await this.#o.store.backups.listTargets()) {
      // A volume no instance has used yet was never formatted: there is nothing to back up.
      const volumes = (await this.#o.store.volumes.listForHost(hostId)).filter((v) => v.orgId === target.orgId && v.formattedAt !== null);
      for (const v of volumes) {
        let pol = await this.#o.store.backups.getPolicy(v.id);
        if (!pol) {
          pol = {
            volumeId: v.id,
            orgId: v.orgId,
            schedule: DEFAULT_SCHEDULE,
            keepDaily: DEFAULT_RETENTION.daily,
            keepWeekly: DEFAULT_RETENTION.weekly,
            keepMonthly: DEFAULT_RETENTION.monthly,
            keepYearly: DEFAULT_RETENTION.yearly,
            nextRunAt: toTimestamp(parseCron(DEFAULT_SCHEDULE).next(now)),
            updatedAt: nowText,
          };
          await this.#o.store.backups.putPolicy(pol);
        }
        if (pol.nextRunAt > nowText || this.#busy.has(v.id)) continue;
        await this.#o.store.backups.setNextRun(v.id, toTimestamp(parseCron(pol.schedule).next(now)));
        backups += 1;
        await this.backupVolume(v, 'schedule', null).catch((e: unknown) => this.#o.logger.error({ volume_id: v.id, err: errorText(e) }, 'scheduled backup could not run'));
      }
      if (target.nextDrillAt <= nowText) {
        await this.#o.store.backups.setNextDrill(target.orgId, toTimestamp(new Date(now.getTime() + DRILL_INTERVAL_MS)));
        for (const v of volumes) {
          if (this.#busy.has(v.id) || !(await this.#o.store.backups.lastSnapshot(v.id))) continue;
          drills += 1;
          await this.drillVolume(v, 'schedule', null).catch((e: unknown) => this.#o.logger.error({ volume_id: v.id, err: errorText(e) }, 'scheduled drill could not run'));
        }
      }
    }
    return { backups, drills };
  }
}

function noTarget(orgName: string): UserError {
  return new UserError('backup_target_missing', `org "${orgName}" has no backup target`, { hint: `set one: ward backups target set --repository URL --org ${orgName}` });
}

function runFailed(run: BackupRunView): UserError {
  return new UserError('backup_failed', `${run.kind} of volume "${run.volumeName}" failed: ${run.error ?? 'unknown error'}`, {
    hint: 'the run is recorded (ward backups list); fix the cause and run it again',
    details: { run_id: run.id },
  });
}
