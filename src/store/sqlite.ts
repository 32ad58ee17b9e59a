import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { SQLInputValue, StatementSync } from 'node:sqlite';
import { CompiledQuery, Kysely, SqliteDialect, SqliteDriver } from 'kysely';
import type { DatabaseConnection, Driver, SqliteDatabase, SqliteDialectConfig, SqliteStatement } from 'kysely';
import { UserError, isUserError } from '../core/index.ts';
import { KyselyStore } from './kysely-store.ts';
import { migrate } from './migrate.ts';
import type { DB } from './schema.ts';
import type { StoreLogger } from './types.ts';

/** SQLITE_FILE is the database file's name inside the data directory. */
export const SQLITE_FILE = 'ward.db';

export interface SqliteStoreOptions {
  /** dataDir holds ward.db; it is created (mode 0700) when missing. */
  dataDir?: string;
  /** file opens this exact path instead (`:memory:` for a private in-memory database); dataDir is ignored. */
  file?: string;
  logger?: StoreLogger;
}

/**
 * SqliteStore is the embedded default Store: one SQLite file, `ward.db` in the data directory, opened
 * with the built-in node:sqlite (no native addon to build or ship). It holds a single connection; Kysely
 * queues queries for it, and a transaction holds it until it ends. Safe for concurrent use within one
 * process; WAL mode and busy_timeout let a second process (a `ward` CLI command on the same host) read
 * and briefly write alongside.
 */
export class SqliteStore extends KyselyStore {
  /** file is the database path (or `:memory:`). */
  readonly file: string;

  private constructor(db: Kysely<DB>, file: string) {
    super(db, 'sqlite');
    this.file = file;
  }

  /**
   * open creates the data directory if needed, opens (or creates) the database and applies pending
   * migrations. Problems the operator can fix (a directory that cannot be created or written, a file
   * that is not a SQLite database) are UserErrors with code `data_dir`.
   */
  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    const file = options.file ?? join(prepareDataDir(options.dataDir, options.logger), SQLITE_FILE);
    const db = sqliteKysely(file);
    try {
      await migrate(db, 'sqlite', { logger: options.logger });
    } catch (e) {
      await db.destroy().catch(() => {});
      throw isUserError(e) ? e : sqliteFileError(file, e) ?? e;
    }
    options.logger?.info({ file }, 'store opened (sqlite)');
    return new SqliteStore(db, file);
  }
}

/**
 * sqliteKysely opens a SQLite file with Ward's settings (pragmas, BEGIN IMMEDIATE, statement cache) as a
 * Kysely<DB>, without migrating it; destroy() closes it. SqliteStore.open uses it; so do migration tests.
 */
export function sqliteKysely(file: string): Kysely<DB> {
  return new Kysely<DB>({ dialect: new ImmediateSqliteDialect({ database: new NodeSqliteDatabase(openDatabase(file)) }) });
}

function dataDirError(dir: string, what: string, cause: unknown): UserError {
  return new UserError('data_dir', `the data directory ${dir} ${what}`, {
    hint: 'Choose another directory with --data-dir, or fix its ownership and permissions so the user running Ward can write to it.',
    cause,
  });
}

function prepareDataDir(dataDir: string | undefined, logger: StoreLogger | undefined): string {
  if (!dataDir) throw new TypeError('SqliteStore.open needs dataDir or file');
  const dir = resolve(dataDir);
  try {
    // 0700: the directory holds password hashes and session token hashes; nobody else needs to list it.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw dataDirError(dir, `cannot be created: ${(e as Error).message}`, e);
  }
  const st = statSync(dir);
  if (!st.isDirectory()) throw dataDirError(dir, 'is not a directory', undefined);
  if ((st.mode & 0o077) !== 0) {
    // An existing directory is the operator's to manage; say so rather than chmod it behind their back.
    logger?.warn({ dir, mode: (st.mode & 0o777).toString(8) }, 'data directory is accessible to other users; 0700 is recommended');
  }
  const file = join(dir, SQLITE_FILE);
  try {
    // Create the file 0600 before SQLite does (it would use 0644); its -wal and -shm files copy this mode.
    closeSync(openSync(file, 'a', 0o600));
  } catch (e) {
    throw dataDirError(dir, `cannot be written: ${(e as Error).message}`, e);
  }
  return dir;
}

