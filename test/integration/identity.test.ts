// Identity under attack, on SQLite and on PostgreSQL: replayed, stale and wrong one-time codes, recovery
// codes used twice, brute force on one account and password spraying from one source, expired, revoked,
// tampered, other-org and other-app tokens, a read token writing, sessions past their org's idle time,
// and the org's last owner. Each must be refused and change nothing. Time moves by a ManualClock.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApi } from '../../src/api/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { ManualClock } from '../../src/core/index.ts';
import { accountKey, hashSecret, LOGIN_THROTTLE, SESSION_SWEEP_AFTER_MS, totpCode } from '../../src/auth/index.ts';
import { newLogger } from '../../src/server/index.ts';

const PASSWORD = 'correct horse battery staple';
const ADMIN_URL = process.env.WARD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const STEP = 30_000;

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

interface Harness {
  store: Store;
  cleanup: () => Promise<void>;
}

async function sqliteHarness(): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'ward-identity-'));
  const store = await openStore({ dataDir: dir });
  return { store, cleanup: async () => { await store.close(); await rm(dir, { recursive: true, force: true }); } };
}

async function postgresHarness(): Promise<Harness> {
  const name = `ward_test_identity_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = async (q: string) => {
    const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
    await c.connect();
    try {
      await c.query(q);
    } finally {
      await c.end();
    }
  };
  await admin(`create database "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  try {
    const store = await openStore({ databaseUrl: url.toString() });
    return { store, cleanup: async () => { await store.close(); await admin(`drop database if exists "${name}" with (force)`); } };
  } catch (e) {
    await admin(`drop database if exists "${name}" with (force)`);
    throw e;
  }
}

