import { Kysely, PostgresDialect } from 'kysely';
import { Client, Pool, TypeOverrides, type ClientConfig } from 'pg';
import { UserError, isUserError } from '../core/index.ts';
import { KyselyStore } from './kysely-store.ts';
import { migrate } from './migrate.ts';
import type { DB } from './schema.ts';
import type { ChangeSignal, StoreLogger } from './types.ts';

export interface PostgresStoreOptions {
  /** databaseUrl is a `postgres://USER:PASSWORD@HOST:PORT/DATABASE` URL (libpq query parameters allowed). */
  databaseUrl: string;
  logger?: StoreLogger;
  /** connectTimeoutMs bounds each connection attempt, including open's first one; default 5000. */
  connectTimeoutMs?: number;
  /** maxConnections is the pool size; default 10. */
  maxConnections?: number;
}

/** PostgresTarget is where a database URL points, without its credentials: safe to print and log. */
export interface PostgresTarget {
  host: string;
  port: number;
  database: string;
  user: string;
}

const INT8_OID = 20;

/**
 * PostgresStore is the Store for control planes that share one PostgreSQL database: a `pg` connection
 * pool under Kysely. Several processes may use one database at once; migrations are serialized between
 * them with an advisory lock (migrate.ts).
 */
export class PostgresStore extends KyselyStore {
  /** target says which server and database this store uses (never the password). */
  readonly target: PostgresTarget;

  readonly #signals: PgChangeSignal[];

  private constructor(db: Kysely<DB>, target: PostgresTarget, signal: (channel: string) => PgChangeSignal) {
    super(db, 'postgres');
    this.target = target;
    const desired = signal(DESIRED_CHANNEL);
    const reports = signal(REPORTS_CHANNEL);
    this.#signals = [desired, reports];
    this.desiredChanges = desired;
    this.reportChanges = reports;
  }