// SQLite primary result codes (the low byte of node:sqlite's extended errcode) that mean "this file or
// its directory is the problem", as opposed to a bug in a query.
const FILE_ERRORS = new Map<number, string>([
  [8, 'is read-only'], // SQLITE_READONLY
  [10, 'could not be read or written (I/O error)'], // SQLITE_IOERR
  [11, 'is corrupt'], // SQLITE_CORRUPT
  [13, 'cannot grow: the disk is full'], // SQLITE_FULL
  [14, 'cannot be opened'], // SQLITE_CANTOPEN
  [23, 'cannot be accessed (permission denied)'], // SQLITE_AUTH/PERM
  [26, 'is not a SQLite database'], // SQLITE_NOTADB
]);

function sqliteFileError(file: string, e: unknown): UserError | undefined {
  const code = (e as { errcode?: unknown })?.errcode;
  if (typeof code !== 'number') return undefined;
  const what = FILE_ERRORS.get(code & 0xff);
  if (!what) return undefined;
  return new UserError('data_dir', `the database file ${file} ${what}: ${(e as Error).message}`, {
    hint: 'Choose another directory with --data-dir, or fix the file (permissions, free space, or restore it from a backup).',
    cause: e,
  });
}

function openDatabase(file: string): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(file);
    // WAL lets readers run while a write commits; NORMAL sync is durable across process crashes in WAL
    // mode (only an OS crash can lose the last commits); busy_timeout waits out another process's write
    // instead of failing at once; foreign keys are off by default in SQLite.
    const mode = db.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode?: string } | undefined;
    db.exec('PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;');
    if (file !== ':memory:' && mode?.journal_mode?.toLowerCase() !== 'wal') {
      throw Object.assign(new Error(`journal_mode is ${mode?.journal_mode}, not wal`), { errcode: 14 });
    }
    return db;
  } catch (e) {
    try {
      db?.close();
    } catch {
      // The open failed already; that is the error to report.
    }
    throw sqliteFileError(file, e) ?? e;
  }
}

/**
 * NodeSqliteDatabase adapts node:sqlite's DatabaseSync to the better-sqlite3 shape Kysely's SqliteDialect
 * expects. Prepared statements are cached by SQL text: Kysely compiles the same few dozen queries over
 * and over, and preparing is a large part of a small query's cost.
 */
class NodeSqliteDatabase implements SqliteDatabase {
  static readonly CACHE_SIZE = 256;
  readonly #db: DatabaseSync;
  readonly #cache = new Map<string, { stmt: StatementSync; reader: boolean }>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  prepare(sqlText: string): SqliteStatement {
    let entry = this.#cache.get(sqlText);
    if (entry) {
      // Re-insert so the Map's order is least-recently-used first.
      this.#cache.delete(sqlText);
    } else {
      const stmt = this.#db.prepare(sqlText);
      entry = { stmt, reader: stmt.columns().length > 0 };
      if (this.#cache.size >= NodeSqliteDatabase.CACHE_SIZE) {
        this.#cache.delete(this.#cache.keys().next().value!);
      }
    }
    this.#cache.set(sqlText, entry);
    const { stmt, reader } = entry;
    return {
      reader,
      all: (params) => stmt.all(...(params as SQLInputValue[])),
      run: (params) => {
        const r = stmt.run(...(params as SQLInputValue[]));
        return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
      },
      iterate: (params) => stmt.iterate(...(params as SQLInputValue[])),
    };
  }

  close(): void {
    this.#cache.clear();
    if (this.#db.isOpen) this.#db.close();
  }
}

/**
 * ImmediateSqliteDriver begins transactions with BEGIN IMMEDIATE. A plain BEGIN takes the write lock
 * only at the first write, and if another process wrote in between, SQLite fails the transaction with
 * SQLITE_BUSY at once, without waiting for busy_timeout. Taking the lock up front makes concurrent
 * writers (and concurrent migrations) queue instead.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}
