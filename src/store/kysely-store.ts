import { sql } from 'kysely';
import type { Kysely, Selectable } from 'kysely';
import type { App, Invite, Membership, Org, Role, Session, SessionKind, User } from '../core/index.ts';
import { CONSTRAINTS } from './schema.ts';
import type { AppsTable, AuditCheckpointsTable, AuditEntriesTable, DB, InvitesTable, MembershipsTable, OrgsTable, SessionsTable, UsersTable } from './schema.ts';
import { StoreConflictError } from './types.ts';
import type { ApiTokenRepo, AppRepo, AuditKeyRecord, AuditQuery, AuditRepo, FactorRepo, InviteRepo, MembershipRepo, OrgRepo, PolicyRepo, RecoveryCodeRepo, SessionRepo, Store, ThrottleRepo, UserRepo } from './types.ts';
import type { AuditRecord, Checkpoint } from '../audit/index.ts';
import { ApiTokens, Factors, LoginThrottle, Policies, RecoveryCodes } from './identity-repos.ts';
import { Hosts, Instances, Releases } from './runtime-repos.ts';
import type { ChangeSignal, HostRepo, InstanceRepo, ReleaseRepo } from './types.ts';
import { DataKeys, HostCredentials, SecretDeliveries, Secrets } from './secret-repos.ts';
import type { DataKeyRepo, HostCredentialRepo, SecretDeliveryRepo, SecretRepo } from './types.ts';
import { HostMesh, OrgNetworks, WireGuardPeers } from './network-repos.ts';
import { Volumes } from './volume-repos.ts';
import { Backups } from './backup-repos.ts';
import type { BackupRepo } from './types.ts';
import type { HostMeshRepo, OrgNetworkRepo, WireGuardPeerRepo } from './types.ts';
import type { VolumeRepo } from './types.ts';

import { EdgeCerts } from './edge-cert-repos.ts';
import type { EdgeCertRepo } from './types.ts';

export type StoreKind = Store['kind'];

/**
 * KyselyStore is the one implementation of the Store repos, over a Kysely<DB> of either dialect;
 * SqliteStore and PostgresStore only open the connection and run migrations. The few places where SQL
 * differs between the two are marked and switch on `kind`.
 *
 * A transaction store (the `tx` handed to transaction's fn) runs every query on the transaction's
 * connection. Code inside fn must use `tx`, not the outer store: on SQLite the outer store waits for the
 * one connection the transaction holds, so using it there deadlocks.
 */
/** IN_PROCESS_ONLY is the ChangeSignal of a store no other process shares (SQLite): nothing to send. */
const IN_PROCESS_ONLY: ChangeSignal = {
  notify: async () => {},
  subscribe: async () => async () => {},
};

export class KyselyStore implements Store {
  readonly kind: StoreKind;
  readonly users: UserRepo;
  readonly orgs: OrgRepo;
  readonly memberships: MembershipRepo;
  readonly sessions: SessionRepo;
  readonly invites: InviteRepo;
  readonly apps: AppRepo;
  readonly audit: AuditRepo;
  readonly factors: FactorRepo;
  readonly recoveryCodes: RecoveryCodeRepo;
  readonly tokens: ApiTokenRepo;
  readonly policies: PolicyRepo;
  readonly throttle: ThrottleRepo;
  readonly hosts: HostRepo;
  readonly releases: ReleaseRepo;
  readonly instances: InstanceRepo;
  readonly dataKeys: DataKeyRepo;
  readonly secrets: SecretRepo;
  readonly secretDeliveries: SecretDeliveryRepo;
  readonly hostCredentials: HostCredentialRepo;
  readonly orgNetworks: OrgNetworkRepo;
  readonly wireguardPeers: WireGuardPeerRepo;
  readonly edgeCerts: EdgeCertRepo;
  readonly hostMesh: HostMeshRepo;
  readonly volumes: VolumeRepo;
  readonly backups: BackupRepo;
  desiredChanges: ChangeSignal = IN_PROCESS_ONLY;
  reportChanges: ChangeSignal = IN_PROCESS_ONLY;
  readonly #db: Kysely<DB>;
  readonly #tx: WriteGuard | undefined;
  #closed = false;

