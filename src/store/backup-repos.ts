import type { Selectable } from 'kysely';
import type { BackupPoliciesTable, BackupRunsTable, BackupTargetsTable } from './schema.ts';
import type { BackupPolicyRecord, BackupRepo, BackupRunEnd, BackupRunKind, BackupRunRecord, BackupTargetRecord } from './types.ts';
import { guardedWrite, type Ctx } from './kysely-store.ts';

// The repo of issue "Volumes", part backups (migration 9, docs/backups.md). It follows kysely-store.ts:
// one implementation for both databases. The repository password is stored sealed only.

function toTarget(r: Selectable<BackupTargetsTable>): BackupTargetRecord {
  return {
    orgId: r.org_id,
    repository: r.repository,
    passwordSealed: r.password_sealed,
    nextDrillAt: r.next_drill_at,
    createdBy: r.created_by ?? null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toPolicy(r: Selectable<BackupPoliciesTable>): BackupPolicyRecord {
  return {
    volumeId: r.volume_id,
    orgId: r.org_id,
    schedule: r.schedule,
    keepDaily: Number(r.keep_daily),
    keepWeekly: Number(r.keep_weekly),
    keepMonthly: Number(r.keep_monthly),
    keepYearly: Number(r.keep_yearly),
    nextRunAt: r.next_run_at,
    updatedAt: r.updated_at,
  };
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function toRun(r: Selectable<BackupRunsTable>): BackupRunRecord {
  return {
    id: r.id,
    orgId: r.org_id,
    appId: r.app_id ?? null,
    volumeId: r.volume_id,
    volumeName: r.volume_name,
    kind: r.kind as BackupRunKind,
    trigger: r.trigger === 'schedule' ? 'schedule' : 'manual',
    status: r.status as BackupRunRecord['status'],
    snapshotId: r.snapshot_id ?? null,
    consistency: r.consistency === 'command' || r.consistency === 'live' || r.consistency === 'stopped' ? r.consistency : null,
    files: num(r.files),
    bytes: num(r.bytes),
    durationMs: num(r.duration_ms),
    error: r.error ?? null,
    details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
    requestedBy: r.requested_by ?? null,
    startedAt: r.started_at,
    finishedAt: r.finished_at ?? null,
    prunedAt: r.pruned_at ?? null,
  };
}

export class Backups implements BackupRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async getTarget(orgId: string): Promise<BackupTargetRecord | undefined> {
    const r = await this.#c.db.selectFrom('backup_targets').selectAll().where('org_id', '=', orgId).executeTakeFirst();
    return r && toTarget(r);
  }

  async putTarget(t: BackupTargetRecord): Promise<void> {
    const row = { repository: t.repository, password_sealed: t.passwordSealed, next_drill_at: t.nextDrillAt, created_by: t.createdBy, created_at: t.createdAt, updated_at: t.updatedAt };
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('backup_targets')
        .values({ org_id: t.orgId, ...row })
        .onConflict((oc) => oc.column('org_id').doUpdateSet(row))
        .execute(),
    );
  }

  async listTargets(): Promise<BackupTargetRecord[]> {
    return (await this.#c.db.selectFrom('backup_targets').selectAll().orderBy('org_id').execute()).map(toTarget);
  }

  async setNextDrill(orgId: string, at: string): Promise<boolean> {
    const r = await this.#c.db.updateTable('backup_targets').set({ next_drill_at: at }).where('org_id', '=', orgId).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async getPolicy(volumeId: string): Promise<BackupPolicyRecord | undefined> {
    const r = await this.#c.db.selectFrom('backup_policies').selectAll().where('volume_id', '=', volumeId).executeTakeFirst();
    return r && toPolicy(r);
  }

  async putPolicy(p: BackupPolicyRecord): Promise<void> {
    const row = {
      org_id: p.orgId,
      schedule: p.schedule,
      keep_daily: p.keepDaily,
      keep_weekly: p.keepWeekly,
      keep_monthly: p.keepMonthly,
      keep_yearly: p.keepYearly,
      next_run_at: p.nextRunAt,
      updated_at: p.updatedAt,
    };
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('backup_policies')
        .values({ volume_id: p.volumeId, ...row })
        .onConflict((oc) => oc.column('volume_id').doUpdateSet(row))
        .execute(),
    );
  }

  async listPolicies(orgId?: string): Promise<BackupPolicyRecord[]> {
    let q = this.#c.db.selectFrom('backup_policies').selectAll();
    if (orgId !== undefined) q = q.where('org_id', '=', orgId);
    return (await q.orderBy('next_run_at').orderBy('volume_id').execute()).map(toPolicy);
  }

  async setNextRun(volumeId: string, at: string): Promise<boolean> {
    const r = await this.#c.db.updateTable('backup_policies').set({ next_run_at: at }).where('volume_id', '=', volumeId).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async createRun(r: BackupRunRecord): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('backup_runs')
        .values({
          id: r.id,
          org_id: r.orgId,
          app_id: r.appId,
          volume_id: r.volumeId,
          volume_name: r.volumeName,
          kind: r.kind,
          trigger: r.trigger,
          status: r.status,
          snapshot_id: r.snapshotId,
          consistency: r.consistency,
          files: r.files,
          bytes: r.bytes,
          duration_ms: r.durationMs,
          error: r.error,
          details: r.details ? JSON.stringify(r.details) : null,
          requested_by: r.requestedBy,
          started_at: r.startedAt,
          finished_at: r.finishedAt,
          pruned_at: r.prunedAt,
        })
        .execute(),
    );
  }

  async getRun(id: string): Promise<BackupRunRecord | undefined> {
    const r = await this.#c.db.selectFrom('backup_runs').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toRun(r);
  }

  async finishRun(id: string, end: BackupRunEnd): Promise<boolean> {
    const set: Partial<Record<keyof BackupRunsTable, unknown>> = { status: end.status, finished_at: end.finishedAt, duration_ms: end.durationMs };
    if (end.snapshotId !== undefined) set.snapshot_id = end.snapshotId;
    if (end.consistency !== undefined) set.consistency = end.consistency;
    if (end.files !== undefined) set.files = end.files;
    if (end.bytes !== undefined) set.bytes = end.bytes;
    if (end.error !== undefined) set.error = end.error;
    if (end.details !== undefined) set.details = end.details ? JSON.stringify(end.details) : null;
    const r = await this.#c.db
      .updateTable('backup_runs')
      .set(set as never)
      .where('id', '=', id)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async listRuns(orgId: string, q: { volumeId?: string; kinds?: BackupRunKind[]; limit?: number } = {}): Promise<BackupRunRecord[]> {
    let sel = this.#c.db.selectFrom('backup_runs').selectAll().where('org_id', '=', orgId);
    if (q.volumeId !== undefined) sel = sel.where('volume_id', '=', q.volumeId);
    if (q.kinds && q.kinds.length > 0) sel = sel.where('kind', 'in', q.kinds);
    return (await sel.orderBy('started_at', 'desc').orderBy('id', 'desc').limit(q.limit ?? 100).execute()).map(toRun);
  }

  async lastSnapshot(volumeId: string): Promise<BackupRunRecord | undefined> {
    const r = await this.#c.db
      .selectFrom('backup_runs')
      .selectAll()
      .where('volume_id', '=', volumeId)
      .where('kind', '=', 'backup')
      .where('status', '=', 'succeeded')
      .where('snapshot_id', 'is not', null)
      .where('pruned_at', 'is', null)
      .orderBy('started_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r && toRun(r);
  }

  async markPruned(volumeId: string, snapshotIds: string[], at: string): Promise<number> {
    if (snapshotIds.length === 0) return 0;
    const r = await this.#c.db
      .updateTable('backup_runs')
      .set({ pruned_at: at })
      .where('volume_id', '=', volumeId)
      .where('kind', '=', 'backup')
      .where('snapshot_id', 'in', snapshotIds)
      .where('pruned_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  async failInterrupted(before: string, at: string, error: string, volumeIds?: string[]): Promise<BackupRunRecord[]> {
    if (volumeIds !== undefined && volumeIds.length === 0) return [];
    let q = this.#c.db.selectFrom('backup_runs').select('id').where('status', '=', 'running').where('started_at', '<', before);
    if (volumeIds !== undefined) q = q.where('volume_id', 'in', volumeIds);
    const stuck = await q.execute();
    const out: BackupRunRecord[] = [];
    for (const { id } of stuck) {
      const r = await this.#c.db.updateTable('backup_runs').set({ status: 'failed', finished_at: at, error }).where('id', '=', id).where('status', '=', 'running').executeTakeFirst();
      if (Number(r.numUpdatedRows) > 0) out.push((await this.getRun(id))!);
    }
    return out;
  }
}
