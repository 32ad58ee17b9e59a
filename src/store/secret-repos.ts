import { sql } from 'kysely';
import type { Selectable } from 'kysely';
import type { DataKeysTable, SecretDeliveriesTable, SecretValuesTable, SecretVersionsTable } from './schema.ts';
import type {
  DataKeyRecord,
  DataKeyRepo,
  HostCredentialRecord,
  HostCredentialRepo,
  SecretChange,
  SecretDeliveryRecord,
  SecretDeliveryRepo,
  SecretRepo,
  SecretValueRecord,
  SecretVersionRecord,
} from './types.ts';
import { guardedWrite, type Ctx } from './kysely-store.ts';

// The repos of issue "Secrets" (migration 5): wrapped data keys, versioned secret values (ciphertext
// only), single-use delivery tokens and host credentials. They follow kysely-store.ts: one
// implementation for both databases. Nothing here ever sees a plaintext value.

/**
 * SECRETS_LOCK_SPACE is the first key of the two-key PostgreSQL advisory locks that serialize secret
 * changes of one app; the second is hashtext(app id). It differs from the audit log's space.
 */
export const SECRETS_LOCK_SPACE = 0x73656372; // "secr"

function toDataKey(r: Selectable<DataKeysTable>): DataKeyRecord {
  return { owner: r.owner, appId: r.app_id ?? null, wrapped: r.wrapped_key, kekId: r.kek_id, createdAt: r.created_at, rewrappedAt: r.rewrapped_at ?? null };
}

export class DataKeys implements DataKeyRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async get(owner: string): Promise<DataKeyRecord | undefined> {
    const r = await this.#c.db.selectFrom('data_keys').selectAll().where('owner', '=', owner).executeTakeFirst();
    return r && toDataKey(r);
  }

  async create(k: DataKeyRecord): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('data_keys')
        .values({ owner: k.owner, app_id: k.appId, wrapped_key: k.wrapped, kek_id: k.kekId, created_at: k.createdAt, rewrapped_at: k.rewrappedAt })
        .execute(),
    );
  }

  async list(): Promise<DataKeyRecord[]> {
    const rows = await this.#c.db.selectFrom('data_keys').selectAll().orderBy('owner').execute();
    return rows.map(toDataKey);
  }

  async rewrap(owner: string, expected: string, wrapped: string, kekId: string, at: string): Promise<boolean> {
    // Conditional on the old wrapped form: a concurrent rotation (or creation race) cannot be overwritten blindly.
    const r = await this.#c.db
      .updateTable('data_keys')
      .set({ wrapped_key: wrapped, kek_id: kekId, rewrapped_at: at })
      .where('owner', '=', owner)
      .where('wrapped_key', '=', expected)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }
}

function toVersion(r: Selectable<SecretVersionsTable>): SecretVersionRecord {
  return {
    appId: r.app_id,
    version: Number(r.version),
    change: r.change as SecretChange,
    staged: Number(r.staged) === 1,
    names: JSON.parse(r.names) as string[],
    createdAt: r.created_at,
    createdBy: r.created_by ?? null,
  };
}

function toValue(r: Selectable<SecretValuesTable>): SecretValueRecord {
  return { appId: r.app_id, name: r.name, version: Number(r.version), sealed: r.sealed ?? null, digest: r.digest ?? null, createdAt: r.created_at };
}

export class Secrets implements SecretRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async latestVersion(appId: string): Promise<number> {
    // Inside a transaction this holds the app's secrets until it ends, so two changes racing for version
    // n+1 queue up instead of one failing. SQLite's write transactions already exclude each other.
    if (this.#c.kind === 'postgres' && this.#c.tx) {
      await sql`select pg_advisory_xact_lock(${sql.lit(SECRETS_LOCK_SPACE)}, hashtext(${appId}))`.execute(this.#c.db);
    }
    const r = await this.#c.db
      .selectFrom('secret_versions')
      .select((eb) => eb.fn.max<number | null>('version').as('v'))
      .where('app_id', '=', appId)
      .executeTakeFirst();
    return Number(r?.v ?? 0);
  }

