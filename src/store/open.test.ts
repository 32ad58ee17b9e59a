import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../core/index.ts';
import { PostgresStore, SqliteStore, openStore } from './index.ts';

const PASSWORD = 'hunter2-s3cret';

/** assertUserError checks code and that the password appears nowhere a user or a log would see. */
function assertUserError(e: unknown, code: string): UserError {
  assert.ok(e instanceof UserError, `expected UserError, got ${String(e)}`);
  assert.equal(e.code, code);
  assert.ok(e.hint, 'a hint says what to do');
  for (const text of [e.message, e.hint, JSON.stringify(e.details ?? {})]) {
    assert.ok(!text.includes(PASSWORD), `password leaked: ${text}`);
  }
  return e;
}

/** silentServer accepts TCP connections and never says a word: a database that hangs. */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('openStore: PostgreSQL errors', () => {
  test('a port with nothing listening is database_unreachable, fast, naming host:port and not the password', async () => {
    const started = Date.now();
    const err = await openStore({ databaseUrl: `postgres://ward:${PASSWORD}@127.0.0.1:1/ward` }).then(
      () => assert.fail('opened'),
      (e: unknown) => e,
    );
    const e = assertUserError(err, 'database_unreachable');
    assert.match(e.message, /127\.0\.0\.1:1\b/);
    assert.match(e.message, /connection refused/);
    assert.match(e.hint!, /--database-url/);
    assert.ok(Date.now() - started < 5000, 'does not wait for a timeout when refused');
  });

  test('a server that never answers times out after connectTimeoutMs', async () => {
    const srv = await silentServer();
    try {
      const started = Date.now();
      const err = await PostgresStore.open({ databaseUrl: `postgres://ward:${PASSWORD}@127.0.0.1:${srv.port}/ward`, connectTimeoutMs: 300 }).then(
        () => assert.fail('opened'),
        (e: unknown) => e,
      );
      const e = assertUserError(err, 'database_unreachable');
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${srv.port}: no answer within 0\\.3s`));
      assert.ok(Date.now() - started < 2000);
    } finally {
      await srv.close();
    }
  });

  test('openStore gives up on a silent server within about 5 s', async () => {
    const srv = await silentServer();
    try {
      const started = Date.now();
      const err = await openStore({ databaseUrl: `postgres://ward:${PASSWORD}@127.0.0.1:${srv.port}/ward` }).then(
        () => assert.fail('opened'),
        (e: unknown) => e,
      );
      assertUserError(err, 'database_unreachable');
      const took = Date.now() - started;
      assert.ok(took >= 4500 && took < 6500, `took ${took} ms`);
    } finally {
      await srv.close();
    }
  });

  test('a malformed URL is invalid_config and is not echoed', async () => {
    for (const url of [`postgres://ward:${PASSWORD}@127.0.0.1:99999/ward`, `not a url ${PASSWORD}`]) {
      const err = await openStore({ databaseUrl: url }).then(
        () => assert.fail('opened'),
        (e: unknown) => e,
      );
      assertUserError(err, 'invalid_config');
    }
  });

  test('a URL for another database kind is invalid_config', async () => {
    const err = await openStore({ databaseUrl: `mysql://ward:${PASSWORD}@127.0.0.1/ward` }).then(
      () => assert.fail('opened'),
      (e: unknown) => e,
    );
    assert.match(assertUserError(err, 'invalid_config').message, /scheme "mysql"/);
  });
});

describe('openStore: data dir errors', () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ward-store-open-'));
  });
  after(async () => {
    if (root) {
      await chmod(join(root, 'locked'), 0o700).catch(() => {});
      await rm(root, { recursive: true, force: true });
    }
  });

  test('a data dir under a regular file is data_dir', async () => {
    const file = join(root, 'a-file');
    await writeFile(file, 'x');
    const err = await openStore({ dataDir: join(file, 'data') }).then(
      () => assert.fail('opened'),
      (e: unknown) => e,
    );
    const e = assertUserError(err, 'data_dir');
    assert.match(e.message, /cannot be created/);
    assert.match(e.hint!, /--data-dir/);
  });

  test('a data dir that is a regular file is data_dir', async () => {
    const file = join(root, 'another-file');
    await writeFile(file, 'x');
    const err = await openStore({ dataDir: file }).then(
      () => assert.fail('opened'),
      (e: unknown) => e,
    );
    assertUserError(err, 'data_dir');
  });

  test('a data dir the process may not write is data_dir', async () => {
    const dir = join(root, 'locked');
    await mkdir(dir, { mode: 0o500 });
    if (process.getuid?.() !== 0) {
      const err = await openStore({ dataDir: dir }).then(
        () => assert.fail('opened'),
        (e: unknown) => e,
      );
      assert.match(assertUserError(err, 'data_dir').message, /cannot be written/);
      return;
    }
    // Root may write anywhere, so as root (CI) the same attempt runs in a child process as nobody.
    await chmod(root, 0o755);
    const probe = `import('${new URL('./index.ts', import.meta.url).href}').then((m) => m.openStore({ dataDir: process.argv[1] }))
      .then(() => console.log(JSON.stringify({ opened: true })), (e) => console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })));`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--input-type=module', '-e', probe, dir], { uid: 65534, gid: 65534 }, (e, stdout) => (e ? reject(e) : resolve(stdout))),
    );
    const r = JSON.parse(out) as { code?: string; message?: string; hint?: string };
    assert.equal(r.code, 'data_dir', out);
    assert.match(r.message!, /cannot be written/);
    assert.match(r.hint!, /--data-dir/);
  });

  test('a usable data dir opens a SqliteStore', async () => {
    const store = await openStore({ dataDir: join(root, 'ok') });
    try {
      assert.ok(store instanceof SqliteStore);
      assert.equal(store.kind, 'sqlite');
      await store.ping();
    } finally {
      await store.close();
    }
  });
});
