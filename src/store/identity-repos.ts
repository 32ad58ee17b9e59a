import { sql } from 'kysely';
import type { Selectable } from 'kysely';
import type { ApiToken, AuthFactor, FactorType, OrgPolicy, ThrottleEntry, TokenScope } from '../core/index.ts';
import type { ApiTokensTable, AuthFactorsTable, LoginThrottleTable, OrgPoliciesTable } from './schema.ts';
import type { ApiTokenRepo, FactorRepo, PolicyRepo, RecoveryCodeRepo, ThrottleRepo } from './types.ts';
import { guardedWrite, type Ctx } from './kysely-store.ts';

// The repos of issue "Identity" (migration 3): second factors, recovery codes, API tokens, org policies
// and the login throttle. They follow kysely-store.ts: one implementation for both databases.

function toFactor(r: Selectable<AuthFactorsTable>): AuthFactor {
  return {
    id: r.id,
    userId: r.user_id,
    type: r.type as FactorType,
    label: r.label,
    secretSealed: r.secret_sealed ?? null,
    publicData: r.public_data ?? null,
    counter: r.counter === null || r.counter === undefined ? null : Number(r.counter),
    createdAt: r.created_at,
    confirmedAt: r.confirmed_at ?? null,
    lastUsedAt: r.last_used_at ?? null,
  };
}

export class Factors implements FactorRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(f: AuthFactor): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('auth_factors')
        .values({
          id: f.id,
          user_id: f.userId,
          type: f.type,
          label: f.label,
          secret_sealed: f.secretSealed,
          public_data: f.publicData,
          counter: f.counter,
          created_at: f.createdAt,
          confirmed_at: f.confirmedAt,
          last_used_at: f.lastUsedAt,
        })
        .execute(),
    );
  }

  async get(id: string): Promise<AuthFactor | undefined> {
    const r = await this.#c.db.selectFrom('auth_factors').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toFactor(r);
  }

  async listForUser(userId: string): Promise<AuthFactor[]> {
    const rows = await this.#c.db.selectFrom('auth_factors').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute();
    return rows.map(toFactor);
  }

  async confirm(id: string, at: string): Promise<boolean> {
    const r = await this.#c.db.updateTable('auth_factors').set({ confirmed_at: at }).where('id', '=', id).where('confirmed_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async advanceCounter(id: string, value: number, at: string): Promise<boolean> {
    // The comparison happens in the UPDATE itself, so two requests replaying one code cannot both pass.
    const r = await this.#c.db
      .updateTable('auth_factors')
      .set({ counter: value, last_used_at: at })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('counter', 'is', null), eb('counter', '<', value)]))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async delete(id: string): Promise<void> {
    await this.#c.db.deleteFrom('auth_factors').where('id', '=', id).execute();
  }
}

export class RecoveryCodes implements RecoveryCodeRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async replaceForUser(userId: string, codeHashes: readonly string[], at: string): Promise<void> {
    await this.#c.db.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
    if (codeHashes.length === 0) return;
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('recovery_codes')
        .values(codeHashes.map((h) => ({ user_id: userId, code_hash: h, created_at: at, used_at: null })))
        .execute(),
    );
  }

  async use(userId: string, codeHash: string, at: string): Promise<boolean> {
    const r = await this.#c.db
      .updateTable('recovery_codes')
      .set({ used_at: at })
      .where('user_id', '=', userId)
      .where('code_hash', '=', codeHash)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async countUnused(userId: string): Promise<number> {
    const r = await this.#c.db
      .selectFrom('recovery_codes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async deleteForUser(userId: string): Promise<void> {
    await this.#c.db.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
  }
}

function toToken(r: Selectable<ApiTokensTable>): ApiToken {
  return {
    id: r.id,
    name: r.name,
    tokenHash: r.token_hash,
    orgId: r.org_id,
    appId: r.app_id ?? null,
    scope: r.scope as TokenScope,
    createdBy: r.created_by,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    lastUsedAt: r.last_used_at ?? null,
    revokedAt: r.revoked_at ?? null,
  };
}

export class ApiTokens implements ApiTokenRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(t: ApiToken): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('api_tokens')
        .values({
          id: t.id,
          name: t.name,
          token_hash: t.tokenHash,
          org_id: t.orgId,
          app_id: t.appId,
          scope: t.scope,
          created_by: t.createdBy,
          created_at: t.createdAt,
          expires_at: t.expiresAt,
          last_used_at: t.lastUsedAt,
          revoked_at: t.revokedAt,
        })
        .execute(),
    );
  }

  async get(id: string): Promise<ApiToken | undefined> {
    const r = await this.#c.db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toToken(r);
  }

  async findByTokenHash(tokenHash: string): Promise<ApiToken | undefined> {
    const r = await this.#c.db.selectFrom('api_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return r && toToken(r);
  }

  async listForUser(userId: string): Promise<ApiToken[]> {
    const rows = await this.#c.db
      .selectFrom('api_tokens')
      .selectAll()
      .where('created_by', '=', userId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return rows.map(toToken);
  }

  async revoke(id: string, at: string): Promise<boolean> {
    const r = await this.#c.db.updateTable('api_tokens').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async markFirstUse(id: string, at: string): Promise<boolean> {
    const r = await this.#c.db.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).where('last_used_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async touch(id: string, at: string): Promise<void> {
    await this.#c.db.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).where('last_used_at', '<', at).execute();
  }
}

