import { sql } from 'kysely';
import type { Selectable } from 'kysely';
import type {
  DeployStrategyName,
  DesiredState,
  HealthState,
  Host,
  HostCapacity,
  HostStatus,
  Instance,
  InstanceReport,
  ObservedState,
  Release,
  ReleaseStatus,
} from '../core/index.ts';
import type { HostsTable, InstancesTable, ReleasesTable } from './schema.ts';
import type { HostRepo, InstanceRepo, ReleaseRepo } from './types.ts';
import { guardedWrite, type Ctx } from './kysely-store.ts';

// The repos of issue "Runtime" (migration 4): hosts, releases and instances. They follow
// kysely-store.ts: one implementation for both databases.

function toHost(r: Selectable<HostsTable>): Host {
  return {
    id: r.id,
    name: r.name,
    region: r.region,
    status: r.status as HostStatus,
    capacity: JSON.parse(r.capacity) as HostCapacity,
    lastHeartbeat: r.last_heartbeat,
    createdAt: r.created_at,
  };
}

function toRelease(r: Selectable<ReleasesTable>): Release {
  return {
    id: r.id,
    appId: r.app_id,
    version: Number(r.version),
    imageRef: r.image_ref,
    imageDigest: r.image_digest,
    config: r.config,
    secretsVersion: r.secrets_version === null || r.secrets_version === undefined ? null : Number(r.secrets_version),
    strategy: r.strategy as DeployStrategyName,
    status: r.status as ReleaseStatus,
    reason: r.reason ?? null,
    createdBy: r.created_by ?? null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    // Migration 7's fields are present only when set, so releases made without them read back as written.
    ...(r.target_count === null || r.target_count === undefined ? {} : { targetCount: Number(r.target_count) }),
    ...(r.previous_count === null || r.previous_count === undefined ? {} : { previousCount: Number(r.previous_count) }),
    ...(r.progress === null || r.progress === undefined ? {} : { progress: r.progress }),
    ...(Number(r.steps ?? 0) > 0 ? { steps: Number(r.steps) } : {}),
  };
}

const num = (v: number | null | undefined): number | null => (v === null || v === undefined ? null : Number(v));

function toInstance(r: Selectable<InstancesTable>): Instance {
  return {
    id: r.id,
    appId: r.app_id,
    releaseId: r.release_id,
    hostId: r.host_id,
    region: r.region,
    desiredState: r.desired_state as DesiredState,
    restartGeneration: Number(r.restart_generation),
    observedState: r.observed_state as ObservedState,
    health: r.health as HealthState,
    privateIpv6: r.private_ipv6 ?? null,
    privateIpv4: r.private_ipv4 ?? null,
    pid: num(r.pid),
    restarts: Number(r.restarts),
    lastExitCode: num(r.last_exit_code),
    lastExitReason: r.last_exit_reason ?? null,
    lastExitAt: r.last_exit_at ?? null,
    lastLog: r.last_log ? (JSON.parse(r.last_log) as string[]) : null,
    startedAt: r.started_at ?? null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export class Hosts implements HostRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async register(h: Host): Promise<void> {
    const values = {
      id: h.id,
      name: h.name,
      region: h.region,
      status: h.status,
      capacity: JSON.stringify(h.capacity),
      last_heartbeat: h.lastHeartbeat,
      created_at: h.createdAt,
    };
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('hosts')
        .values(values)
        .onConflict((oc) =>
          oc.column('id').doUpdateSet({ name: values.name, region: values.region, status: values.status, capacity: values.capacity, last_heartbeat: values.last_heartbeat }),
        )
        .execute(),
    );
  }

  async get(id: string): Promise<Host | undefined> {
    const r = await this.#c.db.selectFrom('hosts').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toHost(r);
  }

  async findByName(name: string): Promise<Host | undefined> {
    const r = await this.#c.db.selectFrom('hosts').selectAll().where('name', '=', name).executeTakeFirst();
    return r && toHost(r);
  }

  async list(): Promise<Host[]> {
    const order = this.#c.kind === 'postgres' ? sql`name collate "C"` : sql`name`;
    return (await this.#c.db.selectFrom('hosts').selectAll().orderBy(order).execute()).map(toHost);
  }

  async heartbeat(id: string, at: string): Promise<void> {
    await this.#c.db.updateTable('hosts').set({ last_heartbeat: at }).where('id', '=', id).where('last_heartbeat', '<', at).execute();
  }

  async setStatus(id: string, status: HostStatus): Promise<void> {
    await this.#c.db.updateTable('hosts').set({ status }).where('id', '=', id).execute();
  }
}

export class Releases implements ReleaseRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(r: Release): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('releases')
        .values({
          id: r.id,
          app_id: r.appId,
          version: r.version,
          image_ref: r.imageRef,
          image_digest: r.imageDigest,
          config: r.config,
          secrets_version: r.secretsVersion,
          strategy: r.strategy,
          status: r.status,
          reason: r.reason,
          created_by: r.createdBy,
          created_at: r.createdAt,
          updated_at: r.updatedAt,
          target_count: r.targetCount ?? null,
          previous_count: r.previousCount ?? null,
          progress: r.progress ?? null,
          steps: r.steps ?? 0,
        })
        .execute(),
    );
  }

  async get(id: string): Promise<Release | undefined> {
    const r = await this.#c.db.selectFrom('releases').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toRelease(r);
  }

  async findByVersion(appId: string, version: number): Promise<Release | undefined> {
    const r = await this.#c.db.selectFrom('releases').selectAll().where('app_id', '=', appId).where('version', '=', version).executeTakeFirst();
    return r && toRelease(r);
  }

  async latestVersion(appId: string): Promise<number> {
    const r = await this.#c.db
      .selectFrom('releases')
      .select((eb) => eb.fn.max('version').as('v'))
      .where('app_id', '=', appId)
      .executeTakeFirst();
    return r?.v === null || r?.v === undefined ? 0 : Number(r.v);
  }

  async listForApp(appId: string, limit?: number): Promise<Release[]> {
    let q = this.#c.db.selectFrom('releases').selectAll().where('app_id', '=', appId).orderBy('version', 'desc');
    if (limit !== undefined) q = q.limit(limit);
    return (await q.execute()).map(toRelease);
  }

  async listByStatus(statuses: readonly ReleaseStatus[]): Promise<Release[]> {
    if (statuses.length === 0) return [];
    const rows = await this.#c.db.selectFrom('releases').selectAll().where('status', 'in', [...statuses]).orderBy('created_at').orderBy('id').execute();
    return rows.map(toRelease);
  }

  async transition(id: string, from: readonly ReleaseStatus[], to: ReleaseStatus, reason: string | null, at: string): Promise<boolean> {
    if (from.length === 0) return false;
    const r = await this.#c.db
      .updateTable('releases')
      .set({ status: to, reason, updated_at: at })
      .where('id', '=', id)
      .where('status', 'in', [...from])
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async advance(id: string, expectedSteps: number, progress: string, at: string): Promise<boolean> {
    const r = await this.#c.db
      .updateTable('releases')
      .set({ progress, steps: expectedSteps + 1, updated_at: at })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('steps', '=', expectedSteps)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }
}

