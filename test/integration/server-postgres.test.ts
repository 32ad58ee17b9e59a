// `ward server --database-url postgres://…` serves the same API against PostgreSQL as it does on SQLite:
// a real server process on a database of its own, made and dropped by this test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { resolveServerConfig } from '../../src/config/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';

const ADMIN_URL = process.env.WARD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `ward_test_server_${randomBytes(4).toString('hex')}`;

let dir = '';
let server: RunningServer | undefined;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ward-server-pg-'));
  await admin(`create database ${dbName}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const config = resolveServerConfig({
    flags: { 'data-dir': dir, 'database-url': url.toString(), 'api-listen': '127.0.0.1:0', roles: 'control', 'log-level': 'warn' },
    env: {},
  });
  server = await startServer(config);
});

after(async () => {
  await server?.close();
  await admin(`drop database if exists ${dbName} with (force)`).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

test('the control plane serves health, the API document, metrics and accounts on PostgreSQL', async () => {
  const base = server!.apiUrl;
  const health = (await (await fetch(`${base}/v1/health`)).json()) as { status: string; store: string };
  assert.deepEqual({ status: health.status, store: health.store }, { status: 'ok', store: 'postgres' });
  assert.equal((await fetch(`${base}/v1/openapi.json`)).status, 200);
  assert.match(await (await fetch(`${base}/metrics`)).text(), /ward_http_requests_total/);

  const signup = await fetch(`${base}/v1/auth/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'pg@example.com', password: 'correct horse battery', org: 'pg-org' }),
  });
  assert.equal(signup.status, 201);
  const token = ((await signup.json()) as { session: { token: string } }).session.token;
  const created = await fetch(`${base}/v1/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: 'pg-app' }),
  });
  assert.equal(created.status, 201, await created.clone().text());
  const list = (await (await fetch(`${base}/v1/apps`, { headers: { authorization: `Bearer ${token}` } })).json()) as { apps: Array<{ name: string }> };
  assert.deepEqual(list.apps.map((a) => a.name), ['pg-app']);
});