function toPolicy(r: Selectable<OrgPoliciesTable>): OrgPolicy {
  return {
    orgId: r.org_id,
    requireMfa: Number(r.require_mfa) === 1,
    sessionIdleMs: r.session_idle_ms === null || r.session_idle_ms === undefined ? null : Number(r.session_idle_ms),
    updatedAt: r.updated_at,
    updatedBy: r.updated_by ?? null,
  };
}

export class Policies implements PolicyRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async get(orgId: string): Promise<OrgPolicy | undefined> {
    const r = await this.#c.db.selectFrom('org_policies').selectAll().where('org_id', '=', orgId).executeTakeFirst();
    return r && toPolicy(r);
  }

  async put(p: OrgPolicy): Promise<void> {
    const row = { require_mfa: p.requireMfa ? 1 : 0, session_idle_ms: p.sessionIdleMs, updated_at: p.updatedAt, updated_by: p.updatedBy };
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('org_policies')
        .values({ org_id: p.orgId, ...row })
        .onConflict((oc) => oc.column('org_id').doUpdateSet(row))
        .execute(),
    );
  }

  async forUser(userId: string): Promise<Array<OrgPolicy & { orgName: string }>> {
    const rows = await this.#c.db
      .selectFrom('memberships')
      .innerJoin('org_policies', 'org_policies.org_id', 'memberships.org_id')
      .innerJoin('orgs', 'orgs.id', 'memberships.org_id')
      .selectAll('org_policies')
      .select('orgs.name as org_name')
      .where('memberships.user_id', '=', userId)
      .orderBy('orgs.created_at')
      .orderBy('orgs.id')
      .execute();
    return rows.map((r) => ({ ...toPolicy(r), orgName: r.org_name }));
  }
}

function toThrottle(r: Selectable<LoginThrottleTable>): ThrottleEntry {
  return { key: r.key, failures: Number(r.failures), windowStartedAt: r.window_started_at, blockedUntil: r.blocked_until ?? null };
}

export class LoginThrottle implements ThrottleRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async get(keys: readonly string[]): Promise<ThrottleEntry[]> {
    if (keys.length === 0) return [];
    const rows = await this.#c.db.selectFrom('login_throttle').selectAll().where('key', 'in', [...keys]).execute();
    return rows.map(toThrottle);
  }

  async recordFailure(key: string, at: string, windowStart: string): Promise<ThrottleEntry> {
    // One upsert that counts in the database, so control planes sharing it never lose a failure to a
    // read-modify-write race. Timestamps are fixed-width ISO strings, so text comparison orders them.
    const expired = sql<boolean>`login_throttle.window_started_at <= ${windowStart}`;
    const r = await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('login_throttle')
        .values({ key, failures: 1, window_started_at: at, blocked_until: null })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({
            failures: sql<number>`case when ${expired} then 1 else login_throttle.failures + 1 end`,
            window_started_at: sql<string>`case when ${expired} then ${at} else login_throttle.window_started_at end`,
          }),
        )
        .returningAll()
        .executeTakeFirstOrThrow(),
    );
    return toThrottle(r);
  }

  async blockUntil(key: string, until: string): Promise<void> {
    await this.#c.db
      .updateTable('login_throttle')
      .set({ blocked_until: until })
      .where('key', '=', key)
      .where((eb) => eb.or([eb('blocked_until', 'is', null), eb('blocked_until', '<', until)]))
      .execute();
  }

  async refund(key: string): Promise<void> {
    await this.#c.db
      .updateTable('login_throttle')
      .set({ failures: sql<number>`case when failures > 0 then failures - 1 else 0 end` })
      .where('key', '=', key)
      .execute();
  }

  async clear(key: string): Promise<void> {
    await this.#c.db.deleteFrom('login_throttle').where('key', '=', key).execute();
  }

  async deleteStale(before: string): Promise<number> {
    const r = await this.#c.db
      .deleteFrom('login_throttle')
      .where('window_started_at', '<', before)
      .where((eb) => eb.or([eb('blocked_until', 'is', null), eb('blocked_until', '<', before)]))
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