export class Instances implements InstanceRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(i: Instance): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('instances')
        .values({
          id: i.id,
          app_id: i.appId,
          release_id: i.releaseId,
          host_id: i.hostId,
          region: i.region,
          desired_state: i.desiredState,
          restart_generation: i.restartGeneration,
          observed_state: i.observedState,
          health: i.health,
          private_ipv6: i.privateIpv6,
          private_ipv4: i.privateIpv4,
          pid: i.pid,
          restarts: i.restarts,
          last_exit_code: i.lastExitCode,
          last_exit_reason: i.lastExitReason,
          last_exit_at: i.lastExitAt,
          last_log: i.lastLog === null ? null : JSON.stringify(i.lastLog),
          started_at: i.startedAt,
          created_at: i.createdAt,
          updated_at: i.updatedAt,
        })
        .execute(),
    );
  }

  async get(id: string): Promise<Instance | undefined> {
    const r = await this.#c.db.selectFrom('instances').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toInstance(r);
  }

  async listForApp(appId: string, options: { active?: boolean } = {}): Promise<Instance[]> {
    let q = this.#c.db.selectFrom('instances').selectAll().where('app_id', '=', appId);
    if (options.active) q = q.where((eb) => eb.or([eb('desired_state', '=', 'running'), eb('observed_state', '<>', 'stopped')]));
    return (await q.orderBy('created_at').orderBy('id').execute()).map(toInstance);
  }

  async listForRelease(releaseId: string): Promise<Instance[]> {
    const rows = await this.#c.db.selectFrom('instances').selectAll().where('release_id', '=', releaseId).orderBy('created_at').orderBy('id').execute();
    return rows.map(toInstance);
  }

  async listForHost(hostId: string): Promise<Instance[]> {
    const rows = await this.#c.db
      .selectFrom('instances')
      .selectAll()
      .where('host_id', '=', hostId)
      .where((eb) => eb.or([eb('desired_state', '=', 'running'), eb('observed_state', '<>', 'stopped')]))
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toInstance);
  }

  async setDesired(id: string, desired: DesiredState, at: string): Promise<boolean> {
    const r = await this.#c.db.updateTable('instances').set({ desired_state: desired, updated_at: at }).where('id', '=', id).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async requestRestart(id: string, at: string): Promise<number | undefined> {
    const r = await this.#c.db
      .updateTable('instances')
      .set((eb) => ({ restart_generation: eb('restart_generation', '+', 1), updated_at: at }))
      .where('id', '=', id)
      .returning('restart_generation')
      .executeTakeFirst();
    return r === undefined ? undefined : Number(r.restart_generation);
  }

  async report(id: string, r: InstanceReport, at: string): Promise<boolean> {
    const set: Partial<Record<keyof InstancesTable, unknown>> = { updated_at: at };
    if (r.observedState !== undefined) set.observed_state = r.observedState;
    if (r.health !== undefined) set.health = r.health;
    if (r.privateIpv6 !== undefined) set.private_ipv6 = r.privateIpv6;
    if (r.privateIpv4 !== undefined) set.private_ipv4 = r.privateIpv4;
    if (r.pid !== undefined) set.pid = r.pid;
    if (r.restarts !== undefined) set.restarts = r.restarts;
    if (r.lastExitCode !== undefined) set.last_exit_code = r.lastExitCode;
    if (r.lastExitReason !== undefined) set.last_exit_reason = r.lastExitReason;
    if (r.lastExitAt !== undefined) set.last_exit_at = r.lastExitAt;
    if (r.lastLog !== undefined) set.last_log = r.lastLog === null ? null : JSON.stringify(r.lastLog);
    if (r.startedAt !== undefined) set.started_at = r.startedAt;
    const res = await this.#c.db.updateTable('instances').set(set as never).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async delete(id: string): Promise<void> {
    await this.#c.db.deleteFrom('instances').where('id', '=', id).execute();
  }
}
