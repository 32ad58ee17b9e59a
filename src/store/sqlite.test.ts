import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../core/index.ts';
import { migrate } from './migrate.ts';
import { MIGRATIONS } from './migrations.ts';
import type { Migration } from './migrations.ts';
import { SqliteStore, sqliteKysely } from './sqlite.ts';
import { aMembership, aUser, anOrg, runStoreContract } from './store.contract.ts';
import { runIdentityContract } from './identity.contract.ts';
import { runRuntimeContract } from './runtime.contract.ts';
import { runSecretsContract } from './secrets.contract.ts';
import { runNetworkContract } from './network.contract.ts';
import { runCertsContract } from './certs.contract.ts';
import { runVolumesContract } from './volumes.contract.ts';
import { runBackupsContract } from './backups.contract.ts';

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ward-store-sqlite-'));
});
after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  return mkdtemp(join(root, 'd-'));
}

/** fileStore opens a store in a fresh data directory, removed with it. */
const fileStore = async () => {
  const dir = await freshDir();
  const store = await SqliteStore.open({ dataDir: dir });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
};

for (const run of [runStoreContract, runIdentityContract, runSecretsContract, runRuntimeContract, runVolumesContract, runBackupsContract, runNetworkContract, runCertsContract]) {
  run('SqliteStore (file)', fileStore);
}

runStoreContract('SqliteStore (:memory:)', async () => {
  const store = await SqliteStore.open({ file: ':memory:' });
  return { store, cleanup: () => store.close() };
});

function tables(file: string): string[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return (db.prepare("select name from sqlite_master where type = 'table' order by name").all() as Array<{ name: string }>).map((r) => r.name);
  } finally {
    db.close();
  }
}

function migrationRows(file: string): Array<{ version: number; name: string }> {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return (db.prepare('select version, name from ward_migrations order by version').all() as Array<{ version: number; name: string }>).map((r) => ({
      version: r.version,
      name: r.name,
    }));
  } finally {
    db.close();
  }
}

describe('SqliteStore', () => {
  test('creates a missing data dir 0700 (parents too) and ward.db 0600, in WAL mode', async () => {
    const dir = join(await freshDir(), 'a', 'b');
    const store = await SqliteStore.open({ dataDir: dir });
    try {
      assert.equal(store.kind, 'sqlite');
      assert.equal(store.file, join(dir, 'ward.db'));
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
      assert.equal((await stat(store.file)).mode & 0o777, 0o600);
      await stat(`${store.file}-wal`);
      const raw = new DatabaseSync(store.file, { readOnly: true });
      try {
        assert.deepEqual({ ...raw.prepare('PRAGMA journal_mode').get() }, { journal_mode: 'wal' });
      } finally {
        raw.close();
      }
    } finally {
      await store.close();
    }
  });

  test('enforces foreign keys', async () => {
    const store = await SqliteStore.open({ dataDir: await freshDir() });
    try {
      const o = anOrg();
      await store.orgs.create(o);
      await assert.rejects(store.memberships.create(aMembership(o.id, aUser().id)), /FOREIGN KEY/);
    } finally {
      await store.close();
    }
  });

  test('keeps data across reopen and does not re-run migrations', async () => {
    const dir = await freshDir();
    const u = aUser();
    const first = await SqliteStore.open({ dataDir: dir });
    await first.users.create(u);
    await first.close();
    const second = await SqliteStore.open({ dataDir: dir });
    try {
      assert.deepEqual(await second.users.get(u.id), u);
    } finally {
      await second.close();
    }
    assert.deepEqual(
      migrationRows(join(dir, 'ward.db')),
      MIGRATIONS.map((m) => ({ version: m.version, name: m.name })),
    );
  });

  test('close is idempotent; a closed store rejects queries', async () => {
    const store = await SqliteStore.open({ dataDir: await freshDir() });
    await store.close();
    await store.close();
    await assert.rejects(store.ping());
  });

  test('refuses a database migrated by a newer Ward', async () => {
    const dir = await freshDir();
    await (await SqliteStore.open({ dataDir: dir })).close();
    const raw = new DatabaseSync(join(dir, 'ward.db'));
    raw.prepare('insert into ward_migrations (version, name, applied_at) values (?, ?, ?)').run(999, 'from-the-future', new Date().toISOString());
    raw.close();
    await assert.rejects(SqliteStore.open({ dataDir: dir }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.code, 'unavailable');
      assert.match(e.message, new RegExp(`version 999, newer than this Ward knows \\(version ${MIGRATIONS.length}\\)`));
      assert.ok(e.hint);
      return true;
    });
  });

  test('a file that is not a SQLite database is a data_dir error', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'ward.db'), 'this is not a database, just some text that is long enough to have a header'.repeat(10));
    await assert.rejects(SqliteStore.open({ dataDir: dir }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.code, 'data_dir');
      assert.match(e.message, /not a SQLite database/);
      return true;
    });
  });
});

describe('migrate (SQLite)', () => {
  const failing: Migration = {
    version: 2,
    name: 'broken',
    async up(db) {
      await db.schema.createTable('half_done').addColumn('a', 'text').execute();
      throw new Error('nope');
    },
  };
  const second: Migration = {
    version: 2,
    name: 'add-widgets',
    async up(db) {
      await db.schema.createTable('widgets').addColumn('id', 'text', (c) => c.primaryKey()).execute();
    },
  };

  test('pending migrations apply in one transaction: a failure leaves the database untouched', async () => {
    const file = join(await freshDir(), 'm.db');
    const db = sqliteKysely(file);
    try {
      await assert.rejects(migrate(db, 'sqlite', { migrations: [MIGRATIONS[0]!, failing] }), /migration 2 \(broken\) failed: nope/);
    } finally {
      await db.destroy();
    }
    assert.deepEqual(tables(file), []);
  });

  test('applies only what is pending, in order, and records each', async () => {
    const file = join(await freshDir(), 'm.db');
    const db = sqliteKysely(file);
    try {
      assert.deepEqual(await migrate(db, 'sqlite', { migrations: [MIGRATIONS[0]!] }), { applied: [1], version: 1 });
      assert.deepEqual(await migrate(db, 'sqlite', { migrations: [MIGRATIONS[0]!, second] }), { applied: [2], version: 2 });
      assert.deepEqual(await migrate(db, 'sqlite', { migrations: [MIGRATIONS[0]!, second] }), { applied: [], version: 2 });
    } finally {
      await db.destroy();
    }
    assert.deepEqual(migrationRows(file), [
      { version: 1, name: MIGRATIONS[0]!.name },
      { version: 2, name: 'add-widgets' },
    ]);
    assert.ok(tables(file).includes('widgets'));
  });

  test('rejects a mis-numbered migration list', async () => {
    const db = sqliteKysely(':memory:');
    try {
      await assert.rejects(migrate(db, 'sqlite', { migrations: [second] }), /numbered 1, 2, 3/);
    } finally {
      await db.destroy();
    }
  });
});
