/**
 * The database schema as Kysely sees it: one interface per table, snake_case columns, portable types only
 * (text ids, text ISO-8601 UTC timestamps, integers). migrations.ts creates exactly these tables; the
 * repos in kysely-store.ts map rows to the camelCase domain types of src/core/types.ts.
 *
 * Integers that may exceed 2^31 (idle_timeout_ms) are `bigint` columns; PostgresStore parses int8 into a
 * JS number (and refuses values beyond Number.MAX_SAFE_INTEGER), so every column here reads back as the
 * type written below on both databases.
 */

export interface UsersTable {
  id: string;
  email: string;
  password_hash: string;
  created_at: string;
  updated_at: string;
}

export interface OrgsTable {
  id: string;
  name: string;
  created_at: string;
}

export interface MembershipsTable {
  id: string;
  org_id: string;
  user_id: string;
  role: string;
  created_at: string;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  kind: string;
  token_hash: string;
  created_at: string;
  last_used_at: string;
  idle_timeout_ms: number;
  expires_at: string;
  revoked_at: string | null;
}

export interface InvitesTable {
  id: string;
  org_id: string;
  role: string;
  code_hash: string;
  created_by: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  used_by: string | null;
}

export interface AppsTable {
  id: string;
  org_id: string;
  name: string;
  created_at: string;
  updated_at: string;
}

/** WardMigrationsTable records each applied migration; see migrate.ts. */
export interface WardMigrationsTable {
  version: number;
  name: string;
  applied_at: string;
}

/** DB is the whole schema, the type parameter of every Kysely<DB> in this folder. */
export interface DB {
  users: UsersTable;
  orgs: OrgsTable;
  memberships: MembershipsTable;
  sessions: SessionsTable;
  invites: InvitesTable;
  apps: AppsTable;
  ward_migrations: WardMigrationsTable;
}

/**
 * CONSTRAINTS maps each uniqueness rule to the name it has in PostgreSQL (the `constraint` field of a
 * 23505 error) and the column list SQLite reports ("UNIQUE constraint failed: <columns>"), so both
 * databases' conflicts map to the same StoreConflictError.constraint. Primary keys are listed too: ids
 * come from callers, and a duplicate one is a conflict like any other.
 */
export const CONSTRAINTS = [
  { rule: 'users.email', pg: 'users_email_key', sqlite: 'users.email' },
  { rule: 'orgs.name', pg: 'orgs_name_key', sqlite: 'orgs.name' },
  { rule: 'apps.name', pg: 'apps_name_key', sqlite: 'apps.name' },
  { rule: 'memberships.org_user', pg: 'memberships_org_user_key', sqlite: 'memberships.org_id, memberships.user_id' },
  { rule: 'sessions.token_hash', pg: 'sessions_token_hash_key', sqlite: 'sessions.token_hash' },
  { rule: 'invites.code_hash', pg: 'invites_code_hash_key', sqlite: 'invites.code_hash' },
  { rule: 'users.id', pg: 'users_pkey', sqlite: 'users.id' },
  { rule: 'orgs.id', pg: 'orgs_pkey', sqlite: 'orgs.id' },
  { rule: 'memberships.id', pg: 'memberships_pkey', sqlite: 'memberships.id' },
  { rule: 'sessions.id', pg: 'sessions_pkey', sqlite: 'sessions.id' },
  { rule: 'invites.id', pg: 'invites_pkey', sqlite: 'invites.id' },
  { rule: 'apps.id', pg: 'apps_pkey', sqlite: 'apps.id' },
] as const;

/** constraintName returns the PostgreSQL name of a uniqueness rule, for the DDL in migrations.ts. */
export function constraintName(rule: (typeof CONSTRAINTS)[number]['rule']): string {
  return CONSTRAINTS.find((c) => c.rule === rule)!.pg;
}