  async addVersion(v: SecretVersionRecord): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('secret_versions')
        .values({
          app_id: v.appId,
          version: v.version,
          change: v.change,
          staged: v.staged ? 1 : 0,
          names: JSON.stringify(v.names),
          created_at: v.createdAt,
          created_by: v.createdBy,
        })
        .execute(),
    );
  }

  async putValues(rows: readonly SecretValueRecord[]): Promise<void> {
    if (rows.length === 0) return;
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('secret_values')
        .values(rows.map((v) => ({ app_id: v.appId, name: v.name, version: v.version, sealed: v.sealed, digest: v.digest, created_at: v.createdAt })))
        .execute(),
    );
  }

  async at(appId: string, version: number): Promise<SecretValueRecord[]> {
    // For each name, the newest record at or before `version`; a record without ciphertext is an unset.
    const rows = await this.#c.db
      .selectFrom('secret_values as s')
      .selectAll('s')
      .where('s.app_id', '=', appId)
      .where('s.version', '<=', version)
      .where(({ eb, selectFrom }) =>
        eb(
          's.version',
          '=',
          selectFrom('secret_values as n')
            .select((x) => x.fn.max('n.version').as('mv'))
            .whereRef('n.app_id', '=', 's.app_id')
            .whereRef('n.name', '=', 's.name')
            .where('n.version', '<=', version),
        ),
      )
      .where('s.sealed', 'is not', null)
      .orderBy(this.#c.kind === 'postgres' ? sql`s.name collate "C"` : sql`s.name`)
      .execute();
    return rows.map(toValue);
  }

  async getVersion(appId: string, version: number): Promise<SecretVersionRecord | undefined> {
    const r = await this.#c.db.selectFrom('secret_versions').selectAll().where('app_id', '=', appId).where('version', '=', version).executeTakeFirst();
    return r && toVersion(r);
  }

  async listVersions(appId: string, limit?: number): Promise<SecretVersionRecord[]> {
    let q = this.#c.db.selectFrom('secret_versions').selectAll().where('app_id', '=', appId).orderBy('version', 'desc');
    if (limit !== undefined) q = q.limit(limit);
    return (await q.execute()).map(toVersion);
  }
}

function toDelivery(r: Selectable<SecretDeliveriesTable>): SecretDeliveryRecord {
  return {
    tokenHash: r.token_hash,
    appId: r.app_id,
    instanceId: r.instance_id,
    hostId: r.host_id,
    secretsVersion: Number(r.secrets_version),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    usedAt: r.used_at ?? null,
  };
}

export class SecretDeliveries implements SecretDeliveryRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(d: SecretDeliveryRecord): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('secret_deliveries')
        .values({
          token_hash: d.tokenHash,
          app_id: d.appId,
          instance_id: d.instanceId,
          host_id: d.hostId,
          secrets_version: d.secretsVersion,
          created_at: d.createdAt,
          expires_at: d.expiresAt,
          used_at: d.usedAt,
        })
        .execute(),
    );
  }

  async find(tokenHash: string): Promise<SecretDeliveryRecord | undefined> {
    const r = await this.#c.db.selectFrom('secret_deliveries').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return r && toDelivery(r);
  }

  async take(tokenHash: string, at: string): Promise<SecretDeliveryRecord | undefined> {
    // One conditional UPDATE: of two requests racing with one token, exactly one gets it.
    const r = await this.#c.db
      .updateTable('secret_deliveries')
      .set({ used_at: at })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', at)
      .returningAll()
      .executeTakeFirst();
    return r && toDelivery(r);
  }

  async deleteExpired(before: string): Promise<number> {
    const r = await this.#c.db.deleteFrom('secret_deliveries').where('expires_at', '<', before).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

export class HostCredentials implements HostCredentialRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async put(cred: HostCredentialRecord): Promise<void> {
    // One credential per host: issuing a new one replaces (and so revokes) the old.
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('host_credentials')
        .values({ host_id: cred.hostId, token_hash: cred.tokenHash, created_at: cred.createdAt })
        .onConflict((oc) => oc.column('host_id').doUpdateSet({ token_hash: cred.tokenHash, created_at: cred.createdAt }))
        .execute(),
    );
  }

  async findByTokenHash(tokenHash: string): Promise<HostCredentialRecord | undefined> {
    const r = await this.#c.db.selectFrom('host_credentials').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return r && { hostId: r.host_id, tokenHash: r.token_hash, createdAt: r.created_at };
  }

  async remove(hostId: string): Promise<void> {
    await this.#c.db.deleteFrom('host_credentials').where('host_id', '=', hostId).execute();
  }
}