  constructor(db: Kysely<DB>, kind: StoreKind, tx?: WriteGuard) {
    this.kind = kind;
    this.#db = db;
    this.#tx = tx;
    const ctx: Ctx = { db, kind, tx };
    this.users = new Users(ctx);
    this.orgs = new Orgs(ctx);
    this.memberships = new Memberships(ctx);
    this.sessions = new Sessions(ctx);
    this.invites = new Invites(ctx);
    this.apps = new Apps(ctx);
    this.audit = new Audit(ctx);
    this.factors = new Factors(ctx);
    this.recoveryCodes = new RecoveryCodes(ctx);
    this.tokens = new ApiTokens(ctx);
    this.policies = new Policies(ctx);
    this.throttle = new LoginThrottle(ctx);
    this.hosts = new Hosts(ctx);
    this.releases = new Releases(ctx);
    this.instances = new Instances(ctx);
    this.dataKeys = new DataKeys(ctx);
    this.secrets = new Secrets(ctx);
    this.secretDeliveries = new SecretDeliveries(ctx);
    this.hostCredentials = new HostCredentials(ctx);
    this.orgNetworks = new OrgNetworks(ctx);
    this.wireguardPeers = new WireGuardPeers(ctx);
    this.edgeCerts = new EdgeCerts(ctx);
    this.hostMesh = new HostMesh(ctx);
    this.volumes = new Volumes(ctx);
    this.backups = new Backups(ctx);
  }

  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    // Joining rather than nesting with savepoints: callers compose services that each "want a
    // transaction", and the outcome must be all-or-nothing for the outermost one.
    if (this.#tx) return fn(this);
    return this.#db.transaction().execute((trx) => {
      const tx = new KyselyStore(trx, this.kind, new WriteGuard(trx, this.kind));
      tx.desiredChanges = this.desiredChanges;
      tx.reportChanges = this.reportChanges;
      return fn(tx);
    });
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.#db);
  }

  async close(): Promise<void> {
    if (this.#tx) throw new Error('close() called on a transaction store; close the store that opened it');
    if (this.#closed) return;
    this.#closed = true;
    await this.#db.destroy();
  }
}

/** Ctx is what every repo needs: the connection (or transaction) and the dialect. */
export interface Ctx {
  db: Kysely<DB>;
  kind: StoreKind;
  tx: WriteGuard | undefined;
}

/**
 * WriteGuard runs the writes of one transaction that can break a rule (inserts) so that a failed one
 * leaves the transaction usable, as the contract's "nothing is written" implies. SQLite does this by
 * itself (a failed statement is rolled back alone). PostgreSQL aborts the whole transaction on any error,
 * so there each guarded write runs inside a savepoint. Guarded writes are queued one at a time: two
 * interleaved savepoints on one connection would roll back each other's work.
 */
class WriteGuard {
  readonly #db: Kysely<DB>;
  readonly #kind: StoreKind;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(db: Kysely<DB>, kind: StoreKind) {
    this.#db = db;
    this.#kind = kind;
  }

  run<T>(write: () => Promise<T>): Promise<T> {
    if (this.#kind !== 'postgres') return write();
    const result = this.#queue.then(async () => {
      await sql`savepoint ward_write`.execute(this.#db);
      try {
        const r = await write();
        await sql`release savepoint ward_write`.execute(this.#db);
        return r;
      } catch (e) {
        // If the rollback fails too, the transaction is beyond repair and its commit will fail; the
        // first error is the one worth reporting.
        await sql`rollback to savepoint ward_write`.execute(this.#db).catch(() => {});
        throw e;
      }
    });
    this.#queue = result.catch(() => {});
    return result;
  }
}

/** guardedWrite runs an insert, mapping a uniqueness violation to StoreConflictError. */
export async function guardedWrite<T>(ctx: Ctx, write: () => Promise<T>): Promise<T> {
  try {
    return await (ctx.tx ? ctx.tx.run(write) : write());
  } catch (e) {
    throw conflictFrom(e) ?? e;
  }
}

const BY_PG_NAME = new Map<string, string>(CONSTRAINTS.map((c) => [c.pg, c.rule]));
const BY_SQLITE_COLUMNS = new Map<string, string>(CONSTRAINTS.map((c) => [c.sqlite, c.rule]));
const SQLITE_CONSTRAINT_UNIQUE = 2067;
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_UNIQUE_PREFIX = 'UNIQUE constraint failed: ';

/**
 * conflictFrom recognizes a uniqueness violation from either database and names its rule: node:sqlite
 * reports the extended result code and the columns ("UNIQUE constraint failed: users.email"); pg reports
 * SQLSTATE 23505 with the constraint's name, which migrations.ts sets for exactly this purpose.
 */
export function conflictFrom(e: unknown): StoreConflictError | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const err = e as { code?: unknown; errcode?: unknown; message?: unknown; constraint?: unknown };
  if (err.code === '23505') {
    const name = typeof err.constraint === 'string' ? err.constraint : 'unknown';
    return new StoreConflictError(BY_PG_NAME.get(name) ?? name, { cause: e });
  }
  if (err.errcode === SQLITE_CONSTRAINT_UNIQUE || err.errcode === SQLITE_CONSTRAINT_PRIMARYKEY) {
    const message = String(err.message);
    const at = message.indexOf(SQLITE_UNIQUE_PREFIX);
    const columns = at >= 0 ? message.slice(at + SQLITE_UNIQUE_PREFIX.length).trim() : 'unknown';
    return new StoreConflictError(BY_SQLITE_COLUMNS.get(columns) ?? columns, { cause: e });
  }
  return undefined;
}

/**
 * byName orders by a text column in byte order on both databases. PostgreSQL otherwise sorts by the
 * database's collation (en_US ignores "-" at first), so `ward apps list` would order names differently
 * on the two stores.
 */
function byName(c: Ctx, column: string) {
  return c.kind === 'postgres' ? sql`${sql.ref(column)} collate "C"` : sql`${sql.ref(column)}`;
}

function toUser(r: Selectable<UsersTable>): User {
  return { id: r.id, email: r.email, passwordHash: r.password_hash, createdAt: r.created_at, updatedAt: r.updated_at };
}

function toOrg(r: Selectable<OrgsTable>): Org {
  return { id: r.id, name: r.name, createdAt: r.created_at };
}

function toMembership(r: Selectable<MembershipsTable>): Membership {
  return { id: r.id, orgId: r.org_id, userId: r.user_id, role: r.role as Role, createdAt: r.created_at };
}

function toSession(r: Selectable<SessionsTable>): Session {
  return {
    id: r.id,
    userId: r.user_id,
    kind: r.kind as SessionKind,
    tokenHash: r.token_hash,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    idleTimeoutMs: Number(r.idle_timeout_ms),
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at ?? null,
  };
}

function toInvite(r: Selectable<InvitesTable>): Invite {
  return {
    id: r.id,
    orgId: r.org_id,
    role: r.role as Role,
    codeHash: r.code_hash,
    createdBy: r.created_by,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    usedAt: r.used_at ?? null,
    usedBy: r.used_by ?? null,
  };
}

function toApp(r: Selectable<AppsTable>): App {
  return { id: r.id, orgId: r.org_id, name: r.name, createdAt: r.created_at, updatedAt: r.updated_at };
}

class Users implements UserRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(u: User): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('users')
        .values({ id: u.id, email: u.email, password_hash: u.passwordHash, created_at: u.createdAt, updated_at: u.updatedAt })
        .execute(),
    );
  }

  async get(id: string): Promise<User | undefined> {
    const r = await this.#c.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toUser(r);
  }

  async findByEmail(email: string): Promise<User | undefined> {
    const r = await this.#c.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
    return r && toUser(r);
  }

  async count(): Promise<number> {
    const r = await this.#c.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async updatePassword(id: string, passwordHash: string, at: string): Promise<void> {
    await this.#c.db.updateTable('users').set({ password_hash: passwordHash, updated_at: at }).where('id', '=', id).execute();
  }
}

