// The secrets vault under attack, on SQLite and on PostgreSQL. A random canary is set as a secret, then:
// every person of every role (and every token scope) asks every route, and no answer carries it; a
// second host with no instance of the app asks for its values, with its own credential and with a token
// stolen from the right host, and gets nothing; ciphertexts and data keys swapped between apps in the
// database fail to decrypt, loudly; the master key is rotated and everything still reads; and at the end
// the bytes of the data dir, the database (SQLite file and WAL; PostgreSQL's dump and its data files),
// the server log, /var, /tmp, /etc, /run and the checkout hold the canary nowhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { pino } from 'pino';
import type { FastifyInstance, LightMyRequestResponse, RouteOptions } from 'fastify';
import { buildApi } from '../../src/api/index.ts';
import { openStore, SQLITE_FILE, type Store } from '../../src/store/index.ts';
import { ManualClock, newId, ROLES, toTimestamp, type Role } from '../../src/core/index.ts';
import { totpCode } from '../../src/auth/index.ts';
import { newLogger } from '../../src/server/index.ts';
import { keyProviderFromBytes, openLocalKeyProvider, rotateMasterKey, type KeyProvider } from '../../src/secrets/index.ts';
import { run } from '../../src/exec/index.ts';
import { aHost, anInstance, aRelease } from '../../src/store/runtime.contract.ts';
import { scanFiles, SYSTEM_SCAN_ROOTS, SYSTEM_SCAN_SKIP } from './canary-scan.ts';

const PASSWORD = 'correct horse battery staple';
const ADMIN_URL = process.env.WARD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CHECKOUT = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

/** A canary: random, so it can only be anywhere because this run put it there. */
const canaryOf = (label: string) => `wardcanary${label}${randomBytes(12).toString('hex')}`;

/** forms are the encodings a leak might take: as is, base64, base64url, hex. */
function forms(s: string): string[] {
  const b = Buffer.from(s, 'utf8');
  return [s, b.toString('base64'), b.toString('base64url'), b.toString('hex')];
}

interface Db {
  kind: 'sqlite' | 'postgres';
  store: Store;
  /** raw runs SQL on the database directly, as an attacker with database access would. */
  raw(q: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
  /** dump returns the whole database as text: pg_dump, or every row of every table for SQLite. */
  dump(): Promise<string>;
  reopen(): Promise<Store>;
  close(): Promise<void>;
  cleanup(): Promise<void>;
  /** files are the database's own files on disk (SQLite file, WAL), for the byte scan. */
  files: string[];
  name: string;
}

async function admin(q: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    await c.query(q);
  } finally {
    await c.end();
  }
}

async function sqliteDb(dir: string): Promise<Db> {
  const file = join(dir, SQLITE_FILE);
  const db: Db = {
    kind: 'sqlite',
    name: file,
    store: await openStore({ dataDir: dir }),
    async raw(q, params = []) {
      const h = new DatabaseSync(file);
      try {
        const st = h.prepare(q);
        return /^\s*select/i.test(q) ? (st.all(...(params as never[])) as Array<Record<string, unknown>>) : (st.run(...(params as never[])), []);
      } finally {
        h.close();
      }
    },
    async dump() {
      const h = new DatabaseSync(file, { readOnly: true });
      try {
        const tables = h.prepare("select name from sqlite_master where type = 'table'").all() as Array<{ name: string }>;
        return tables.map((t) => JSON.stringify(h.prepare(`select * from "${t.name}"`).all())).join('\n');
      } finally {
        h.close();
      }
    },
    async reopen() {
      db.store = await openStore({ dataDir: dir });
      return db.store;
    },
    async close() {
      await db.store.close();
    },
    async cleanup() {
      await db.store.close().catch(() => {});
    },
    files: [file, `${file}-wal`, `${file}-shm`],
  };
  return db;
}

