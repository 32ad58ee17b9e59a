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
];