class Orgs implements OrgRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(o: Org): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db.insertInto('orgs').values({ id: o.id, name: o.name, created_at: o.createdAt }).execute(),
    );
  }

  async get(id: string): Promise<Org | undefined> {
    const r = await this.#c.db.selectFrom('orgs').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toOrg(r);
  }

  async findByName(name: string): Promise<Org | undefined> {
    const r = await this.#c.db.selectFrom('orgs').selectAll().where('name', '=', name).executeTakeFirst();
    return r && toOrg(r);
  }

  async listForUser(userId: string): Promise<Array<Org & { role: Role }>> {
    const rows = await this.#c.db
      .selectFrom('memberships')
      .innerJoin('orgs', 'orgs.id', 'memberships.org_id')
      .select(['orgs.id', 'orgs.name', 'orgs.created_at', 'memberships.role'])
      .where('memberships.user_id', '=', userId)
      .orderBy('orgs.created_at')
      .orderBy('orgs.id')
      .execute();
    return rows.map((r) => ({ ...toOrg(r), role: r.role as Role }));
  }
  async lock(id: string): Promise<void> {
    if (this.#c.kind !== 'postgres' || !this.#c.tx) return;
    await sql`select id from orgs where id = ${id} for update`.execute(this.#c.db);
  }

}

class Memberships implements MembershipRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(m: Membership): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('memberships')
        .values({ id: m.id, org_id: m.orgId, user_id: m.userId, role: m.role, created_at: m.createdAt })
        .execute(),
    );
  }

  async find(orgId: string, userId: string): Promise<Membership | undefined> {
    const r = await this.#c.db
      .selectFrom('memberships')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return r && toMembership(r);
  }

  async listForOrg(orgId: string): Promise<Array<Membership & { email: string }>> {
    const rows = await this.#c.db
      .selectFrom('memberships')
      .innerJoin('users', 'users.id', 'memberships.user_id')
      .selectAll('memberships')
      .select('users.email')
      .where('memberships.org_id', '=', orgId)
      .orderBy('memberships.created_at')
      .orderBy('memberships.id')
      .execute();
    return rows.map((r) => ({ ...toMembership(r), email: r.email }));
  }

  async setRole(id: string, role: Role): Promise<void> {
    await this.#c.db.updateTable('memberships').set({ role }).where('id', '=', id).execute();
  }

  async remove(id: string): Promise<void> {
    await this.#c.db.deleteFrom('memberships').where('id', '=', id).execute();
  }
  async countWithRole(orgId: string, role: Role): Promise<number> {
    const r = await this.#c.db
      .selectFrom('memberships')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('org_id', '=', orgId)
      .where('role', '=', role)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

}

