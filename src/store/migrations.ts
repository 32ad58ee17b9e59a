import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { constraintName } from './schema.ts';

/**
 * Migration is one forward-only step of the schema. `version` numbers are consecutive from 1 and never
 * reused; a released migration is never edited (add a new one instead), because databases in the field
 * have already run it. `up` uses Kysely's schema builder so the same DDL runs on SQLite and PostgreSQL;
 * it runs inside the migration transaction (see migrate.ts) and must not commit by itself.
 */
export interface Migration {
  version: number;
  name: string;
  up(db: Kysely<any>): Promise<void>;
}

/**
 * MIGRATIONS is the ordered list of every migration this code knows. The last version is the schema that
 * schema.ts describes.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'accounts-orgs-sessions-invites-apps',
    async up(db) {
      // Column-level NOT NULL on text primary keys: SQLite otherwise accepts NULL ids (a legacy quirk).
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('users.id'), ['id'])
        .addUniqueConstraint(constraintName('users.email'), ['email'])
        .execute();

      await db.schema
        .createTable('orgs')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('orgs.id'), ['id'])
        .addUniqueConstraint(constraintName('orgs.name'), ['name'])
        .execute();

      await db.schema
        .createTable('memberships')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('memberships.id'), ['id'])
        .addUniqueConstraint(constraintName('memberships.org_user'), ['org_id', 'user_id'])
        .execute();
      // The (org_id, user_id) key serves lookups by org; lookups by user (orgs.listForUser) need their own.
      await db.schema.createIndex('memberships_user_id_idx').on('memberships').column('user_id').execute();

      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text', (c) => c.notNull())
        // bigint: an idle timeout of more than 24.8 days would overflow a 32-bit integer.
        .addColumn('idle_timeout_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addPrimaryKeyConstraint(constraintName('sessions.id'), ['id'])
        .addUniqueConstraint(constraintName('sessions.token_hash'), ['token_hash'])
        .execute();
      await db.schema.createIndex('sessions_user_id_idx').on('sessions').column('user_id').execute();

      await db.schema
        .createTable('invites')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('code_hash', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        // A used invite outlives the user who used it; only the link is dropped.
        .addColumn('used_by', 'text', (c) => c.references('users.id').onDelete('set null'))
        .addPrimaryKeyConstraint(constraintName('invites.id'), ['id'])
        .addUniqueConstraint(constraintName('invites.code_hash'), ['code_hash'])
        .execute();
      await db.schema.createIndex('invites_org_id_idx').on('invites').column('org_id').execute();

      await db.schema
        .createTable('apps')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('apps.id'), ['id'])
        // Global, not per org: an app's name is its DNS label (<app>.internal, <app>.<domain>).
        .addUniqueConstraint(constraintName('apps.name'), ['name'])
        .execute();
      await db.schema.createIndex('apps_org_id_idx').on('apps').column('org_id').execute();
    },
  },
  {
    version: 2,
    name: 'audit-log',
    async up(db) {
      // One row per audit entry; the columns are AuditRecord (src/audit/chain.ts). `details` is JSON text
      // so both databases store it byte for byte the same and it hashes the same when read back.
      await db.schema
        .createTable('audit_entries')
        .addColumn('chain', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text')
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('actor_label', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('source_ip', 'text')
        .addColumn('request_id', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        // No foreign key to orgs: the log must outlive what it records (a destroyed org keeps its trail).
        .addPrimaryKeyConstraint(constraintName('audit_entries.chain_seq'), ['chain', 'seq'])
        .execute();
      await db.schema.createIndex('audit_entries_org_at_idx').on('audit_entries').columns(['org_id', 'at']).execute();

      await db.schema
        .createTable('audit_checkpoints')
        .addColumn('chain', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('signature', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('audit_checkpoints.chain_seq'), ['chain', 'seq'])
        .execute();

      // Every control-plane replica signs with its own key; verifiers need all their public keys.
      await db.schema
        .createTable('audit_keys')
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('public_key_pem', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('audit_keys.key_id'), ['key_id'])
        .execute();
    },
  },
  {
    version: 3,
    name: 'mfa-tokens-policies-throttle',
    async up(db) {
      // Second factors of every type share one table; `type` says how to read secret_sealed, public_data and
      // counter, so WebAuthn credentials need no new migration of their own.
      await db.schema
        .createTable('auth_factors')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('label', 'text', (c) => c.notNull())
        .addColumn('secret_sealed', 'text')
        .addColumn('public_data', 'text')
        // bigint: a WebAuthn signature counter is 32-bit unsigned; a TOTP step fits either way.
        .addColumn('counter', 'bigint')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('confirmed_at', 'text')
        .addColumn('last_used_at', 'text')
        .addPrimaryKeyConstraint(constraintName('auth_factors.id'), ['id'])
        .execute();
      // One TOTP factor per person (pending or confirmed); other types may have several.
      await db.schema
        .createIndex(constraintName('auth_factors.user_totp'))
        .on('auth_factors')
        .column('user_id')
        .unique()
        .where(sql.ref('type'), '=', sql.lit('totp'))
        .execute();
      await db.schema.createIndex('auth_factors_user_id_idx').on('auth_factors').column('user_id').execute();

      await db.schema
        .createTable('recovery_codes')
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('code_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .addPrimaryKeyConstraint(constraintName('recovery_codes.user_code'), ['user_id', 'code_hash'])
        .execute();

      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        // A destroyed app takes its tokens along: a new app of the same name must not inherit them.
        .addColumn('app_id', 'text', (c) => c.references('apps.id').onDelete('cascade'))
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .addColumn('revoked_at', 'text')
        .addPrimaryKeyConstraint(constraintName('api_tokens.id'), ['id'])
        .addUniqueConstraint(constraintName('api_tokens.token_hash'), ['token_hash'])
        .execute();
      await db.schema.createIndex('api_tokens_created_by_idx').on('api_tokens').column('created_by').execute();
      await db.schema.createIndex('api_tokens_org_id_idx').on('api_tokens').column('org_id').execute();

      await db.schema
        .createTable('org_policies')
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('require_mfa', 'integer', (c) => c.notNull())
        .addColumn('session_idle_ms', 'bigint')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        // The policy outlives the person who last set it; only the link is dropped.
        .addColumn('updated_by', 'text', (c) => c.references('users.id').onDelete('set null'))
        .addPrimaryKeyConstraint(constraintName('org_policies.org_id'), ['org_id'])
        .execute();

      // Keys are "account:<sha-256 of the email>" or "source:<address>"; no foreign key, because unknown
      // emails are throttled exactly like known ones.
      await db.schema
        .createTable('login_throttle')
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('failures', 'integer', (c) => c.notNull())
        .addColumn('window_started_at', 'text', (c) => c.notNull())
        .addColumn('blocked_until', 'text')
        .addPrimaryKeyConstraint(constraintName('login_throttle.key'), ['key'])
        .execute();
    },
  },
];