async function postgresDb(): Promise<Db> {
  const name = `ward_test_secrets_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin(`create database "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const query = async (q: string, params: unknown[] = []) => {
    const c = new pg.Client({ connectionString: url.toString() });
    await c.connect();
    try {
      return (await c.query(q, params)).rows as Array<Record<string, unknown>>;
    } finally {
      await c.end();
    }
  };
  const db: Db = {
    kind: 'postgres',
    name,
    store: await openStore({ databaseUrl: url.toString() }),
    raw: query,
    async dump() {
      // Into memory, never a file: the dump itself would otherwise be a copy on disk.
      const r = await run(['pg_dump', '--no-owner', url.toString()], { maxBuffer: 256 * 1024 * 1024 });
      return r.stdout;
    },
    async reopen() {
      db.store = await openStore({ databaseUrl: url.toString() });
      return db.store;
    },
    async close() {
      await db.store.close();
    },
    async cleanup() {
      await db.store.close().catch(() => {});
      await admin(`drop database if exists "${name}" with (force)`);
    },
    files: [],
  };
  return db;
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`secrets vault on ${kind}`, () => {
    let dir: string;
    let db: Db;
    let api: FastifyInstance;
    let keys: KeyProvider;
    let keyFile: string;
    let logFile: string;
    const clock = new ManualClock(Date.UTC(2026, 10, 29, 8, 0, 0));
    const routes: Array<{ method: Method; url: string; auth: unknown }> = [];
    const sessions = {} as Record<Role, string>;
    const tokens: Record<string, string> = {};
    const CANARY = canaryOf('set');
    const CANARY_IMPORT = canaryOf('import');
    const CANARY_BETA = canaryOf('beta');
    const ALL_CANARIES = [CANARY, CANARY_IMPORT, CANARY_BETA];
    let totpSecret = '';

    const call = (method: Method, url: string, token?: string, payload?: object) =>
      api.inject({ method, url, ...(payload === undefined ? {} : { payload }), headers: token ? { authorization: `Bearer ${token}` } : {} });
    const body = (r: LightMyRequestResponse) => r.json() as any;
    const ok = (r: LightMyRequestResponse, what: string) => assert.ok(r.statusCode >= 200 && r.statusCode < 300, `${what}: ${r.statusCode} ${r.body}`);
    const noCanary = (text: string, what: string) => {
      for (const c of ALL_CANARIES) for (const f of forms(c)) assert.ok(!text.includes(f), `${what} carries a secret value`);
    };

    async function startApi(provider: KeyProvider): Promise<void> {
      routes.length = 0;
      api = await buildApi({
        store: db.store,
        clock,
        // The server log is a file in the data dir, written synchronously: the scan reads every line.
        logger: newLogger('info', pino.destination({ dest: logFile, sync: true, append: true })),
        version: '0.0.0-test',
        keys: provider,
        onRoute: (r: RouteOptions) => {
          for (const m of [r.method].flat() as Method[]) if ((m as string) !== 'HEAD') routes.push({ method: m, url: r.url, auth: r.config?.auth });
        },
      });
      await api.ready();
    }

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), `ward-secrets-${kind}-`));
      logFile = join(dir, 'server.log');
      keyFile = join(dir, 'master.key');
      db = kind === 'sqlite' ? await sqliteDb(dir) : await postgresDb();
      keys = await openLocalKeyProvider(keyFile);
      await startApi(keys);
      const first = await call('POST', '/v1/auth/signup', undefined, { email: 'owner@example.com', password: PASSWORD, org: 'acme' });
      ok(first, 'signup');
      sessions.owner = body(first).session.token;
      for (const role of ROLES) {
        if (role === 'owner') continue;
        const inv = await call('POST', '/v1/orgs/acme/invites', sessions.owner, { role });
        ok(inv, 'invite');
        const r = await call('POST', '/v1/auth/signup', undefined, { email: `${role}@example.com`, password: PASSWORD, invite: body(inv).invite.code });
        ok(r, `signup ${role}`);
        sessions[role] = body(r).session.token;
      }
      for (const scope of ['read', 'deploy', 'admin']) {
        const t = await call('POST', '/v1/tokens', sessions.owner, { name: `t-${scope}`, scope, org: 'acme' });
        ok(t, `token ${scope}`);
        tokens[scope] = body(t).secret;
      }
      ok(await call('POST', '/v1/apps', sessions.owner, { name: 'alpha', org: 'acme' }), 'create alpha');
      ok(await call('POST', '/v1/apps', sessions.owner, { name: 'beta', org: 'acme' }), 'create beta');
    });

    after(async () => {
      await api?.close().catch(() => {});
      await db?.cleanup().catch(() => {});
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('set, list, import, unset: write-only, versioned, audited with names and versions only', async () => {
      const set = await call('POST', '/v1/apps/alpha/secrets', sessions.developer, { values: { CANARY, DATABASE_URL: 'postgres://db/alpha' } });
      ok(set, 'set');
      noCanary(set.body, 'the set answer');
      assert.deepEqual(body(set).changed.sort(), ['CANARY', 'DATABASE_URL']);
      assert.equal(body(set).version, 1);
      assert.equal(body(set).rollout.status, 'none', 'nothing runs: nothing to roll; the next deploy pins it');

      const again = await call('POST', '/v1/apps/alpha/secrets', sessions.owner, { values: { CANARY } });
      assert.deepEqual([body(again).version, body(again).changed, body(again).unchanged], [1, [], ['CANARY']], 'the same value is no change');

      const imp = await call('POST', '/v1/apps/alpha/secrets/import', tokens.deploy!, { dotenv: `# from .env\nexport IMPORTED="${CANARY_IMPORT}"\nLOG_FORMAT=json\n`, stage: true });
      ok(imp, 'import');
      assert.deepEqual([body(imp).version, body(imp).staged, body(imp).rollout.status], [2, true, 'staged']);

      ok(await call('POST', '/v1/apps/beta/secrets', sessions.admin, { values: { CANARY: CANARY_BETA } }), 'set beta');

      const list = await call('GET', '/v1/apps/alpha/secrets', sessions.viewer);
      ok(list, 'list as viewer');
      noCanary(list.body, 'the list');
      const listed = body(list);
      assert.equal(listed.version, 2);
      assert.deepEqual(listed.secrets.map((s: any) => [s.name, s.version]), [['CANARY', 1], ['DATABASE_URL', 1], ['IMPORTED', 2], ['LOG_FORMAT', 2]]);
      for (const s of listed.secrets) assert.match(s.digest, /^[0-9a-f]{16}$/);
      assert.deepEqual(Object.keys(listed.secrets[0]).sort(), ['created_at', 'digest', 'name', 'version'], 'nothing but these fields');
      const beta = body(await call('GET', '/v1/apps/beta/secrets', sessions.owner));
      assert.notEqual(beta.secrets[0].digest, listed.secrets[0].digest, 'digests are keyed per app');

      const unset = await call('POST', '/v1/apps/alpha/secrets/unset', sessions.developer, { names: ['LOG_FORMAT'] });
      ok(unset, 'unset');
      assert.equal(body(unset).version, 3);
      const missing = await call('POST', '/v1/apps/alpha/secrets/unset', sessions.developer, { names: ['NOPE', 'DATABASE_URL'] });
      assert.equal(missing.statusCode, 404, missing.body);
      assert.equal(body(await call('GET', '/v1/apps/alpha/secrets', sessions.owner)).version, 3, 'a failed unset changes nothing');

      // Viewers and auditors may not set; read tokens neither.
      for (const who of [sessions.viewer, sessions.auditor, tokens.read!]) {
        const r = await call('POST', '/v1/apps/alpha/secrets', who, { values: { CANARY: 'x' } });
        assert.equal(r.statusCode, 403, r.body);
      }

      // Bad input: clear errors that never quote a value, and nothing changes.
      const bad: Array<[object, string, number]> = [
        [{ values: { 'bad name': 'x' } }, 'invalid_secret', 400],
        [{ values: { [`${CANARY}-as-a-name`]: 'x' } }, 'invalid_secret', 400],
        [{ values: { WARD_APP_NAME: 'x' } }, 'invalid_secret', 400],
        [{ values: { OK: `${CANARY}\0` } }, 'invalid_secret', 400],
        [{ values: { OK: CANARY.repeat(3000) } }, 'invalid_secret', 400],
        [{ values: { OK: 42 } }, 'invalid_secret', 400],
        [{ values: {} }, 'bad_request', 400],
        [{ values: { OK: CANARY }, extra: CANARY }, 'bad_request', 400],
      ];
      for (const [payload, code, status] of bad) {
        const r = await call('POST', '/v1/apps/alpha/secrets', sessions.owner, payload);
        assert.equal(r.statusCode, status, r.body);
        assert.equal(body(r).error.code, code, r.body);
        noCanary(r.body, `the error for ${code}`);
      }
      const badEnv = await call('POST', '/v1/apps/alpha/secrets/import', sessions.owner, { dotenv: `A=1\n${CANARY}\n` });
      assert.equal(body(badEnv).error.code, 'invalid_secret');
      assert.match(body(badEnv).error.message, /line 2/);
      noCanary(badEnv.body, 'the .env error');
      assert.equal(body(await call('GET', '/v1/apps/alpha/secrets', sessions.owner)).version, 3);

      const audit = (await db.store.audit.list({ chain: (await db.store.apps.findByName('alpha'))!.orgId })).filter((e) => e.action.startsWith('secret.'));
      assert.deepEqual(audit.map((e) => [e.action, e.details.version, e.details.names]), [
        ['secret.set', 1, ['CANARY', 'DATABASE_URL']],
        ['secret.import', 2, ['IMPORTED', 'LOG_FORMAT']],
        ['secret.set', 1, ['CANARY']],
        ['secret.unset', 3, ['LOG_FORMAT']],
      ]);
      noCanary(JSON.stringify(audit), 'the audit log');
    });

    test('every role and every token scope asks every route: no answer carries a value', async () => {
      const callers: Array<[string, string | undefined]> = [['anonymous', undefined], ...ROLES.map((r) => [r, sessions[r]] as [string, string]), ...Object.entries(tokens)];
      let asked = 0;
      for (const r of routes) {
        // Logging out would end the caller's session for the routes after it; it answers nothing secret.
        if (r.url === '/v1/auth/logout') continue;
        for (const [who, token] of callers) {
          const url = r.url.replace(/:(\w+)/g, (_m, name: string) => {
            if (name === 'org') return 'acme';
            // Destroying alpha would end the test; a missing app exercises the same code paths.
            if (name === 'app') return r.method === 'DELETE' ? 'no-such-app' : 'alpha';
            return 'x';
          });
          const payloads: Array<object | undefined> = r.method === 'GET' || r.method === 'DELETE' ? [undefined] : [{}];
          if (r.url === '/v1/apps/:app/secrets' && r.method === 'POST') payloads.push({ values: { CANARY } });
          if (r.url === '/v1/apps/:app/secrets/import') payloads.push({ dotenv: `CANARY=${CANARY}` });
          if (r.url === '/v1/agent/secrets') payloads.push({ token: 'ward_dlv_' + 'A'.repeat(43) });
          for (const payload of payloads) {
            const res = await call(r.method, url, token, payload);
            noCanary(res.body + JSON.stringify(res.headers), `${r.method} ${r.url} as ${who}`);
            asked += 1;
          }
        }
      }
      assert.ok(asked > routes.length * 8, `asked ${asked} times`);
    });

    let alphaId = '';
    let betaId = '';
    let hostA: { id: string; credential: string };
    let hostB: { id: string; credential: string };
    let insA = '';
    let insB = '';
    const deliveries = () => api.deliveries;
    const mint = async (instanceId: string, hostId: string) => (await deliveries().mint(instanceId, hostId)).token;
    const deliver = (credential: string | undefined, token: string) => call('POST', '/v1/agent/secrets', credential, { token });

    test('delivery: only the host an instance is placed on gets exactly its values, once', async () => {
      alphaId = (await db.store.apps.findByName('alpha'))!.id;
      betaId = (await db.store.apps.findByName('beta'))!.id;
      const a = aHost({ name: 'host-a', lastHeartbeat: toTimestamp(clock.now()) });
      const b = aHost({ name: 'host-b', lastHeartbeat: toTimestamp(clock.now()) });
      await db.store.hosts.register(a);
      await db.store.hosts.register(b);
      hostA = { id: a.id, credential: await deliveries().issueHostCredential(a.id) };
      hostB = { id: b.id, credential: await deliveries().issueHostCredential(b.id) };
      const relA = aRelease(alphaId, 1, { secretsVersion: 3, status: 'succeeded' });
      const relB = aRelease(betaId, 1, { secretsVersion: 1, status: 'succeeded' });
      await db.store.releases.create(relA);
      await db.store.releases.create(relB);
      insA = newId('instance');
      insB = newId('instance');
      await db.store.instances.create(anInstance(alphaId, relA.id, a.id, { id: insA }));
      await db.store.instances.create(anInstance(betaId, relB.id, b.id, { id: insB }));

      // The right host, with its own credential and a token for its own placement: exactly the values.
      const t1 = await mint(insA, hostA.id);
      const got = await deliver(hostA.credential, t1);
      ok(got, 'delivery to host A');
      assert.deepEqual(body(got), {
        instance_id: insA,
        app_id: alphaId,
        version: 3,
        env: { CANARY, DATABASE_URL: 'postgres://db/alpha', IMPORTED: CANARY_IMPORT },
      });
      const replay = await deliver(hostA.credential, t1);
      assert.deepEqual([replay.statusCode, body(replay).error.code], [403, 'delivery_refused'], 'a token works once');

      // Host B runs beta but no instance of alpha: nothing of alpha, with its own credential…
      await assert.rejects(mint(insA, hostB.id), /not placed on host/, 'no token for a placement elsewhere');
      const own = await deliver(hostB.credential, await mint(insB, hostB.id));
      ok(own, 'host B gets its own instance\'s values');
      assert.deepEqual(body(own).env, { CANARY: CANARY_BETA });
      // …or with a token stolen from host A, which it burns: host A's refusal then reveals the theft.
      const t2 = await mint(insA, hostA.id);
      const stolen = await deliver(hostB.credential, t2);
      assert.deepEqual([stolen.statusCode, body(stolen).error.code], [403, 'delivery_refused']);
      noCanary(stolen.body, 'the refusal');
      const after = await deliver(hostA.credential, t2);
      assert.equal(after.statusCode, 403, 'the stolen token is spent');
      // Not a host at all: a person's session, a forged host credential, no credential.
      const t3 = await mint(insA, hostA.id);
      for (const cred of [sessions.owner, tokens.admin, 'ward_hst_' + 'A'.repeat(43), undefined]) {
        const r = await deliver(cred, t3);
        assert.equal(r.statusCode, 401, r.body);
      }
      // Expired tokens and instances no longer meant to run get nothing.
      clock.advance(11 * 60_000);
      const expired = await deliver(hostA.credential, t3);
      assert.deepEqual([expired.statusCode, body(expired).error.code], [403, 'delivery_refused']);
      const t4 = await mint(insA, hostA.id);
      await db.store.instances.setDesired(insA, 'stopped', toTimestamp(clock.now()));
      assert.equal((await deliver(hostA.credential, t4)).statusCode, 403, 'a stopped instance gets nothing');
      await assert.rejects(mint(insA, hostA.id), /not placed/);
      await db.store.instances.setDesired(insA, 'running', toTimestamp(clock.now()));
      // A host marked down is no longer a host.
      await db.store.hosts.setStatus(hostB.id, 'down');
      assert.equal((await deliver(hostB.credential, await mint(insB, hostB.id))).statusCode, 401);
      await db.store.hosts.setStatus(hostB.id, 'ready');

      const entries = (await db.store.audit.list({ chain: (await db.store.apps.get(alphaId))!.orgId })).filter((e) => e.action === 'secret.deliver');
      assert.deepEqual(entries.map((e) => e.outcome), ['success', 'denied', 'success', 'denied', 'denied', 'denied', 'denied']);
      assert.deepEqual(entries[0]!.details.names, ['CANARY', 'DATABASE_URL', 'IMPORTED']);
      assert.equal(entries[3]!.details.reason, 'wrong_host');
      noCanary(JSON.stringify(entries), 'delivery audit entries');
    });

    test('a ciphertext or data key swapped between apps fails to decrypt, loudly', async () => {
      const swapSealed = async () => {
        const a = await db.raw(`select sealed from secret_values where app_id = ${kind === 'postgres' ? '$1' : '?'} and name = 'CANARY'`, [alphaId]);
        const b = await db.raw(`select sealed from secret_values where app_id = ${kind === 'postgres' ? '$1' : '?'} and name = 'CANARY'`, [betaId]);
        const p = kind === 'postgres' ? ['$1', '$2'] : ['?', '?'];
        await db.raw(`update secret_values set sealed = ${p[0]} where app_id = ${p[1]} and name = 'CANARY'`, [b[0]!.sealed, alphaId]);
        await db.raw(`update secret_values set sealed = ${p[0]} where app_id = ${p[1]} and name = 'CANARY'`, [a[0]!.sealed, betaId]);
      };
      await swapSealed();
      const logBefore = (await readFile(logFile, 'utf8')).length;
      for (const [ins, host] of [[insA, hostA], [insB, hostB]] as const) {
        const r = await deliver(host.credential, await mint(ins, host.id));
        assert.equal(r.statusCode, 500, r.body);
        assert.equal(body(r).error.code, 'secrets_unreadable');
        assert.match(body(r).error.message, /CANARY/);
        noCanary(r.body, 'the integrity error');
      }
      const log = (await readFile(logFile, 'utf8')).slice(logBefore);
      assert.match(log, /SECRET INTEGRITY FAILURE/);
      const failures = (await db.store.audit.list({ chain: (await db.store.apps.get(alphaId))!.orgId })).filter((e) => e.action === 'secret.deliver' && e.outcome === 'failure');
      assert.equal(failures.length, 2);
      await swapSealed();

      // A value moved to another name of the same app, or to another version, fails too.
      const p = kind === 'postgres' ? ['$1', '$2'] : ['?', '?'];
      const [canaryRow] = await db.raw(`select sealed from secret_values where app_id = ${p[0]} and name = 'CANARY'`, [alphaId]);
      const [dbRow] = await db.raw(`select sealed from secret_values where app_id = ${p[0]} and name = 'DATABASE_URL'`, [alphaId]);
      await db.raw(`update secret_values set sealed = ${p[0]} where app_id = ${p[1]} and name = 'DATABASE_URL'`, [canaryRow!.sealed, alphaId]);
      assert.equal((await deliver(hostA.credential, await mint(insA, hostA.id))).statusCode, 500, 'moved to another name');
      await db.raw(`update secret_values set sealed = ${p[0]} where app_id = ${p[1]} and name = 'DATABASE_URL'`, [dbRow!.sealed, alphaId]);

      // The apps' wrapped data keys swapped: neither unwraps under the other's binding.
      const keysOf = async (id: string) => (await db.raw(`select wrapped_key from data_keys where owner = ${p[0]}`, [id]))[0]!.wrapped_key;
      const ka = await keysOf(alphaId);
      const kb = await keysOf(betaId);
      await db.raw(`update data_keys set wrapped_key = ${p[0]} where owner = ${p[1]}`, [kb, alphaId]);
      await db.raw(`update data_keys set wrapped_key = ${p[0]} where owner = ${p[1]}`, [ka, betaId]);
      const r = await deliver(hostA.credential, await mint(insA, hostA.id));
      assert.deepEqual([r.statusCode, body(r).error.code], [500, 'secrets_unreadable']);
      assert.match(body(r).error.message, /does not unwrap/);
      await db.raw(`update data_keys set wrapped_key = ${p[0]} where owner = ${p[1]}`, [ka, alphaId]);
      await db.raw(`update data_keys set wrapped_key = ${p[0]} where owner = ${p[1]}`, [kb, betaId]);
      ok(await deliver(hostA.credential, await mint(insA, hostA.id)), 'restored, it reads again');
    });

    test('rotating the master key re-wraps data keys, touches no value, and everything still reads', async () => {
      // An MFA factor first: its TOTP secret is sealed under the server's root data key.
      const e = await call('POST', '/v1/auth/mfa/enable', sessions.owner);
      assert.equal(e.statusCode, 201, e.body);
      totpSecret = body(e).secret;
      ok(await call('POST', '/v1/auth/mfa/confirm', sessions.owner, { code: totpCode(totpSecret, clock.now().getTime()) }), 'mfa confirm');

      const before = await db.raw('select app_id, name, version, sealed from secret_values order by app_id, name, version');
      const oldBytes = await readFile(keyFile);
      await api.close();
      const r = await rotateMasterKey(db.store, keyFile, { now: () => toTimestamp(clock.now()) });
      assert.equal(r.rewrapped, 3, 'the server root key and two app keys');
      assert.notEqual(r.fromKeyId, r.toKeyId);
      assert.deepEqual(await readFile(r.retiredFile), oldBytes, 'the old key is kept for old backups');
      assert.deepEqual(await db.raw('select app_id, name, version, sealed from secret_values order by app_id, name, version'), before, 'no value was touched');
      assert.ok((await db.store.dataKeys.list()).every((k) => k.kekId === r.toKeyId));

      // The old key alone no longer opens this database: the server refuses to start, clearly.
      await assert.rejects(
        buildApi({ store: db.store, clock, logger: newLogger('silent'), version: '0', keys: keyProviderFromBytes(oldBytes) }),
        (err: any) => err.code === 'invalid_config' && /master key/.test(err.message),
      );
      keys = await openLocalKeyProvider(keyFile);
      assert.equal(keys.keyId, r.toKeyId);
      await startApi(keys);
      const got = await deliver(hostA.credential, await mint(insA, hostA.id));
      ok(got, 'delivery after rotation');
      assert.equal(body(got).env.CANARY, CANARY);
      clock.advance(60_000);
      const login = await call('POST', '/v1/auth/login', undefined, { email: 'owner@example.com', password: PASSWORD, otp: totpCode(totpSecret, clock.now().getTime()) });
      ok(login, 'an MFA login after rotation (the TOTP secret still opens)');
      // A second run has nothing left to do.
      await api.close();
      const again = await rotateMasterKey(db.store, keyFile, { now: () => toTimestamp(clock.now()) });
      assert.equal(again.rewrapped, 3);
      keys = await openLocalKeyProvider(keyFile);
      await startApi(keys);
      ok(await deliver(hostA.credential, await mint(insA, hostA.id)), 'and after a second rotation');
    });

    test('the canary is on no disk: data dir, database files and dump, server log, /var, /tmp, /etc, /run, the checkout', async () => {
      // Sanity first: the secret is really stored, as ciphertext, and really deliverable.
      const dump = await db.dump();
      assert.match(dump, /s1\.[A-Za-z0-9_-]{16}\./, 'the dump holds sealed values');
      noCanary(dump, `the ${kind} dump`);
      const log = await readFile(logFile, 'utf8');
      assert.match(log, /secrets set/);
      assert.match(log, /secrets delivered/);

      await api.close();
      // SQLite: scan with the WAL still there, then again after the close has checkpointed it.
      const controlDir = canaryOf('controldir');
      const controlPg = canaryOf('controlpg');
      await writeFile(join(dir, 'control.txt'), controlDir);
      if (kind === 'postgres') {
        await db.raw('create table scan_control (v text)');
        await db.raw('insert into scan_control values ($1)', [controlPg]);
        await admin('checkpoint');
      }
      const needles = [...ALL_CANARIES, controlDir, controlPg].map((c) => Buffer.from(c));
      const beforeClose = await scanFiles([dir, ...db.files], needles);
      await db.close();
      const scan = await scanFiles([dir, ...SYSTEM_SCAN_ROOTS, CHECKOUT], needles, { skip: [...SYSTEM_SCAN_SKIP, join(CHECKOUT, 'node_modules'), join(CHECKOUT, '.git')] });
      for (const [i, c] of ALL_CANARIES.entries()) {
        assert.deepEqual(beforeClose.hits[i], [], `${c.slice(0, 16)}… found with the database open`);
        assert.deepEqual(scan.hits[i], [], `${c.slice(0, 16)}… found on disk`);
      }
      // The scan works: it finds what was written in the clear, in the data dir and in PostgreSQL's files.
      assert.deepEqual(scan.hits[3], [join(dir, 'control.txt')]);
      if (kind === 'postgres') assert.ok(scan.hits[4]!.some((f) => f.startsWith('/var/lib/postgresql/')), `PostgreSQL's files were scanned: ${scan.hits[4]}`);
      assert.ok(scan.files > 1000 && scan.bytes > 50 * 1024 * 1024, `scanned ${scan.files} files, ${scan.bytes} bytes`);
      const dataFiles = await readdir(dir);
      if (kind === 'sqlite') assert.ok(dataFiles.includes(SQLITE_FILE));
      await db.reopen();
    });
  });
}
