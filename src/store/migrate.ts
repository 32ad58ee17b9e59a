import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { UserError } from '../core/index.ts';
import { MIGRATIONS } from './migrations.ts';
import type { Migration } from './migrations.ts';
import type { StoreLogger } from './types.ts';

/**
 * MIGRATION_LOCK_ID is the PostgreSQL advisory lock key migrate() holds while it reads and applies
 * migrations ("ward" in ASCII). Every Ward server of every version uses this one key, so two control
 * plane replicas that start together apply each migration exactly once.
 */
export const MIGRATION_LOCK_ID = 0x77617264;

/** MigrateResult says which migrations migrate() applied and the schema version it left. */
export interface MigrateResult {
  applied: number[];
  version: number;
}

export interface MigrateOptions {
  /** migrations defaults to MIGRATIONS; tests pass their own list. */
  migrations?: readonly Migration[];
  logger?: StoreLogger;
}

/**
 * migrate brings the database to the latest schema this code knows. All pending migrations run in one
 * transaction, with their `ward_migrations` rows: a failure leaves the database exactly as it was, never
 * half-migrated. On PostgreSQL the transaction first takes an advisory lock, so concurrent starts queue up
 * and the later ones find nothing to do; on SQLite the transaction begins IMMEDIATE (see sqlite.ts), which
 * serializes writers the same way. A database whose version is newer than this code knows is refused:
 * running old code against a newer schema corrupts data silently.
 */
export async function migrate(db: Kysely<any>, kind: 'sqlite' | 'postgres', options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = options.migrations ?? MIGRATIONS;
  checkOrder(migrations);
  const latest = migrations.at(-1)?.version ?? 0;

  return db.transaction().execute(async (trx) => {
    if (kind === 'postgres') {
      await sql`select pg_advisory_xact_lock(${sql.lit(MIGRATION_LOCK_ID)})`.execute(trx);
    }
    await trx.schema
      .createTable('ward_migrations')
      .ifNotExists()
      .addColumn('version', 'integer', (c) => c.notNull().primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('applied_at', 'text', (c) => c.notNull())
      .execute();

    const row = await trx
      .selectFrom('ward_migrations')
      .select((eb) => eb.fn.max<number | null>('version').as('version'))
      .executeTakeFirst();
    const current = Number(row?.version ?? 0);
    if (current > latest) {
      throw new UserError(
        'unavailable',
        `the database schema is at version ${current}, newer than this Ward knows (version ${latest}); a newer Ward has used this database`,
        {
          hint: 'Run the Ward release that last used this database, or a newer one. Ward never downgrades a schema.',
          details: { schemaVersion: current, knownVersion: latest },
        },
      );
    }

    const applied: number[] = [];
    for (const m of migrations) {
      if (m.version <= current) continue;
      try {
        await m.up(trx);
      } catch (e) {
        throw new Error(`migration ${m.version} (${m.name}) failed: ${(e as Error)?.message ?? e}`, { cause: e });
      }
      await trx
        .insertInto('ward_migrations')
        .values({ version: m.version, name: m.name, applied_at: new Date().toISOString() })
        .execute();
      applied.push(m.version);
    }
    if (applied.length > 0) {
      options.logger?.info({ kind, from: current, to: latest, applied }, 'database migrated');
    }
    return { applied, version: latest };
  });
}

// checkOrder catches a mis-edited MIGRATIONS list at start rather than as a half-understood schema.
function checkOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migrations must be numbered 1, 2, 3… in order; position ${i} has version ${m.version}`);
    }
  });
}