for (const [kind, makeHarness] of [['SQLite', sqliteHarness], ['PostgreSQL', postgresHarness]] as const) {
  describe(`identity under attack (${kind})`, () => {
    let h: Harness;
    let api: FastifyInstance;
    const clock = new ManualClock(Date.UTC(2026, 10, 29, 8, 0, 0));
    const logLines: string[] = [];
    const secrets: string[] = []; // every credential this suite saw: none may reach a log or the audit trail
    let owner: string;
    let seq = 0;
    const uniq = (p: string) => `${p}-${++seq}`;

    const call = (method: Method, url: string, token?: string, payload?: object, remoteAddress = '127.0.0.1') =>
      api.inject({ method, url, remoteAddress, ...(payload === undefined ? {} : { payload }), headers: token ? { authorization: `Bearer ${token}` } : {} });
    const body = (r: LightMyRequestResponse) => r.json() as any;
    const code = (r: LightMyRequestResponse) => body(r).error?.code as string | undefined;
    const login = (email: string, password = PASSWORD, otp?: string, ip?: string) =>
      call('POST', '/v1/auth/login', undefined, { email, password, ...(otp === undefined ? {} : { otp }) }, ip);

    async function member(role: string, org = 'acme'): Promise<{ email: string; token: string }> {
      const inv = await call('POST', `/v1/orgs/${org}/invites`, owner, { role });
      assert.equal(inv.statusCode, 201, inv.body);
      const email = `${uniq(role)}@example.com`;
      const r = await call('POST', '/v1/auth/signup', undefined, { email, password: PASSWORD, invite: body(inv).invite.code });
      assert.equal(r.statusCode, 201, r.body);
      secrets.push(body(r).session.token);
      return { email, token: body(r).session.token };
    }

    /** enrol enables and confirms TOTP for a session; returns the secret and recovery codes. */
    async function enrol(token: string): Promise<{ secret: string; recovery: string[] }> {
      const e = await call('POST', '/v1/auth/mfa/enable', token);
      assert.equal(e.statusCode, 201, e.body);
      const secret = body(e).secret as string;
      assert.match(body(e).otpauth_uri, /^otpauth:\/\/totp\//);
      const c = await call('POST', '/v1/auth/mfa/confirm', token, { code: totpCode(secret, clock.now().getTime()) });
      assert.equal(c.statusCode, 200, c.body);
      const recovery = body(c).recovery_codes as string[];
      secrets.push(secret, ...recovery);
      return { secret, recovery };
    }

    const now = () => clock.now().getTime();
    const nextStep = () => clock.advance(STEP);

    before(async () => {
      h = await makeHarness();
      const sink = new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } });
      api = await buildApi({ store: h.store, clock, logger: newLogger('info', sink), version: '0.0.0-test' });
      await api.ready();
      const r = await call('POST', '/v1/auth/signup', undefined, { email: 'owner@example.com', password: PASSWORD, org: 'acme' });
      assert.equal(r.statusCode, 201, r.body);
      owner = body(r).session.token;
      secrets.push(owner, PASSWORD);
      assert.equal((await call('POST', '/v1/orgs', owner, { name: 'other' })).statusCode, 201);
    });

    after(async () => {
      await api?.close();
      await h?.cleanup();
    });

    describe('MFA', () => {
      let email: string;
      let token: string;
      let secret: string;
      let recovery: string[];

      test('enrolment: wrong and out-of-window codes are refused; the secret is sealed at rest', async () => {
        ({ email, token } = await member('developer'));
        const e = await call('POST', '/v1/auth/mfa/enable', token);
        assert.equal(e.statusCode, 201);
        secret = body(e).secret;
        secrets.push(secret);
        const wrong = totpCode(secret, now()) === '000000' ? '111111' : '000000';
        for (const bad of [wrong, totpCode(secret, now() - 2 * STEP), totpCode(secret, now() + 2 * STEP), 'abcdef', '']) {
          const r = await call('POST', '/v1/auth/mfa/confirm', token, { code: bad });
          assert.ok(r.statusCode === 401 || r.statusCode === 400, `${bad}: ${r.body}`);
        }
        assert.equal((await call('GET', '/v1/auth/mfa', token)).json().enabled, false, 'still not enabled');
        // Until confirmed, logging in needs no code.
        assert.equal((await login(email)).statusCode, 200);
        const user = await h.store.users.findByEmail(email);
        const [factor] = await h.store.factors.listForUser(user!.id);
        assert.ok(factor!.secretSealed && !factor!.secretSealed.includes(secret), 'the TOTP secret is not stored in plaintext');
        const c = await call('POST', '/v1/auth/mfa/confirm', token, { code: totpCode(secret, now()) });
        assert.equal(c.statusCode, 200, c.body);
        recovery = body(c).recovery_codes;
        secrets.push(...recovery);
        assert.equal(recovery.length, 10);
        assert.equal(new Set(recovery).size, 10);
      });

      test('login: no code → otp_required; wrong, replayed and ±2-step codes → invalid_otp', async () => {
        const none = await login(email);
        assert.equal(none.statusCode, 401);
        assert.equal(code(none), 'otp_required');
        // The confirming code was spent by confirmation itself.
        const replayConfirm = await login(email, PASSWORD, totpCode(secret, now()));
        assert.equal(code(replayConfirm), 'invalid_otp');
        nextStep();
        for (const bad of [totpCode(secret, now() - 2 * STEP), totpCode(secret, now() + 2 * STEP), '12345', '1234567']) {
          const r = await login(email, PASSWORD, bad);
          assert.equal(r.statusCode, 401, bad);
          assert.equal(code(r), 'invalid_otp', bad);
        }
        const good = totpCode(secret, now());
        const ok = await login(email, PASSWORD, good);
        assert.equal(ok.statusCode, 200, ok.body);
        const replay = await login(email, PASSWORD, good);
        assert.equal(replay.statusCode, 401);
        assert.equal(code(replay), 'invalid_otp', 'a used code cannot be replayed');
        // A code for an earlier step, still inside the drift window, is refused once a later one was used.
        nextStep();
        const later = totpCode(secret, now());
        assert.equal((await login(email, PASSWORD, later)).statusCode, 200);
        assert.equal(code(await login(email, PASSWORD, totpCode(secret, now() - STEP))), 'invalid_otp');
        // A wrong password with a good code is still just a wrong password.
        nextStep();
        const r = await login(email, 'not the password!!', totpCode(secret, now()));
        assert.equal(code(r), 'invalid_credentials');
      });

      test('the same fresh code sent twice at once logs in exactly once', async () => {
        nextStep();
        nextStep();
        const c = totpCode(secret, now());
        const results = await Promise.all([login(email, PASSWORD, c), login(email, PASSWORD, c), login(email, PASSWORD, c)]);
        assert.deepEqual(results.map((r) => r.statusCode).sort(), [200, 401, 401]);
      });

      test('a recovery code works once', async () => {
        const rc = recovery[0]!;
        const first = await login(email, PASSWORD, rc.toUpperCase());
        assert.equal(first.statusCode, 200, first.body);
        const again = await login(email, PASSWORD, rc);
        assert.equal(code(again), 'invalid_otp');
        assert.equal((await call('GET', '/v1/auth/mfa', token)).json().recovery_codes_left, 9);
      });

      test('disable needs a current code; afterwards no code is needed', async () => {
        const none = await call('POST', '/v1/auth/mfa/disable', token, {});
        assert.equal(code(none), 'otp_required');
        const wrong = await call('POST', '/v1/auth/mfa/disable', token, { otp: '000000' === totpCode(secret, now()) ? '111111' : '000000' });
        assert.equal(code(wrong), 'invalid_otp');
        assert.equal((await call('GET', '/v1/auth/mfa', token)).json().enabled, true, 'still enabled');
        nextStep();
        const ok = await call('POST', '/v1/auth/mfa/disable', token, { otp: totpCode(secret, now()) });
        assert.equal(ok.statusCode, 204, ok.body);
        assert.equal((await login(email)).statusCode, 200);
        const user = await h.store.users.findByEmail(email);
        assert.equal(await h.store.recoveryCodes.countUnused(user!.id), 0, 'recovery codes went with it');
      });

      test('concurrent enrolments leave one pending factor and no server error', async () => {
        const m = await member('viewer');
        const rs = await Promise.all(Array.from({ length: 4 }, () => call('POST', '/v1/auth/mfa/enable', m.token)));
        assert.ok(rs.every((r) => r.statusCode === 201 || r.statusCode === 409), rs.map((r) => r.body).join(' '));
        assert.ok(rs.some((r) => r.statusCode === 201));
        for (const r of rs) if (r.statusCode === 201) secrets.push(body(r).secret);
        const user = await h.store.users.findByEmail(m.email);
        assert.equal((await h.store.factors.listForUser(user!.id)).length, 1);
      });

      test('the audit trail has every MFA change and no code or secret', async () => {
        const user = await h.store.users.findByEmail(email);
        const entries = await h.store.audit.list({ chain: '_server' });
        const mine = entries.filter((e) => e.target === user!.id).map((e) => `${e.action}:${e.outcome}`);
        for (const want of ['mfa.enable:success', 'mfa.confirm:failure', 'mfa.confirm:success', 'mfa.recovery_code_used:success', 'mfa.disable:failure', 'mfa.disable:success', 'auth.login:success', 'auth.login:failure']) {
          assert.ok(mine.includes(want), `missing ${want} in ${mine.join(', ')}`);
        }
      });
    });

    describe('login throttling', () => {
      test('brute force on one account: delays, then 429 with Retry-After, the right password refused too', async () => {
        const { email } = await member('viewer');
        for (let i = 1; i <= LOGIN_THROTTLE.account.free; i++) {
          const r = await login(email, `wrong password ${i}!`);
          assert.equal(r.statusCode, 401, `attempt ${i}`);
        }
        const sixth = await login(email, 'wrong password 6!');
        assert.equal(sixth.statusCode, 401);
        const locked = await login(email);
        assert.equal(locked.statusCode, 429, locked.body);
        assert.equal(code(locked), 'too_many_requests');
        assert.equal(locked.headers['retry-after'], '1');
        assert.match(body(locked).error.message, /too many failed logins; try again in 1 s/);
        clock.advance(1000);
        assert.equal((await login(email, 'wrong password 7!')).statusCode, 401);
        const l2 = await login(email);
        assert.equal(l2.statusCode, 429);
        assert.equal(l2.headers['retry-after'], '2', 'the delay doubles');
        clock.advance(2000);

        // Most of the hour's 100 failures, as if made before: the next real failure is the 100th.
        const user = await h.store.users.findByEmail(email);
        const key = accountKey(email);
        const [entry] = await h.store.throttle.get([key]);
        const windowStart = new Date(now() - LOGIN_THROTTLE.windowMs).toISOString();
        for (let n = entry!.failures; n < LOGIN_THROTTLE.account.hardCap - 1; n++) await h.store.throttle.recordFailure(key, clock.now().toISOString(), windowStart);
        assert.equal((await login(email, 'wrong password 100!')).statusCode, 401);
        clock.advance(60_000); // far past any delay: now only the cap holds
        const capped = await login(email);
        assert.equal(capped.statusCode, 429, 'the right password is refused while locked');
        const retry = Number(capped.headers['retry-after']);
        assert.ok(retry > 3000 && retry <= 3600, `Retry-After ${retry} is the rest of the hour`);
        assert.equal((await h.store.sessions.revokeAllForUser(user!.id, clock.now().toISOString())) >= 0, true);
        clock.advance(retry * 1000);
        const back = await login(email);
        assert.equal(back.statusCode, 200, 'after the hour the right password works again');
        assert.deepEqual(await h.store.throttle.get([key]), [], 'success clears the account');
      });

      test('unknown accounts are throttled exactly like real ones', async () => {
        const real = await member('viewer');
        const ghost = `${uniq('ghost')}@example.com`;
        for (const email of [real.email, ghost]) {
          for (let i = 0; i <= LOGIN_THROTTLE.account.free; i++) await login(email, 'not the password!!', undefined, '10.1.1.1');
        }
        const a = await login(real.email, 'not the password!!', undefined, '10.1.1.2');
        const b = await login(ghost, 'not the password!!', undefined, '10.1.1.2');
        const strip = (r: LightMyRequestResponse) => ({ status: r.statusCode, retry: r.headers['retry-after'], error: { ...body(r).error, request_id: undefined } });
        assert.deepEqual(strip(a), strip(b));
        assert.equal(a.statusCode, 429);
        clock.advance(5000);
      });

      test('spraying one password across many accounts from one source is throttled per source', async () => {
        const ip = '203.0.113.7';
        const victim = await member('viewer');
        for (let i = 0; i < LOGIN_THROTTLE.source.free + 1; i++) {
          const r = await login(`${uniq('sprayed')}@example.com`, 'Summer2026!Summer', undefined, ip);
          assert.equal(r.statusCode, 401, `attempt ${i}: ${r.body}`);
        }
        const next = await login(`${uniq('sprayed')}@example.com`, 'Summer2026!Summer', undefined, ip);
        assert.equal(next.statusCode, 429, 'the source waits, whatever account it tries next');
        assert.equal(code(await login(victim.email, PASSWORD, undefined, ip)), 'too_many_requests', 'even with a right password');
        assert.equal((await login(victim.email, PASSWORD, undefined, '198.51.100.1')).statusCode, 200, 'other sources are not affected');
        clock.advance(2000);
      });

      test('each failure is counted in ward_login_failures_total and audited without the password', async () => {
        const m = await call('GET', '/metrics');
        assert.match(m.body, /ward_login_failures_total\{reason="invalid_credentials"\} \d+/);
        assert.match(m.body, /ward_login_failures_total\{reason="throttled"\} \d+/);
        assert.match(m.body, /ward_login_failures_total\{reason="invalid_otp"\} \d+/);
        const entries = await h.store.audit.list({ chain: '_server' });
        const failures = entries.filter((e) => e.action === 'auth.login' && e.outcome !== 'success');
        assert.ok(failures.length > 20, `${failures.length} failed logins recorded`);
        assert.ok(failures.some((e) => e.outcome === 'denied' && e.details.reason === 'throttled'));
        assert.ok(failures.every((e) => e.source_ip !== null));
        const all = JSON.stringify(entries);
        for (const pw of ['not the password!!', 'Summer2026!Summer', 'wrong password 6!']) assert.ok(!all.includes(pw), `password ${pw} in the audit log`);
      });
    });

    describe('API tokens', () => {
      const bearer = (r: LightMyRequestResponse) => {
        const s = body(r).secret as string;
        secrets.push(s);
        return s;
      };

      test('a read token reads but cannot write, mint tokens or change the password', async () => {
        const r = await call('POST', '/v1/tokens', owner, { name: 'reader', scope: 'read', org: 'acme' });
        assert.equal(r.statusCode, 201, r.body);
        const t = bearer(r);
        assert.match(t, /^ward_tok_[A-Za-z0-9_-]{43}$/);
        assert.equal(body(r).token.scope, 'read');
        assert.equal((await call('GET', '/v1/apps', t)).statusCode, 200);
        for (const [method, url, payload] of [
          ['POST', '/v1/apps', { name: uniq('app'), org: 'acme' }],
          ['POST', '/v1/tokens', { name: 'more', scope: 'admin', org: 'acme' }],
          ['POST', '/v1/auth/password', { current_password: PASSWORD, new_password: 'a brand new password' }],
          ['POST', '/v1/orgs/acme/invites', { role: 'owner' }],
        ] as const) {
          const w = await call(method, url, t, payload);
          assert.equal(w.statusCode, 403, `${method} ${url}: ${w.body}`);
        }
        assert.equal((await h.store.apps.listForOrg((await h.store.orgs.findByName('acme'))!.id)).length, 0, 'nothing written');
      });

      test('expired, revoked and tampered tokens are refused', async () => {
        const short = bearer(await call('POST', '/v1/tokens', owner, { name: 'short', scope: 'read', org: 'acme', expires_in: '1m' }));
        assert.equal((await call('GET', '/v1/apps', short)).statusCode, 200);
        clock.advance(61_000);
        assert.equal((await call('GET', '/v1/apps', short)).statusCode, 401, 'expired');

        const rv = await call('POST', '/v1/tokens', owner, { name: 'revoked', scope: 'read', org: 'acme' });
        const revoked = bearer(rv);
        assert.equal((await call('DELETE', `/v1/tokens/${body(rv).token.id}`, owner)).statusCode, 200);
        assert.equal((await call('GET', '/v1/apps', revoked)).statusCode, 401, 'revoked');

        const good = bearer(await call('POST', '/v1/tokens', owner, { name: 'good', scope: 'read', org: 'acme' }));
        const i = 20;
        const tampered = good.slice(0, i) + (good[i] === 'A' ? 'B' : 'A') + good.slice(i + 1);
        const r = await call('GET', '/v1/apps', tampered);
        assert.equal(r.statusCode, 401);
        assert.equal(code(r), 'unauthenticated');
        assert.equal((await call('GET', '/v1/apps', good)).statusCode, 200, 'the untampered one works');

        for (const bad of [{ expires_in: '366d' }, { expires_in: 'never' }, { expires_in: '0s' }, { scope: 'root' }]) {
          const b = await call('POST', '/v1/tokens', owner, { name: 'bad', scope: 'read', org: 'acme', ...bad });
          assert.equal(b.statusCode, 400, JSON.stringify(bad));
        }
        const dflt = await call('POST', '/v1/tokens', owner, { name: 'default', scope: 'read', org: 'acme' });
        bearer(dflt);
        assert.equal(Date.parse(body(dflt).token.expires_at) - now(), 30 * 86_400_000, 'default 30 days');
      });

      test('a token sees only its org, and an app token only its app', async () => {
        const mine = await call('POST', '/v1/apps', owner, { name: uniq('mine'), org: 'acme' });
        const other = await call('POST', '/v1/apps', owner, { name: uniq('theirs'), org: 'other' });
        const sibling = await call('POST', '/v1/apps', owner, { name: uniq('sibling'), org: 'acme' });
        const [mineName, otherName, siblingName] = [mine, other, sibling].map((r) => body(r).app.name as string);

        const orgToken = bearer(await call('POST', '/v1/tokens', owner, { name: 'acme-admin', scope: 'admin', org: 'acme' }));
        assert.equal((await call('GET', `/v1/apps/${mineName}`, orgToken)).statusCode, 200);
        assert.equal((await call('GET', `/v1/apps/${otherName}`, orgToken)).statusCode, 404, 'another org of the same person');
        assert.equal((await call('DELETE', `/v1/apps/${otherName}`, orgToken)).statusCode, 404);
        assert.equal((await call('GET', '/v1/orgs/other', orgToken)).statusCode, 404);
        const listed = body(await call('GET', '/v1/apps', orgToken)).apps.map((a: { org: { name: string } }) => a.org.name);
        assert.ok(listed.length > 0 && listed.every((o: string) => o === 'acme'), 'lists only its org');
        assert.deepEqual(body(await call('GET', '/v1/orgs', orgToken)).orgs.map((o: { name: string }) => o.name), ['acme']);

        const appToken = bearer(await call('POST', '/v1/tokens', owner, { name: 'one-app', scope: 'deploy', org: 'acme', app: mineName }));
        assert.equal((await call('GET', `/v1/apps/${mineName}`, appToken)).statusCode, 200);
        assert.equal((await call('GET', `/v1/apps/${siblingName}`, appToken)).statusCode, 404, 'another app of its org');
        assert.equal((await call('POST', '/v1/apps', appToken, { name: uniq('x'), org: 'acme' })).statusCode, 403, 'no new apps');
        assert.deepEqual(body(await call('GET', '/v1/apps', appToken)).apps.map((a: { name: string }) => a.name), [mineName]);
        assert.equal((await call('POST', '/v1/tokens', owner, { name: 'x', scope: 'read', org: 'acme', app: otherName })).statusCode, 404, 'an app of another org');
      });

      test('a token can do no more than its creator can now', async () => {
        const admin = await member('admin');
        const t = bearer(await call('POST', '/v1/tokens', admin.token, { name: 'admin-token', scope: 'admin', org: 'acme' }));
        const a1 = await call('POST', '/v1/apps', t, { name: uniq('by-token'), org: 'acme' });
        assert.equal(a1.statusCode, 201, a1.body);
        assert.equal((await call('POST', '/v1/orgs/acme/members', owner, { email: admin.email, role: 'viewer' })).json().change, 'role_changed');
        assert.equal((await call('POST', '/v1/apps', t, { name: uniq('by-token'), org: 'acme' })).statusCode, 403, 'demoted creator');
        assert.equal((await call('GET', '/v1/apps', t)).statusCode, 200);
        assert.equal((await call('DELETE', `/v1/orgs/acme/members/${encodeURIComponent(admin.email)}`, owner)).statusCode, 200);
        assert.equal((await call('GET', `/v1/apps/${body(a1).app.name}`, t)).statusCode, 404, 'removed creator');
        const viewer = await member('viewer');
        assert.equal((await call('POST', '/v1/tokens', viewer.token, { name: 'x', scope: 'deploy', org: 'acme' })).statusCode, 403, 'no token beyond one\'s role');
      });

      test('last use is recorded and the first use audited once; lists never show the secret', async () => {
        const r = await call('POST', '/v1/tokens', owner, { name: 'used', scope: 'read', org: 'acme' });
        const t = bearer(r);
        const id = body(r).token.id as string;
        assert.equal(body(r).token.last_used_at, null);
        await Promise.all([call('GET', '/v1/apps', t), call('GET', '/v1/apps', t), call('GET', '/v1/apps', t)]);
        const used = (await h.store.tokens.get(id))!;
        assert.equal(used.lastUsedAt, clock.now().toISOString());
        const uses = (await h.store.audit.list({ orgId: used.orgId })).filter((e) => e.action === 'token.use' && e.target === id);
        assert.equal(uses.length, 1);
        assert.equal(uses[0]!.actor_type, 'token');
        const list = await call('GET', '/v1/tokens', owner);
        assert.ok(!list.body.includes('ward_tok_'), 'no secret in the list');
        const row = body(list).tokens.find((x: { id: string }) => x.id === id);
        assert.deepEqual(Object.keys(row).sort(), ['app', 'created_at', 'expires_at', 'id', 'last_used_at', 'name', 'org', 'revoked_at', 'scope']);
        const audit = JSON.stringify(await h.store.audit.list({ orgId: used.orgId }));
        for (const action of ['token.create', 'token.use', 'token.revoke']) assert.ok(audit.includes(`"${action}"`), action);
      });
    });

    describe('sessions and org policy', () => {
      test('a session past its org\'s idle time is refused; the absolute lifetime is unchanged', async () => {
        const m = await member('developer');
        const before = await call('POST', '/v1/auth/login', undefined, { email: m.email, password: PASSWORD });
        const early = body(before).session.token as string;
        secrets.push(early);
        assert.equal(body(before).session.idle_timeout, '12h');
        const set = await call('PUT', '/v1/orgs/acme/policy', owner, { session_idle: '10m' });
        assert.equal(set.statusCode, 200, set.body);
        assert.equal(body(set).policy.session_idle, '10m');
        const after = body(await login(m.email));
        secrets.push(after.session.token);
        assert.equal(after.session.idle_timeout, '10m');
        clock.advance(5 * 60_000);
        assert.equal((await call('GET', '/v1/apps', after.session.token)).statusCode, 200);
        clock.advance(11 * 60_000);
        assert.equal((await call('GET', '/v1/apps', after.session.token)).statusCode, 401, 'idle past the policy');
        assert.equal((await call('GET', '/v1/apps', early)).statusCode, 401, 'sessions from before the policy too');
        assert.equal((await call('GET', '/v1/apps', m.token)).statusCode, 401, 'the signup session too');
        assert.equal((await call('GET', '/v1/apps', owner)).statusCode, 401, 'and the owner\'s: the policy binds its setter');
        owner = body(await login('owner@example.com')).session.token;
        secrets.push(owner);
        for (const bad of ['1m', '8d', 'soon']) assert.equal((await call('PUT', '/v1/orgs/acme/policy', owner, { session_idle: bad })).statusCode, 400, bad);
        const cleared = await call('PUT', '/v1/orgs/acme/policy', owner, { session_idle: null });
        assert.equal(body(cleared).policy.session_idle, null, cleared.body);
        const reissued = body(await login(m.email)).session;
        secrets.push(reissued.token);
        assert.equal(reissued.idle_timeout, '12h', 'back to the default');
      });

      test('ended sessions are deleted a day after they end, when a later login sweeps', async () => {
        const m = await member('viewer');
        const ended = body(await login(m.email)).session.token as string;
        secrets.push(ended);
        assert.equal((await call('POST', '/v1/auth/logout', ended)).statusCode, 204);
        const hash = hashSecret(ended);
        assert.ok(await h.store.sessions.findByTokenHash(hash), 'a revoked session is kept for a while');
        clock.advance(SESSION_SWEEP_AFTER_MS + 60 * 60_000);
        const fresh = body(await login(m.email)).session.token as string;
        secrets.push(fresh);
        assert.equal(await h.store.sessions.findByTokenHash(hash), undefined, 'swept a day after it ended');
        assert.ok(await h.store.sessions.findByTokenHash(hashSecret(fresh)), 'the live one stays');
        owner = body(await login('owner@example.com')).session.token;
        secrets.push(owner);
      });

      test('require_mfa: only an owner with MFA may set it; an unenrolled member can only enrol', async () => {
        const refused = await call('PUT', '/v1/orgs/other/policy', owner, { require_mfa: true });
        assert.equal(code(refused), 'mfa_required', 'not without MFA of one\'s own');
        const boss = await member('viewer');
        assert.equal((await call('POST', '/v1/orgs', boss.token, { name: 'strict' })).statusCode, 201);
        await enrol(boss.token);
        assert.equal((await call('PUT', '/v1/orgs/strict/policy', boss.token, { require_mfa: true })).statusCode, 200);
        const inv = await call('POST', '/v1/orgs/strict/invites', boss.token, { role: 'developer' });
        const s = await call('POST', '/v1/auth/signup', undefined, { email: 'newbie@example.com', password: PASSWORD, invite: body(inv).invite.code });
        const t = body(s).session.token as string;
        secrets.push(t);
        const blocked = await call('GET', '/v1/apps', t);
        assert.equal(blocked.statusCode, 403);
        assert.equal(code(blocked), 'mfa_required');
        assert.match(body(blocked).error.hint, /ward auth mfa enable/);
        await enrol(t);
        assert.equal((await call('GET', '/v1/apps', t)).statusCode, 200);
      });

      test('a password change revokes every other session and keeps this one', async () => {
        const m = await member('viewer');
        const other = body(await login(m.email)).session.token as string;
        secrets.push(other);
        const wrong = await call('POST', '/v1/auth/password', m.token, { current_password: 'not it at all!', new_password: 'a new password here' });
        assert.equal(code(wrong), 'invalid_credentials');
        const ok = await call('POST', '/v1/auth/password', m.token, { current_password: PASSWORD, new_password: 'a new password here' });
        assert.equal(ok.statusCode, 200, ok.body);
        assert.equal(body(ok).revoked_sessions, 1);
        assert.equal((await call('GET', '/v1/auth/whoami', other)).statusCode, 401);
        assert.equal((await call('GET', '/v1/auth/whoami', m.token)).statusCode, 200);
        assert.equal((await login(m.email)).statusCode, 401);
        assert.equal((await login(m.email, 'a new password here')).statusCode, 200);
        const out = await call('POST', '/v1/auth/logout', m.token);
        assert.equal(out.statusCode, 204);
        assert.equal((await call('GET', '/v1/auth/whoami', m.token)).statusCode, 401, 'logout revokes');
      });
    });

    describe('members', () => {
      test('the last owner can be neither removed nor demoted; admins cannot make owners', async () => {
        const demote = await call('POST', '/v1/orgs/acme/members', owner, { email: 'owner@example.com', role: 'admin' });
        assert.equal(demote.statusCode, 409, demote.body);
        const remove = await call('DELETE', '/v1/orgs/acme/members/owner@example.com', owner);
        assert.equal(remove.statusCode, 409);
        const admin = await member('admin');
        const v = await member('viewer');
        assert.equal((await call('POST', '/v1/orgs/acme/members', admin.token, { email: v.email, role: 'owner' })).statusCode, 403);
        assert.equal((await call('POST', '/v1/orgs/acme/invites', admin.token, { role: 'owner' })).statusCode, 403);
        assert.equal((await call('DELETE', '/v1/orgs/acme/members/owner@example.com', admin.token)).statusCode, 403);
        assert.equal(body(await call('POST', '/v1/orgs/acme/members', admin.token, { email: v.email, role: 'developer' })).change, 'role_changed');
        assert.equal((await call('POST', '/v1/orgs/acme/members', v.token, { email: admin.email, role: 'viewer' })).statusCode, 403);
        // With a second owner, the first may step down — but two owners demoting each other at once cannot both win.
        assert.equal(body(await call('POST', '/v1/orgs/acme/members', owner, { email: admin.email, role: 'owner' })).change, 'role_changed');
        const [a, b] = await Promise.all([
          call('POST', '/v1/orgs/acme/members', owner, { email: admin.email, role: 'viewer' }),
          call('POST', '/v1/orgs/acme/members', admin.token, { email: 'owner@example.com', role: 'viewer' }),
        ]);
        // One wins; the other finds either the last owner (409) or that it is no owner any more (403).
        assert.equal([a, b].filter((r) => r.statusCode === 200).length, 1, `${a.body} ${b.body}`);
        assert.ok([a, b].every((r) => [200, 403, 409].includes(r.statusCode)), `${a.body} ${b.body}`);
        const acme = (await h.store.orgs.findByName('acme'))!;
        assert.equal(await h.store.memberships.countWithRole(acme.id, 'owner'), 1);
        if (b.statusCode === 200) owner = admin.token; // the old owner was demoted; carry on as the new one
        const changes = (await h.store.audit.list({ orgId: acme.id })).filter((e) => e.action === 'member.role_change');
        assert.ok(changes.length >= 3);
        const list = body(await call('GET', '/v1/orgs/acme/members', owner)).members;
        assert.ok(list.every((x: { mfa: unknown }) => typeof x.mfa === 'boolean'));
      });
    });

    test('no password, code, secret or token reached the log or the audit trail', async () => {
      await new Promise((r) => setTimeout(r, 50));
      const logs = logLines.join('');
      const audit = JSON.stringify(await h.store.audit.list({}));
      for (const s of secrets) {
        assert.ok(!logs.includes(s), `a secret in the logs: ${s.slice(0, 12)}…`);
        assert.ok(!audit.includes(s), `a secret in the audit log: ${s.slice(0, 12)}…`);
      }
      assert.ok(!/ward_(ses|inv|tok)_[A-Za-z0-9_-]{43}/.test(logs + audit));
    });
  });
}