class Sessions implements SessionRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(s: Session): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('sessions')
        .values({
          id: s.id,
          user_id: s.userId,
          kind: s.kind,
          token_hash: s.tokenHash,
          created_at: s.createdAt,
          last_used_at: s.lastUsedAt,
          idle_timeout_ms: s.idleTimeoutMs,
          expires_at: s.expiresAt,
          revoked_at: s.revokedAt,
        })
        .execute(),
    );
  }

  async findByTokenHash(tokenHash: string): Promise<Session | undefined> {
    const r = await this.#c.db.selectFrom('sessions').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return r && toSession(r);
  }

  async touch(id: string, lastUsedAt: string): Promise<void> {
    // Concurrent requests on one session finish in any order; the latest use must win, not the last write.
    await this.#c.db
      .updateTable('sessions')
      .set({ last_used_at: lastUsedAt })
      .where('id', '=', id)
      .where('last_used_at', '<', lastUsedAt)
      .execute();
  }

  async revoke(id: string, at: string): Promise<void> {
    // The first revocation time stands: it is what the audit trail and "signed out at" report.
    await this.#c.db.updateTable('sessions').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).execute();
  }

  async revokeAllForUser(userId: string, at: string, exceptId?: string): Promise<number> {
    // Every not-yet-revoked session, expired or not: after "log out everywhere" no row of this user may
    // be unrevoked, whatever clock a later check uses.
    let q = this.#c.db.updateTable('sessions').set({ revoked_at: at }).where('user_id', '=', userId).where('revoked_at', 'is', null);
    if (exceptId !== undefined) q = q.where('id', '!=', exceptId);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  async deleteExpired(before: string): Promise<number> {
    // A session ends at the first of: its absolute expiry, its revocation, or idle_timeout_ms after its
    // last use. The idle end needs date arithmetic, which is the one piece of dialect-specific SQL here.
    const idleEnded =
      this.#c.kind === 'postgres'
        ? sql<boolean>`(last_used_at::timestamptz + idle_timeout_ms * interval '1 millisecond') < ${before}::timestamptz`
        : sql<boolean>`(julianday(${before}) - julianday(last_used_at)) * 86400000.0 > idle_timeout_ms`;
    const r = await this.#c.db
      .deleteFrom('sessions')
      .where((eb) => eb.or([eb('expires_at', '<', before), eb('revoked_at', '<', before), idleEnded]))
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

class Invites implements InviteRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(i: Invite): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('invites')
        .values({
          id: i.id,
          org_id: i.orgId,
          role: i.role,
          code_hash: i.codeHash,
          created_by: i.createdBy,
          created_at: i.createdAt,
          expires_at: i.expiresAt,
          used_at: i.usedAt,
          used_by: i.usedBy,
        })
        .execute(),
    );
  }

  async findByCodeHash(codeHash: string): Promise<Invite | undefined> {
    const r = await this.#c.db.selectFrom('invites').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
    return r && toInvite(r);
  }

  async markUsed(id: string, userId: string, at: string): Promise<boolean> {
    // One conditional UPDATE, so two signups racing for one invite cannot both win.
    const r = await this.#c.db
      .updateTable('invites')
      .set({ used_at: at, used_by: userId })
      .where('id', '=', id)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }
}

