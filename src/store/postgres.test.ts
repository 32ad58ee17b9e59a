import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Kysely, PostgresDialect } from 'kysely';
import { Client, Pool } from 'pg';
import { UserError } from '../core/index.ts';
import { migrate } from './migrate.ts';
import { MIGRATIONS } from './migrations.ts';
import type { Migration } from './migrations.ts';
import { PostgresStore } from './postgres.ts';
import { aMembership, aUser, anOrg, runStoreContract } from './store.contract.ts';
import { runIdentityContract } from './identity.contract.ts';
import { runRuntimeContract } from './runtime.contract.ts';
import { runSecretsContract } from './secrets.contract.ts';
import { runNetworkContract } from './network.contract.ts';
import { runCertsContract } from './certs.contract.ts';
import { runVolumesContract } from './volumes.contract.ts';
import { runBackupsContract } from './backups.contract.ts';

const ADMIN_URL = process.env.WARD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const RUN = `ward_test_${process.pid}_${randomBytes(4).toString('hex')}`;
const created: string[] = [];

function urlFor(database: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** createDatabase makes an empty database named after this run; after() drops every one, even on failure. */
async function createDatabase(suffix: string): Promise<string> {
  const name = `${RUN}_${suffix}`;
  await admin((c) => c.query(`create database "${name}"`));
  created.push(name);
  return name;
}

async function query<T>(database: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new Client({ connectionString: urlFor(database), connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

// Every table, emptied between contract tests.
const TABLES = 'users, orgs, memberships, sessions, invites, apps, audit_entries, audit_checkpoints, audit_keys, auth_factors, recovery_codes, api_tokens, org_policies, login_throttle, hosts, releases, instances, data_keys, secret_versions, secret_values, secret_deliveries, host_credentials';

let contractDb = '';
before(async () => {
  contractDb = await createDatabase('contract');
});
after(async () => {
  await admin(async (c) => {
    for (const name of created) await c.query(`drop database if exists "${name}" with (force)`);
  });
});

/**
 * freshStore opens a store on the contract database, emptied first (one database per run: creating one
 * per test costs far more). `tables` names what to empty.
 */
const freshStore = (tables = `${TABLES} cascade`) => async () => {
  const store = await PostgresStore.open({ databaseUrl: urlFor(contractDb) });
  await query(contractDb, `truncate ${tables}`);
  return { store, cleanup: () => store.close() };
};

for (const run of [runStoreContract, runIdentityContract, runSecretsContract, runRuntimeContract, runVolumesContract, runBackupsContract, runNetworkContract]) run('PostgresStore', freshStore());
runCertsContract('PostgresStore', freshStore('edge_certificates, edge_cert_status, acme_accounts, edge_cert_owners, edge_issuance_locks'));

describe('PostgresStore', () => {
  test('two stores opening a fresh database at once both succeed; each migration is applied once', async () => {
    const db = await createDatabase('race');
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open({ databaseUrl: urlFor(db) })));
    try {
      const u = aUser();
      await stores[0]!.users.create(u);
      assert.deepEqual(await stores[3]!.users.get(u.id), u);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    const rows = await query<{ version: number; name: string }>(db, 'select version, name from ward_migrations order by version');
    assert.deepEqual(
      rows.map((r) => ({ version: r.version, name: r.name })),
      MIGRATIONS.map((m) => ({ version: m.version, name: m.name })),
    );
  });

  test('desiredChanges and reportChanges: a notify reaches subscribers in other stores on the database, and one that lost its connection is called again once it is back', async () => {
    const [a, b] = await Promise.all([PostgresStore.open({ databaseUrl: urlFor(contractDb) }), PostgresStore.open({ databaseUrl: urlFor(contractDb) })]);
    try {
      let heard = 0;
      const waitHeard = async (n: number) => {
        for (let i = 0; i < 100 && heard < n; i++) await new Promise((r) => setTimeout(r, 50));
        assert.ok(heard >= n, `heard ${heard} of ${n}`);
      };
      const stop = await b.desiredChanges.subscribe(() => heard++);
      await a.desiredChanges.notify();
      await waitHeard(1);
      // A notify inside a transaction store goes out too (PostgreSQL delivers it at commit).
      await a.transaction(async (tx) => tx.desiredChanges.notify());
      await waitHeard(2);

      // The server ends the LISTEN connection (a restart, a failover): b connects again and calls its
      // subscribers once, for whatever it missed, then hears new notifications as before.
      await admin((c) => c.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and query like 'LISTEN %'`, [contractDb]));
      await waitHeard(3);
      await a.desiredChanges.notify();
      await waitHeard(4);

      // reportChanges is a channel of its own: a report does not wake desired-state listeners.
      let reports = 0;
      const stopReports = await a.reportChanges.subscribe(() => reports++);
      const heardBefore = heard;
      await b.reportChanges.notify();
      for (let i = 0; i < 100 && reports === 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(reports, 1);
      assert.equal(heard, heardBefore);
      await stopReports();

      await stop();
      const before = heard;
      await a.desiredChanges.notify();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(heard, before, 'nothing after unsubscribing');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('names its target without the password', async () => {
    const u = new URL(urlFor(contractDb));
    const store = await PostgresStore.open({ databaseUrl: u.toString() });
    try {
      assert.equal(store.kind, 'postgres');
      assert.deepEqual(store.target, { host: u.hostname, port: Number(u.port || 5432), database: contractDb, user: decodeURIComponent(u.username) || 'postgres' });
    } finally {
      await store.close();
    }
  });

  test('enforces foreign keys', async () => {
    const store = await PostgresStore.open({ databaseUrl: urlFor(contractDb) });
    try {
      const o = anOrg();
      await store.orgs.create(o);
      await assert.rejects(store.memberships.create(aMembership(o.id, aUser().id)), /foreign key/);
    } finally {
      await store.close();
    }
  });

  test('refuses a database migrated by a newer Ward', async () => {
    const db = await createDatabase('future');
    await (await PostgresStore.open({ databaseUrl: urlFor(db) })).close();
    await query(db, 'insert into ward_migrations (version, name, applied_at) values ($1, $2, $3)', [999, 'from-the-future', new Date().toISOString()]);
    await assert.rejects(PostgresStore.open({ databaseUrl: urlFor(db) }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.code, 'unavailable');
      assert.match(e.message, /version 999/);
      return true;
    });
  });

  test('a missing database is database_unreachable naming it', async () => {
    await assert.rejects(PostgresStore.open({ databaseUrl: urlFor(`${RUN}_missing`) }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.code, 'database_unreachable');
      assert.match(e.message, new RegExp(`database "${RUN}_missing" does not exist`));
      return true;
    });
  });
});

describe('migrate (PostgreSQL)', () => {
  test('a failing migration leaves the database untouched', async () => {
    const name = await createDatabase('atomic');
    const failing: Migration = {
      version: 2,
      name: 'broken',
      async up(db) {
        await db.schema.createTable('half_done').addColumn('a', 'text').execute();
        throw new Error('nope');
      },
    };
    const pool = new Pool({ connectionString: urlFor(name), connectionTimeoutMillis: 5000 });
    const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
    try {
      await assert.rejects(migrate(db, 'postgres', { migrations: [MIGRATIONS[0]!, failing] }), /migration 2 \(broken\) failed: nope/);
    } finally {
      await db.destroy();
    }
    const tables = await query<{ tablename: string }>(name, "select tablename from pg_tables where schemaname = 'public'");
    assert.deepEqual(tables, []);
  });
});
