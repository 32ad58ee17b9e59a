// The audit log end to end, on SQLite and on PostgreSQL: a real `ward server` (startServer) makes entries
// through its HTTP API; then raw SQL edits, deletes, reorders and forges rows and checkpoints the way an
// attacker with database access would, and verification — by the API, the CLI and the standalone script on
// an export — must fail naming the right entry, and pass again once the log is put back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { resolveServerConfig } from '../../src/config/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { SQLITE_FILE } from '../../src/store/index.ts';
import { auditKeyPath, generateAuditKey, publicKeyPem, sealEntry, type AuditRecord } from '../../src/audit/index.ts';
import { runCli } from '../../src/cli/testing.ts';

const ADMIN_URL = process.env.WARD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VERIFY_SCRIPT = join(ROOT, 'scripts', 'audit-verify.ts');
const PASSWORD = 'correct horse battery staple';
const WRONG_PASSWORD = 'wrong-password-7c1f0b9e';

/** Raw is SQL straight at the database, around the store: the attacker's view. `?` placeholders on both. */
interface Raw {
  query(sql: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
  failAuditInserts(on: boolean): Promise<void>;
  close(): Promise<void>;
}

function sqliteRaw(file: string): Raw {
  const db = new DatabaseSync(file, { timeout: 5000 });
  return {
    async query(sql, params = []) {
      const stmt = db.prepare(sql);
      if (/^\s*select/i.test(sql)) return stmt.all(...(params as never[])) as Array<Record<string, unknown>>;
      stmt.run(...(params as never[]));
      return [];
    },
    async failAuditInserts(on) {
      db.exec(on
        ? "create trigger audit_fail before insert on audit_entries begin select raise(abort, 'audit storage unavailable'); end"
        : 'drop trigger audit_fail');
    },
    async close() {
      db.close();
    },
  };
}

async function pgRaw(url: string): Promise<Raw> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return {
    async query(sql, params = []) {
      let i = 0;
      return (await c.query(sql.replace(/\?/g, () => `$${++i}`), params)).rows as Array<Record<string, unknown>>;
    },
    async failAuditInserts(on) {
      await c.query(on
        ? `create function audit_fail() returns trigger language plpgsql as $$ begin raise exception 'audit storage unavailable'; end $$;
           create trigger audit_fail before insert on audit_entries for each row execute function audit_fail()`
        : 'drop trigger audit_fail on audit_entries; drop function audit_fail()');
    },
    async close() {
      await c.end();
    },
  };
}

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function runScript(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [VERIFY_SCRIPT, ...args], { cwd: tmpdir(), timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stdout, stderr });
    });
  });
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`audit log on ${kind}`, () => {
    let dir = '';
    let dbName = '';
    let server: RunningServer | undefined;
    let raw: Raw | undefined;
    const secrets: string[] = [PASSWORD, WRONG_PASSWORD];
    const tokens: Record<string, string> = {};
    let orgId = '';

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), `ward-audit-${kind}-`));
      let databaseUrl: string | undefined;
      if (kind === 'postgres') {
        dbName = `ward_test_audit_${process.pid}_${randomBytes(4).toString('hex')}`;
        await admin(`create database "${dbName}"`);
        const u = new URL(ADMIN_URL);
        u.pathname = `/${dbName}`;
        databaseUrl = u.toString();
      }
      const config = resolveServerConfig({
        flags: { 'data-dir': dir, ...(databaseUrl ? { 'database-url': databaseUrl } : {}), 'api-listen': '127.0.0.1:0', roles: 'control', 'log-level': 'silent' },
        env: {},
      });
      server = await startServer(config);
      raw = kind === 'postgres' ? await pgRaw(databaseUrl!) : sqliteRaw(join(dir, SQLITE_FILE));
    });

    after(async () => {
      // Each step runs whatever the one before it did: the database and the directory must go.
      await server?.close().catch(() => {});
      await raw?.close().catch(() => {});
      if (dbName) await admin(`drop database if exists "${dbName}" with (force)`).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    });

    async function call(method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      if (opts.body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(server!.apiUrl + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
      const text = await res.text();
      let json: any;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, text, json, headers: res.headers };
    }

    async function join_(role: string, email: string, org = 'acme', as = tokens.owner!): Promise<string> {
      const inv = await call('POST', `/v1/orgs/${org}/invites`, { token: as, body: { role } });
      assert.equal(inv.status, 201, inv.text);
      secrets.push(inv.json.invite.code);
      const r = await call('POST', '/v1/auth/signup', { body: { email, password: PASSWORD, invite: inv.json.invite.code } });
      assert.equal(r.status, 201, r.text);
      secrets.push(r.json.session.token);
      return r.json.session.token;
    }

    const entries = (chain = orgId) => server!.store.audit.entries(chain);
    const verify = async (token = tokens.auditor) => (await call('POST', `/v1/audit/verify?org=acme`, { token })).json;

    test('changes and refusals are recorded through the API: who, what, target, when, from where, which request', async () => {
      const s = await call('POST', '/v1/auth/signup', { body: { email: 'owner@example.com', password: PASSWORD, org: 'acme' } });
      assert.equal(s.status, 201, s.text);
      tokens.owner = s.json.session.token;
      secrets.push(tokens.owner!);
      orgId = s.json.org.id;
      tokens.auditor = await join_('auditor', 'auditor@example.com');
      tokens.developer = await join_('developer', 'dev@example.com');
      tokens.viewer = await join_('viewer', 'viewer@example.com');
      const other = await call('POST', '/v1/orgs', { token: tokens.owner, body: { name: 'elsewhere' } });
      assert.equal(other.status, 201, other.text);
      tokens.outsider = await join_('developer', 'outsider@example.com', 'elsewhere');
      assert.equal((await call('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: WRONG_PASSWORD } })).status, 401);

      const web = await call('POST', '/v1/apps', { token: tokens.owner, body: { name: 'web', org: 'acme' }, headers: { 'x-request-id': 'test-create-web' } });
      assert.equal(web.status, 201, web.text);
      const doomed = await call('POST', '/v1/apps', { token: tokens.developer, body: { name: 'doomed', org: 'acme' } });
      assert.equal(doomed.status, 201, doomed.text);
      assert.equal((await call('DELETE', '/v1/apps/doomed', { token: tokens.owner })).status, 200);
      assert.equal((await call('DELETE', '/v1/apps/web', { token: tokens.viewer })).status, 403);
      assert.equal((await call('GET', '/v1/apps/web', { token: tokens.outsider })).status, 404, 'an outsider probing acme');
      assert.equal((await call('GET', '/v1/apps/no-such-app', { token: tokens.outsider })).status, 404);

      const list = await call('GET', '/v1/audit?org=acme&limit=1000', { token: tokens.auditor });
      assert.equal(list.status, 200, list.text);
      const got = list.json.entries as AuditRecord[];
      const find = (action: string, f: (e: AuditRecord) => boolean = () => true) => got.find((e) => e.action === action && f(e));

      const created = find('app.create', (e) => e.details.name === 'web')!;
      assert.ok(created, JSON.stringify(got.map((e) => e.action)));
      assert.deepEqual(
        { chain: created.chain, org_id: created.org_id, actor_type: created.actor_type, actor_label: created.actor_label, target: created.target, outcome: created.outcome, request_id: created.request_id, source_ip: created.source_ip },
        { chain: orgId, org_id: orgId, actor_type: 'user', actor_label: 'owner@example.com', target: web.json.app.id, outcome: 'success', request_id: 'test-create-web', source_ip: '127.0.0.1' },
      );
      assert.match(created.actor_id!, /^usr_/);
      assert.ok(Math.abs(Date.parse(created.at) - Date.now()) < 60_000);
      assert.equal(find('app.create', (e) => e.details.name === 'doomed')!.actor_label, 'dev@example.com');
      assert.equal(find('app.destroy')!.target, doomed.json.app.id);
      const denied = got.filter((e) => e.action === 'access.denied');
      assert.deepEqual(
        denied.map((e) => [e.actor_label, e.outcome, e.target, e.details.requested, e.details.reason]),
        [
          ['viewer@example.com', 'denied', web.json.app.id, 'app:destroy', 'forbidden'],
          ['outsider@example.com', 'denied', web.json.app.id, 'app:read', 'not_found'],
        ],
      );
      const server_ = await entries('_server');
      assert.ok(server_.some((e) => e.action === 'access.denied' && e.actor_label === 'outsider@example.com' && e.details.ref === 'no-such-app' && e.target === null));
      assert.ok((await entries(other.json.org.id)).some((e) => e.action === 'org.create' && e.details.name === 'elsewhere'));
      // Entries are in seq order, one chain, no gaps.
      assert.deepEqual(got.map((e) => e.seq), got.map((_, i) => i + 1));

      // Who may read it: owner and auditor yes; developer no; no credential 401; an outsider sees no such org.
      assert.equal((await call('GET', '/v1/audit?org=acme', { token: tokens.owner })).status, 200);
      assert.equal((await call('GET', '/v1/audit?org=acme', { token: tokens.developer })).status, 403);
      assert.equal((await call('GET', '/v1/audit?org=acme', { token: tokens.viewer })).status, 403);
      assert.equal((await call('GET', '/v1/audit?org=acme')).status, 401);
      assert.equal((await call('GET', '/v1/audit?org=acme', { token: tokens.outsider })).status, 404);
      assert.equal((await call('POST', '/v1/audit/verify?org=acme', { token: tokens.developer })).status, 403);
      assert.equal((await call('GET', '/v1/audit/export?org=acme', { token: tokens.viewer })).status, 403);

      const v = await verify();
      assert.equal(v.ok, true, JSON.stringify(v.problems));
      assert.equal(v.org.name, 'acme');
      assert.equal(v.chains, 1);
      assert.ok(v.key_ids.includes(server!.audit.keyId));

      const doc = (await call('GET', '/v1/openapi.json')).json;
      for (const path of ['/v1/audit', '/v1/audit/verify', '/v1/audit/export']) assert.ok(doc.paths[path], `the API document lists ${path}`);
      assert.ok(doc.paths['/v1/audit/export'].get.responses['200'].content['application/x-ndjson']);
    });

    test('paging: limit and after walk the chain; since filters; a bad since is a 400', async () => {
      const p1 = (await call('GET', '/v1/audit?org=acme&limit=2', { token: tokens.auditor })).json;
      assert.deepEqual(p1.entries.map((e: AuditRecord) => e.seq), [1, 2]);
      assert.equal(p1.next_after, 2);
      const p2 = (await call('GET', `/v1/audit?org=acme&limit=2&after=${p1.next_after}`, { token: tokens.auditor })).json;
      assert.deepEqual(p2.entries.map((e: AuditRecord) => e.seq), [3, 4]);
      assert.equal((await call('GET', '/v1/audit?org=acme&since=2999-01-01T00:00:00Z', { token: tokens.auditor })).json.entries.length, 0);
      assert.ok((await call('GET', '/v1/audit?org=acme&since=1h', { token: tokens.auditor })).json.entries.length > 0);
      const bad = await call('GET', '/v1/audit?org=acme&since=yesterday', { token: tokens.auditor });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.code, 'bad_request');
      assert.equal((await call('GET', '/v1/audit?org=acme&limit=0', { token: tokens.auditor })).status, 400);
    });

    test('20 concurrent changes each take the next seq, and the chain verifies', async () => {
      const before = (await entries()).length;
      const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => call('POST', '/v1/apps', { token: tokens.owner, body: { name: `burst-${i}`, org: 'acme' } })));
      for (const r of rs) assert.equal(r.status, 201, r.text);
      const all = await entries();
      assert.deepEqual(all.map((e) => e.seq), all.map((_, i) => i + 1));
      assert.equal(all.filter((e) => e.action === 'app.create' && String(e.details.name).startsWith('burst-')).length, 20);
      assert.equal(all.length, before + 20);
      assert.equal((await verify()).ok, true);
    });

    describe('tampering with the database is detected and the entry named', () => {
      let log: AuditRecord[] = [];
      const t = () => log;
      before(async () => {
        // Sign the head, as the minute timer would, so the newest entries are covered too.
        await server!.audit.checkpoint();
        log = await entries();
        assert.ok(log.length >= 10);
        assert.equal((await verify()).ok, true);
      });
      /** expectCaught applies a change, checks verify names `seq` (and `id`), undoes it, checks the log passes. */
      async function expectCaught(change: () => Promise<unknown>, undo: () => Promise<unknown>, seq: number, id: string | undefined, reason: RegExp) {
        await change();
        try {
          const v = await verify();
          assert.equal(v.ok, false, 'tampering must be detected');
          const first = v.problems[0];
          assert.equal(first.chain, orgId);
          assert.equal(first.seq, seq, JSON.stringify(v.problems));
          assert.equal(first.id, id);
          assert.match(first.reason, reason);
          // The CLI says the same and exits 1.
          const cli = await runCli(['audit', 'verify', '--org', 'acme'], { env: { WARD_API_URL: server!.apiUrl, WARD_API_TOKEN: tokens.auditor } });
          assert.equal(cli.code, 1, cli.stderr);
          assert.match(cli.stdout, new RegExp(`FAILED: chain ${orgId}, seq ${seq}${id ? `, entry ${id}` : ''}`));
        } finally {
          await undo();
        }
        const v = await verify();
        assert.equal(v.ok, true, `restored log passes: ${JSON.stringify(v.problems)}`);
      }
      const put = (e: AuditRecord) => server!.store.audit.append(e);

      test('an edited field', async () => {
        const e = t()[3]!;
        await expectCaught(
          () => raw!.query('update audit_entries set actor_label = ? where chain = ? and seq = ?', ['mallory@example.com', orgId, e.seq]),
          () => raw!.query('update audit_entries set actor_label = ? where chain = ? and seq = ?', [e.actor_label, orgId, e.seq]),
          e.seq, e.id, /content does not match its hash/,
        );
      });

      test('edited details', async () => {
        const e = t().find((x) => x.action === 'app.create')!;
        await expectCaught(
          () => raw!.query('update audit_entries set details = ? where chain = ? and seq = ?', [JSON.stringify({ name: 'other' }), orgId, e.seq]),
          () => raw!.query('update audit_entries set details = ? where chain = ? and seq = ?', [JSON.stringify(e.details), orgId, e.seq]),
          e.seq, e.id, /content does not match its hash/,
        );
      });

      test('a deleted middle row', async () => {
        const e = t()[4]!;
        await expectCaught(() => raw!.query('delete from audit_entries where chain = ? and seq = ?', [orgId, e.seq]), () => put(e), e.seq, undefined, /entry 5 is missing/);
      });

      test('the newest rows deleted (caught by the latest signed checkpoint)', async () => {
        const head = t().at(-1)!;
        const gone = t().slice(-3);
        await expectCaught(
          () => raw!.query('delete from audit_entries where chain = ? and seq > ?', [orgId, head.seq - 3]),
          async () => {
            for (const e of gone) await put(e);
          },
          head.seq, undefined, /newest entries were deleted/,
        );
      });

      test('two rows swapped', async () => {
        const [a, b] = [t()[5]!, t()[6]!];
        const swap = async () => {
          await raw!.query('update audit_entries set seq = ? where chain = ? and seq = ?', [-1, orgId, a.seq]);
          await raw!.query('update audit_entries set seq = ? where chain = ? and seq = ?', [a.seq, orgId, b.seq]);
          await raw!.query('update audit_entries set seq = ? where chain = ? and seq = ?', [b.seq, orgId, -1]);
        };
        // After the swap, seq a holds b's row: that is the first entry out of place.
        await expectCaught(swap, swap, a.seq, b.id, /prev_hash does not match/);
      });

      test('a forged row with a made-up hash, appended', async () => {
        const head = t().at(-1)!;
        const forged = { ...head, seq: head.seq + 1, id: 'aud_forged', action: 'app.create', details: { name: 'backdoor' }, prev_hash: head.hash, hash: 'f'.repeat(64) };
        await expectCaught(() => put(forged), () => raw!.query('delete from audit_entries where id = ?', ['aud_forged']), forged.seq, 'aud_forged', /content does not match its hash/);
      });

      test('a forged row sealed properly and slipped into the middle', async () => {
        const k = 3;
        const prev = t()[k - 2]!;
        const displaced = t()[k - 1]!;
        const forged = sealEntry({ ...displaced, id: 'aud_slipped', action: 'secret.read', details: {} }, prev);
        const shift = async (by: 1 | -1) => {
          const rows = t().filter((e) => e.seq >= k).map((e) => e.seq);
          // One row at a time, from the end that has room, so no two rows ever share a (chain, seq).
          for (const seq of by === 1 ? rows.reverse() : rows) {
            const [from, to] = by === 1 ? [seq, seq + 1] : [seq + 1, seq];
            await raw!.query('update audit_entries set seq = ? where chain = ? and seq = ?', [to, orgId, from]);
          }
        };
        await expectCaught(
          async () => {
            await shift(1);
            await put(forged);
          },
          async () => {
            await raw!.query('delete from audit_entries where id = ?', ['aud_slipped']);
            await shift(-1);
          },
          k + 1, displaced.id, /prev_hash does not match/,
        );
      });

      test('a checkpoint signature replaced', async () => {
        const [cp] = (await server!.store.audit.checkpoints(orgId)).slice(-1);
        assert.ok(cp);
        const forger = generateAuditKey();
        const { sign } = await import('node:crypto');
        const sig = sign(null, Buffer.from('anything'), forger.privateKey).toString('base64');
        await expectCaught(
          () => raw!.query('update audit_checkpoints set signature = ? where chain = ? and seq = ?', [sig, orgId, cp.seq]),
          () => raw!.query('update audit_checkpoints set signature = ? where chain = ? and seq = ?', [cp.signature, orgId, cp.seq]),
          cp.seq, undefined, /invalid signature/,
        );
      });

      test('a whole log rewritten and re-signed with a key the attacker added is refused offline with the pinned key', async () => {
        // Server-side verification trusts audit_keys; an attacker who can write the database can add a key.
        // The defence is the auditor's pinned public key: the export then fails offline.
        const forger = generateAuditKey();
        const exp = join(dir, 'pinned.jsonl');
        const text = (await call('GET', '/v1/audit/export?org=acme', { token: tokens.auditor })).text;
        const lines = text.trimEnd().split('\n');
        const header = JSON.parse(lines[0]!);
        header.public_keys = [{ key_id: forger.keyId, pem: publicKeyPem(forger.publicKey) }];
        await writeFile(exp, [JSON.stringify(header), ...lines.slice(1)].join('\n') + '\n');
        const serverKey = join(dir, 'server.pub.pem');
        await writeFile(serverKey, (await server!.store.audit.keys()).find((k) => k.keyId === server!.audit.keyId)!.publicKeyPem);
        const pinned = await runScript([exp, '--public-key', serverKey]);
        assert.equal(pinned.code, 0, `the file's own checkpoints are by the server key: ${pinned.stderr}`);
        const unpinned = await runScript([exp]);
        assert.equal(unpinned.code, 1, 'with only the forged key in the header, the real checkpoints do not verify');
        assert.match(unpinned.stderr, /not among the trusted public keys/);
      });
    });

    test('the entry is in the change\'s transaction: when it cannot be written, the change does not happen', async () => {
      await raw!.failAuditInserts(true);
      try {
        const r = await call('POST', '/v1/apps', { token: tokens.owner, body: { name: 'unaudited', org: 'acme' } });
        assert.equal(r.status, 500, r.text);
        assert.equal(await server!.store.apps.findByName('unaudited'), undefined, 'the app was not created');
        const d = await call('DELETE', '/v1/apps/web', { token: tokens.owner });
        assert.equal(d.status, 500, d.text);
        assert.ok(await server!.store.apps.findByName('web'), 'the app was not destroyed');
        const o = await call('POST', '/v1/orgs', { token: tokens.owner, body: { name: 'unaudited-org' } });
        assert.equal(o.status, 500, o.text);
        assert.equal(await server!.store.orgs.findByName('unaudited-org'), undefined, 'the org was not created');
      } finally {
        await raw!.failAuditInserts(false);
      }
      const r = await call('POST', '/v1/apps', { token: tokens.owner, body: { name: 'unaudited', org: 'acme' } });
      assert.equal(r.status, 201, 'with the log writable again, the same change goes through');
      assert.equal((await verify()).ok, true);
    });

    test('an export verifies offline (script and CLI) and fails after editing one line; CSV is for spreadsheets', async () => {
      const res = await fetch(`${server!.apiUrl}/v1/audit/export?org=acme&format=jsonl`, { headers: { authorization: `Bearer ${tokens.auditor}` } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /application\/x-ndjson/);
      assert.match(res.headers.get('content-disposition')!, /attachment; filename="ward-audit-acme-\d{4}-\d{2}-\d{2}\.jsonl"/);
      const text = await res.text();
      const file = join(dir, 'export.jsonl');
      await writeFile(file, text);
      const lines = text.trimEnd().split('\n');
      const header = JSON.parse(lines[0]!);
      assert.equal(header.type, 'header');
      assert.equal(header.format, 'ward-audit-export/1');
      assert.equal(header.org, orgId);
      assert.ok(header.public_keys.some((k: { key_id: string }) => k.key_id === server!.audit.keyId));
      const exported = lines.map((l) => JSON.parse(l)).filter((x) => x.type === 'entry');
      assert.equal(exported.at(-1).action, 'audit.export', 'the export records itself');
      assert.ok(lines.some((l) => JSON.parse(l).type === 'checkpoint'));

      const ok = await runScript([file]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /OK: \d+ entries in 1 chain/);
      const offline = await runCli(['audit', 'verify', '--file', file], { env: {} });
      assert.equal(offline.code, 0, offline.stderr);
      assert.match(offline.stdout, /^OK:/);

      const target = exported.find((e) => e.action === 'app.destroy');
      const lineNo = lines.findIndex((l) => l.includes(`"id":"${target.id}"`)) + 1;
      const edited = join(dir, 'edited.jsonl');
      await writeFile(edited, lines.map((l, i) => (i + 1 === lineNo ? l.replace('"outcome":"success"', '"outcome":"failure"') : l)).join('\n') + '\n');
      const bad = await runScript([edited]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, new RegExp(`FAILED: chain ${orgId}, seq ${target.seq}, entry ${target.id}, line ${lineNo}: its content does not match its hash`));
      const badCli = await runCli(['audit', 'verify', '--file', edited], { env: {} });
      assert.equal(badCli.code, 1);
      assert.match(badCli.stdout, new RegExp(`FAILED: chain ${orgId}, seq ${target.seq}, entry ${target.id}`));
      const dropped = join(dir, 'dropped.jsonl');
      await writeFile(dropped, lines.filter((_, i) => i + 1 !== lineNo).join('\n') + '\n');
      assert.equal((await runScript([dropped])).code, 1);
      assert.equal((await runScript([join(dir, 'missing.jsonl')])).code, 2);

      const csv = await call('GET', '/v1/audit/export?org=acme&format=csv', { token: tokens.auditor });
      assert.equal(csv.status, 200);
      assert.match(csv.headers.get('content-type')!, /text\/csv/);
      const rows = csv.text.trimEnd().split('\r\n');
      assert.equal(rows[0], 'chain,seq,id,at,org_id,actor_type,actor_id,actor_label,action,target,outcome,source_ip,request_id,details,prev_hash,hash');
      assert.equal(rows.length - 1, exported.length + 1, 'every entry, plus the second export\'s own record');

      // The CLI's export writes the same (mode 0600), and it verifies.
      const out = join(dir, 'cli-export.jsonl');
      const env = { WARD_API_URL: server!.apiUrl, WARD_API_TOKEN: tokens.auditor };
      const exp = await runCli(['audit', 'export', '--format', 'jsonl', '--org', 'acme', '--output', out], { env });
      assert.equal(exp.code, 0, exp.stderr);
      assert.equal((await stat(out)).mode & 0o777, 0o600);
      assert.equal((await runScript([out])).code, 0);
      const since = await runCli(['audit', 'export', '--since', '1h'], { env });
      assert.equal(since.code, 0, since.stderr);
      assert.equal(JSON.parse(since.stdout.split('\n')[0]!).type, 'header');
    });

    test('the CLI lists and verifies', async () => {
      const env = { WARD_API_URL: server!.apiUrl, WARD_API_TOKEN: tokens.auditor };
      const list = await runCli(['audit', 'list', '--since', '1h', '--json'], { env });
      assert.equal(list.code, 0, list.stderr);
      const rows = JSON.parse(list.stdout) as AuditRecord[];
      assert.deepEqual(rows.map((e) => e.seq), rows.map((_, i) => i + 1), 'all pages, in order');
      const table = await runCli(['audit', 'list', '--limit', '3'], { env });
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^SEQ\s+TIME\s+ACTOR\s+ACTION/);
      assert.equal(table.stdout.trimEnd().split('\n').length, 4);
      const v = await runCli(['audit', 'verify'], { env });
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /^org acme: OK:/);
      const denied = await runCli(['audit', 'list'], { env: { ...env, WARD_API_TOKEN: tokens.developer } });
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /audit:read/);
    });

    test('no password, session token or invite code is ever in audit_entries', async () => {
      const rows = await raw!.query('select * from audit_entries');
      const dump = JSON.stringify(rows);
      // The identity events (signup, login failure, invites) are there too, so this covers their details.
      for (const a of ['auth.signup', 'auth.login', 'invite.create']) assert.ok(rows.some((r) => r.action === a), `${a} is recorded`);
      assert.ok(dump.length > 1000);
      for (const s of secrets) assert.ok(!dump.includes(s), `a secret (${s.slice(0, 9)}…) is in the audit log`);
      assert.ok(!/ward_(ses|inv|tok)_/.test(dump));
      assert.ok(!dump.includes('scrypt'), 'no password hash either');
    });

    test('the server signs with a 0600 key in its data dir, registers it, and signs the newest entries on close', async () => {
      const keyFile = auditKeyPath(dir);
      assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
      assert.match(await readFile(keyFile, 'utf8'), /BEGIN PRIVATE KEY/);
      const keys = await raw!.query('select key_id from audit_keys');
      assert.ok(keys.some((k) => k.key_id === server!.audit.keyId));
      assert.equal((await call('POST', '/v1/apps', { token: tokens.owner, body: { name: 'last-one', org: 'acme' } })).status, 201);
      const head = (await entries()).at(-1)!;
      await server!.close();
      const cps = await raw!.query('select seq from audit_checkpoints where chain = ?', [orgId]);
      assert.ok(cps.some((c) => Number(c.seq) === head.seq), 'close() checkpointed the head');
    });
  });
}