class Apps implements AppRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(a: App): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('apps')
        .values({ id: a.id, org_id: a.orgId, name: a.name, created_at: a.createdAt, updated_at: a.updatedAt })
        .execute(),
    );
  }

  async get(id: string): Promise<App | undefined> {
    const r = await this.#c.db.selectFrom('apps').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toApp(r);
  }

  async findByName(name: string): Promise<App | undefined> {
    const r = await this.#c.db.selectFrom('apps').selectAll().where('name', '=', name).executeTakeFirst();
    return r && toApp(r);
  }

  async listForOrg(orgId: string): Promise<App[]> {
    const rows = await this.#c.db.selectFrom('apps').selectAll().where('org_id', '=', orgId).orderBy(byName(this.#c, 'name')).execute();
    return rows.map(toApp);
  }

  async listForUser(userId: string): Promise<App[]> {
    const rows = await this.#c.db
      .selectFrom('apps')
      .innerJoin('memberships', 'memberships.org_id', 'apps.org_id')
      .selectAll('apps')
      .where('memberships.user_id', '=', userId)
      .orderBy(byName(this.#c, 'apps.name'))
      .execute();
    return rows.map(toApp);
  }

  async delete(id: string): Promise<void> {
    await this.#c.db.deleteFrom('apps').where('id', '=', id).execute();
  }
}

/**
 * AUDIT_LOCK_SPACE is the first key of the two-key PostgreSQL advisory locks that serialize appends to one
 * audit chain; the second is hashtext(chain). Two-key locks never collide with migrate()'s one-key lock. Two
 * chains whose names hash alike merely share a lock.
 */
export const AUDIT_LOCK_SPACE = 0x61756474; // "audt"

function toAuditRecord(r: Selectable<AuditEntriesTable>): AuditRecord {
  return {
    chain: r.chain,
    seq: Number(r.seq),
    id: r.id,
    at: r.at,
    org_id: r.org_id ?? null,
    actor_type: r.actor_type as AuditRecord['actor_type'],
    actor_id: r.actor_id ?? null,
    actor_label: r.actor_label ?? null,
    action: r.action,
    target: r.target ?? null,
    outcome: r.outcome as AuditRecord['outcome'],
    source_ip: r.source_ip ?? null,
    request_id: r.request_id ?? null,
    details: JSON.parse(r.details) as Record<string, unknown>,
    prev_hash: r.prev_hash,
    hash: r.hash,
  };
}

function toCheckpoint(r: Selectable<AuditCheckpointsTable>): Checkpoint {
  return { chain: r.chain, seq: Number(r.seq), hash: r.hash, at: r.at, key_id: r.key_id, signature: r.signature };
}

class Audit implements AuditRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  /**
   * lockChain holds the chain until the transaction ends. Only PostgreSQL needs it: there many
   * connections (and control planes) write at once, while a SQLite transaction (BEGIN IMMEDIATE on the
   * one connection) already excludes every other writer. Outside a transaction a lock would end with the
   * statement, so it is not taken.
   */
  async #lockChain(chain: string): Promise<void> {
    if (this.#c.kind !== 'postgres' || !this.#c.tx) return;
    await sql`select pg_advisory_xact_lock(${sql.lit(AUDIT_LOCK_SPACE)}, hashtext(${chain}))`.execute(this.#c.db);
  }

  async append(e: AuditRecord): Promise<void> {
    await this.#lockChain(e.chain);
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('audit_entries')
        .values({
          chain: e.chain,
          seq: e.seq,
          id: e.id,
          at: e.at,
          org_id: e.org_id,
          actor_type: e.actor_type,
          actor_id: e.actor_id,
          actor_label: e.actor_label,
          action: e.action,
          target: e.target,
          outcome: e.outcome,
          source_ip: e.source_ip,
          request_id: e.request_id,
          details: JSON.stringify(e.details),
          prev_hash: e.prev_hash,
          hash: e.hash,
        })
        .execute(),
    );
  }

  async head(chain: string): Promise<AuditRecord | undefined> {
    await this.#lockChain(chain);
    const r = await this.#c.db.selectFrom('audit_entries').selectAll().where('chain', '=', chain).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    return r && toAuditRecord(r);
  }

  async list(q: AuditQuery): Promise<AuditRecord[]> {
    let query = this.#c.db.selectFrom('audit_entries').selectAll();
    if (q.orgId !== undefined) query = query.where('org_id', '=', q.orgId);
    if (q.chain !== undefined) query = query.where('chain', '=', q.chain);
    if (q.since !== undefined) query = query.where('at', '>=', q.since);
    if (q.afterSeq !== undefined) query = query.where('seq', '>', q.afterSeq);
    query = q.orgId !== undefined || q.chain !== undefined ? query.orderBy(byName(this.#c, 'chain')).orderBy('seq') : query.orderBy('at').orderBy(byName(this.#c, 'chain')).orderBy('seq');
    if (q.limit !== undefined) query = query.limit(q.limit);
    return (await query.execute()).map(toAuditRecord);
  }

  async entries(chain: string): Promise<AuditRecord[]> {
    const rows = await this.#c.db.selectFrom('audit_entries').selectAll().where('chain', '=', chain).orderBy('seq').execute();
    return rows.map(toAuditRecord);
  }

  async chains(): Promise<string[]> {
    const rows = await this.#c.db
      .selectFrom('audit_entries')
      .select('chain')
      .union(this.#c.db.selectFrom('audit_checkpoints').select('chain'))
      .execute();
    return [...new Set(rows.map((r) => r.chain))].sort();
  }

  async addCheckpoint(c: Checkpoint): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('audit_checkpoints')
        .values({ chain: c.chain, seq: c.seq, hash: c.hash, at: c.at, key_id: c.key_id, signature: c.signature })
        .execute(),
    );
  }

  async checkpoints(chain?: string): Promise<Checkpoint[]> {
    let query = this.#c.db.selectFrom('audit_checkpoints').selectAll();
    if (chain !== undefined) query = query.where('chain', '=', chain);
    const rows = await query.orderBy(byName(this.#c, 'chain')).orderBy('seq').execute();
    return rows.map(toCheckpoint);
  }

  async addKey(k: AuditKeyRecord): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('audit_keys')
        .values({ key_id: k.keyId, public_key_pem: k.publicKeyPem, created_at: k.createdAt })
        .onConflict((oc) => oc.column('key_id').doNothing())
        .execute(),
    );
  }

  async keys(): Promise<AuditKeyRecord[]> {
    const rows = await this.#c.db.selectFrom('audit_keys').selectAll().orderBy('created_at').orderBy('key_id').execute();
    return rows.map((r) => ({ keyId: r.key_id, publicKeyPem: r.public_key_pem, createdAt: r.created_at }));
  }
}
