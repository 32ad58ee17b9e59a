import type { Selectable } from 'kysely';
import type { AcmeAccountsTable, EdgeCertificatesTable, EdgeCertStatusTable } from './schema.ts';
import type { AcmeAccountRecord, EdgeCertificateRecord, EdgeCertRepo, EdgeCertStatusRecord } from './types.ts';
import { guardedWrite, type Ctx } from './kysely-store.ts';

// The repo of issue "Edge" (migration 11): the edge's certificates, their status, ACME accounts, which
// app asked for a name, and the per-name issuance lock that keeps edges sharing this database from
// ordering one name twice at once. It follows kysely-store.ts: one implementation for both databases.
// Private keys arrive sealed (src/edge/certs StoreCertStore) and leave sealed: nothing here sees one.

function toCertificate(r: Selectable<EdgeCertificatesTable>): EdgeCertificateRecord {
  return {
    name: r.name,
    names: JSON.parse(r.names) as string[],
    certPem: r.cert_pem,
    keySealed: r.key_sealed,
    notBefore: r.not_before,
    notAfter: r.not_after,
    source: r.source === 'manual' ? 'manual' : 'acme',
    updatedAt: r.updated_at,
  };
}

function toStatus(r: Selectable<EdgeCertStatusTable>): EdgeCertStatusRecord {
  return {
    name: r.name,
    state: r.state as EdgeCertStatusRecord['state'],
    notAfter: r.not_after ?? null,
    renewAt: r.renew_at ?? null,
    lastAttemptAt: r.last_attempt_at ?? null,
    lastError: r.last_error ?? null,
    failures: Number(r.failures),
    nextAttemptAt: r.next_attempt_at ?? null,
  };
}

function toAccount(r: Selectable<AcmeAccountsTable>): AcmeAccountRecord {
  return { directoryUrl: r.directory_url, email: r.email ?? null, url: r.url ?? null, keySealed: r.key_sealed };
}

export class EdgeCerts implements EdgeCertRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async getCertificate(name: string): Promise<EdgeCertificateRecord | undefined> {
    const r = await this.#c.db.selectFrom('edge_certificates').selectAll().where('name', '=', name).executeTakeFirst();
    return r && toCertificate(r);
  }

  async putCertificate(c: EdgeCertificateRecord): Promise<void> {
    const row = { names: JSON.stringify(c.names), cert_pem: c.certPem, key_sealed: c.keySealed, not_before: c.notBefore, not_after: c.notAfter, source: c.source, updated_at: c.updatedAt };
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('edge_certificates')
        .values({ name: c.name, ...row })
        .onConflict((oc) => oc.column('name').doUpdateSet(row))
        .execute(),
    );
  }

  async deleteCertificate(name: string): Promise<boolean> {
    // One name's certificate and status go together; a transaction keeps a reader from seeing half.
    const run = async (db: Ctx['db']) => {
      const a = await db.deleteFrom('edge_certificates').where('name', '=', name).executeTakeFirst();
      const b = await db.deleteFrom('edge_cert_status').where('name', '=', name).executeTakeFirst();
      return Number(a.numDeletedRows) + Number(b.numDeletedRows) > 0;
    };
    return this.#c.tx ? run(this.#c.db) : this.#c.db.transaction().execute((trx) => run(trx));
  }

  async listCertificateNames(): Promise<string[]> {
    return (await this.#c.db.selectFrom('edge_certificates').select('name').orderBy('name').execute()).map((r) => r.name);
  }

  async getStatus(name: string): Promise<EdgeCertStatusRecord | undefined> {
    const r = await this.#c.db.selectFrom('edge_cert_status').selectAll().where('name', '=', name).executeTakeFirst();
    return r && toStatus(r);
  }

  async putStatus(s: EdgeCertStatusRecord): Promise<void> {
    const row = {
      state: s.state,
      not_after: s.notAfter,
      renew_at: s.renewAt,
      last_attempt_at: s.lastAttemptAt,
      last_error: s.lastError,
      failures: s.failures,
      next_attempt_at: s.nextAttemptAt,
    };
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('edge_cert_status')
        .values({ name: s.name, ...row })
        .onConflict((oc) => oc.column('name').doUpdateSet(row))
        .execute(),
    );
  }

  async addStatus(s: EdgeCertStatusRecord): Promise<boolean> {
    const r = await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('edge_cert_status')
        .values({
          name: s.name,
          state: s.state,
          not_after: s.notAfter,
          renew_at: s.renewAt,
          last_attempt_at: s.lastAttemptAt,
          last_error: s.lastError,
          failures: s.failures,
          next_attempt_at: s.nextAttemptAt,
        })
        .onConflict((oc) => oc.column('name').doNothing())
        .executeTakeFirst(),
    );
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async listStatus(): Promise<EdgeCertStatusRecord[]> {
    return (await this.#c.db.selectFrom('edge_cert_status').selectAll().orderBy('name').execute()).map(toStatus);
  }

  async getAccount(directoryUrl: string): Promise<AcmeAccountRecord | undefined> {
    const r = await this.#c.db.selectFrom('acme_accounts').selectAll().where('directory_url', '=', directoryUrl).executeTakeFirst();
    return r && toAccount(r);
  }

  async putAccount(a: AcmeAccountRecord): Promise<void> {
    const row = { email: a.email, url: a.url, key_sealed: a.keySealed };
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('acme_accounts')
        .values({ directory_url: a.directoryUrl, ...row })
        .onConflict((oc) => oc.column('directory_url').doUpdateSet(row))
        .execute(),
    );
  }

  async getOwner(name: string): Promise<string | undefined> {
    return (await this.#c.db.selectFrom('edge_cert_owners').select('app').where('name', '=', name).executeTakeFirst())?.app;
  }

  async setOwner(name: string, app: string): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('edge_cert_owners')
        .values({ name, app })
        .onConflict((oc) => oc.column('name').doUpdateSet({ app }))
        .execute(),
    );
  }

  async deleteOwner(name: string): Promise<void> {
    await this.#c.db.deleteFrom('edge_cert_owners').where('name', '=', name).execute();
  }

  async listOwners(): Promise<Array<{ name: string; app: string }>> {
    return (await this.#c.db.selectFrom('edge_cert_owners').select(['name', 'app']).orderBy('name').execute()).map((r) => ({ name: r.name, app: r.app }));
  }

  async tryLock(name: string, owner: string, now: number, ttlMs: number): Promise<boolean> {
    // One statement: insert the lock, or take it over only when it has expired. Of two edges racing,
    // the database lets exactly one write win (the row lock on PostgreSQL, the write lock on SQLite).
    const expiresAt = now + ttlMs;
    const r = await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('edge_issuance_locks')
        .values({ name, owner, expires_at: expiresAt })
        .onConflict((oc) => oc.column('name').doUpdateSet({ owner, expires_at: expiresAt }).where('edge_issuance_locks.expires_at', '<=', now))
        .executeTakeFirst(),
    );
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async refreshLock(name: string, owner: string, now: number, ttlMs: number): Promise<boolean> {
    const r = await this.#c.db
      .updateTable('edge_issuance_locks')
      .set({ expires_at: now + ttlMs })
      .where('name', '=', name)
      .where('owner', '=', owner)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async releaseLock(name: string, owner: string): Promise<void> {
    await this.#c.db.deleteFrom('edge_issuance_locks').where('name', '=', name).where('owner', '=', owner).execute();
  }
}