  override async close(): Promise<void> {
    await Promise.all(this.#signals.map((s) => s.close()));
    await super.close();
  }

  /**
   * open connects, checks the server answers, and applies pending migrations. A URL that is malformed is
   * a UserError `invalid_config`; a server that does not answer, refuses the login or lacks the database
   * is a UserError `database_unreachable`. Neither message contains the password.
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const target = parseTarget(options.databaseUrl);
    const timeoutMs = options.connectTimeoutMs ?? 5000;
    // bigint (int8) columns and count(*) come back from pg as strings by default, to be exact beyond 2^53;
    // Ward's int8 values (milliseconds, row counts) are far below that, and the domain types use numbers.
    const types = new TypeOverrides();
    types.setTypeParser(INT8_OID, 'text', (v: string) => Number(v));
    const pool = new Pool({
      connectionString: options.databaseUrl,
      connectionTimeoutMillis: timeoutMs,
      max: options.maxConnections ?? 10,
      application_name: 'ward',
      types,
    });
    // Without a listener, an idle connection dropped by the server (restart, failover) is an unhandled
    // 'error' event and ends the process; the pool replaces the connection on next use.
    pool.on('error', (err) => options.logger?.warn({ err: err.message, ...target }, 'idle PostgreSQL connection failed'));

    try {
      const client = await pool.connect();
      client.release();
    } catch (e) {
      await pool.end().catch(() => {});
      throw unreachable(target, timeoutMs, e);
    }

    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    try {
      await migrate(db, 'postgres', { logger: options.logger });
    } catch (e) {
      await db.destroy().catch(() => {});
      throw isUserError(e) || !isConnectionError(e) ? e : unreachable(target, timeoutMs, e);
    }
    options.logger?.info({ ...target }, 'store opened (postgres)');
    const listenConfig: ClientConfig = { connectionString: options.databaseUrl, connectionTimeoutMillis: timeoutMs, application_name: 'ward', types };
    return new PostgresStore(db, target, (channel) => new PgChangeSignal(pool, listenConfig, channel, options.logger));
  }
}

const URL_HINT = 'Give --database-url as postgres://USER:PASSWORD@HOST:PORT/DATABASE.';

/** parseTarget reads host, port, database and user from a database URL, for messages and logs. */
export function parseTarget(databaseUrl: string): PostgresTarget {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch (e) {
    // The URL may hold a password: describe the problem, never echo the input.
    throw new UserError('invalid_config', 'the database URL is not a valid URL', { hint: URL_HINT, cause: e });
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new UserError('invalid_config', `the database URL has scheme "${url.protocol.replace(/:$/, '')}"; only postgres:// is supported`, {
      hint: URL_HINT,
    });
  }
  const host = decodeURIComponent(url.hostname.replace(/^\[|\]$/g, '')) || url.searchParams.get('host') || 'localhost';
  const port = Number(url.port || url.searchParams.get('port') || 5432);
  const user = decodeURIComponent(url.username) || url.searchParams.get('user') || process.env.PGUSER || process.env.USER || 'postgres';
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || user;
  return { host, port, database, user };
}

function hostPort(t: PostgresTarget): string {
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  const message = String((e as Error)?.message ?? '');
  return (
    (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08') || code.startsWith('28') || code === '3D000')) ||
    /timeout|Connection terminated/i.test(message)
  );
}

/** unreachable turns a failed connection into a UserError that says why, naming host:port but no secret. */
function unreachable(t: PostgresTarget, timeoutMs: number, e: unknown): UserError {
  const code = (e as { code?: unknown })?.code;
  const message = String((e as Error)?.message ?? e);
  const where = `PostgreSQL at ${hostPort(t)}`;
  let reason: string;
  let hint = `Check that PostgreSQL is running and reachable from this host, and that --database-url points at it. ${URL_HINT}`;
  if (code === 'ECONNREFUSED') reason = 'connection refused (is the server running, on that port?)';
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') reason = `the host name ${t.host} does not resolve`;
  else if (/timeout/i.test(message) || code === 'ETIMEDOUT') reason = `no answer within ${timeoutMs / 1000}s`;
  else if (code === '28P01' || code === '28000') {
    reason = `the server refused the login of user "${t.user}" (${message})`;
    hint = 'Check the user name and password in --database-url, and the server\'s pg_hba.conf.';
  } else if (code === '3D000') {
    reason = `database "${t.database}" does not exist`;
    hint = `Create it (createdb ${t.database}) or name an existing database in --database-url.`;
  } else reason = message;
  return new UserError('database_unreachable', `could not connect to ${where}: ${reason}`, {
    hint,
    details: { host: t.host, port: t.port, database: t.database },
    cause: e,
  });
}

/** The NOTIFY channels of Store.desiredChanges and Store.reportChanges (fixed identifiers, never user input). */
const DESIRED_CHANNEL = 'ward_desired';
const REPORTS_CHANNEL = 'ward_reports';

/**
 * PgChangeSignal is a ChangeSignal over LISTEN/NOTIFY on one channel: notify through the pool, and one
 * dedicated connection that LISTENs while anyone subscribes (a process subscribes to what it acts on:
 * agents and edges to desired state, the control plane to reports). When that connection fails it is opened again (1 s,
 * then doubling to 30 s) and every subscriber is called once, for what it may have missed meanwhile.
 */
class PgChangeSignal implements ChangeSignal {
  readonly #pool: Pool;
  readonly #config: ClientConfig;
  readonly #channel: string;
  readonly #logger: StoreLogger | undefined;
  readonly #subscribers = new Set<() => void>();
  #client: Client | undefined;
  #connecting: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #delayMs = 1000;
  #closed = false;

  constructor(pool: Pool, config: ClientConfig, channel: string, logger: StoreLogger | undefined) {
    this.#pool = pool;
    this.#config = config;
    this.#channel = channel;
    this.#logger = logger;
  }

  async notify(): Promise<void> {
    await this.#pool.query('SELECT pg_notify($1, $2)', [this.#channel, '']);
  }

  async subscribe(fn: () => void): Promise<() => Promise<void>> {
    this.#subscribers.add(fn);
    if (!this.#client && !this.#retry) {
      try {
        await (this.#connecting ??= this.#connect().finally(() => (this.#connecting = undefined)));
      } catch (e) {
        // Not fatal: the subscriber's poll goes on, and the connection is tried again.
        this.#logger?.warn({ err: (e as Error).message }, 'PostgreSQL LISTEN connection failed; retrying');
        this.#scheduleRetry();
      }
    }
    return async () => {
      this.#subscribers.delete(fn);
      if (this.#subscribers.size === 0) await this.#disconnect();
    };
  }

  #call(): void {
    for (const fn of this.#subscribers) {
      try {
        fn();
      } catch (e) {
        this.#logger?.warn({ err: (e as Error).message }, 'change listener failed');
      }
    }
  }

  async #connect(): Promise<void> {
    const client = new Client(this.#config);
    client.on('notification', (n) => {
      if (n.channel === this.#channel) this.#call();
    });
    client.on('error', (err) => {
      this.#logger?.warn({ err: err.message }, 'PostgreSQL LISTEN connection failed; reconnecting');
      this.#lost(client);
    });
    client.on('end', () => this.#lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.#channel}`);
    } catch (e) {
      await client.end().catch(() => {});
      throw e;
    }
    this.#client = client;
    this.#delayMs = 1000;
  }

  #lost(client: Client): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    void client.end().catch(() => {});
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#subscribers.size === 0 || this.#retry) return;
    const again = () => {
      this.#retry = undefined;
      if (this.#closed || this.#subscribers.size === 0) return;
      this.#connect().then(
        () => this.#call(),
        () => {
          this.#delayMs = Math.min(this.#delayMs * 2, 30_000);
          this.#retry = setTimeout(again, this.#delayMs);
          this.#retry.unref();
        },
      );
    };
    this.#retry = setTimeout(again, this.#delayMs);
    this.#retry.unref();
  }

  async #disconnect(): Promise<void> {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    const c = this.#client;
    this.#client = undefined;
    await c?.end().catch(() => {});
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#subscribers.clear();
    await this.#connecting?.catch(() => {});
    await this.#disconnect();
  }
}
