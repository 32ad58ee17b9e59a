// Identity from the terminal, end to end: a real control plane (in-process, on a temp data dir, with a
// clock the test moves) and the real `bin/ward.ts` as subprocesses. A person enables MFA from the CLI and
// then cannot log in without a code; tokens, members and policy work from the CLI; a throttled login
// says how long to wait.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveServerConfig } from '../../src/config/index.ts';
import { startServer } from '../../src/server/index.ts';
import { ManualClock } from '../../src/core/index.ts';
import { totpCode } from '../../src/auth/index.ts';
import { ward, type Result } from './ward-cli.ts';

const PASSWORD = 'correct horse battery staple';

describe('identity from the CLI', () => {
  let tmp: string;
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  // The server's clock starts at the real time (the CLI checks session expiry against its own clock) and
  // is moved a TOTP step at a time, so each login gets a fresh code without waiting.
  const clock = new ManualClock(Date.now());
  let ana: Record<string, string>;
  let bo: Record<string, string>;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'ward-e2e-identity-'));
    const config = resolveServerConfig({
      flags: { 'data-dir': join(tmp, 'data'), 'api-listen': '127.0.0.1:0', 'log-level': 'silent', roles: 'control' },
      env: {},
    });
    server = await startServer(config, { clock });
    const base = { WARD_API_URL: server.apiUrl, HOME: tmp };
    ana = { ...base, WARD_CONFIG_DIR: join(tmp, 'ana') };
    bo = { ...base, WARD_CONFIG_DIR: join(tmp, 'bo') };
  });

  after(async () => {
    await server?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  async function json(args: string[], env: Record<string, string>, stdin = ''): Promise<any> {
    const r = await ward([...args, '--json'], env, stdin);
    assert.equal(r.code, 0, `ward ${args.join(' ')} failed: ${r.stderr}`);
    let doc: unknown;
    assert.doesNotThrow(() => (doc = JSON.parse(r.stdout)), `stdout of ward ${args.join(' ')} is not one JSON document: ${r.stdout}`);
    return doc;
  }

  async function fails(args: string[], env: Record<string, string>, error: RegExp, stdin = ''): Promise<Result> {
    const r = await ward(args, env, stdin);
    assert.equal(r.code, 1, `ward ${args.join(' ')} should fail: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, error);
    assert.doesNotMatch(r.stderr, /unexpected|\n\s+at /);
    return r;
  }

  it('the master key file is created 0600 on first start', async () => {
    const st = await stat(join(tmp, 'data', 'master.key'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.size, 32);
  });

  it('a person enables MFA from the CLI and then cannot log in without a code', async () => {
    await json(['auth', 'signup', '--email', 'ana@example.com', '--org', 'acme', '--password-stdin'], ana, `${PASSWORD}\n`);
    const enabled = await json(['auth', 'mfa', 'enable'], ana);
    assert.match(enabled.otpauth_uri, /^otpauth:\/\/totp\/Ward%3Aana%40example\.com\?secret=/);
    assert.match(enabled.secret, /^[A-Z2-7]{32}$/);
    const secret = enabled.secret as string;

    // Human form: the URI and the secret on stdout, the next step on stderr.
    await fails(['auth', 'mfa', 'confirm', '000000'], ana, /^Error: the one-time code is wrong, expired or was used already\n/);
    const confirmed = await ward(['auth', 'mfa', 'confirm', totpCode(secret, clock.now().getTime())], ana);
    assert.equal(confirmed.code, 0, confirmed.stderr);
    const recovery = confirmed.stdout.trim().split('\n');
    assert.equal(recovery.length, 10);
    assert.match(recovery[0]!, /^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$/);
    assert.match(confirmed.stderr, /MFA is on/);
    assert.equal((await json(['auth', 'mfa', 'status'], ana)).enabled, true);

    assert.equal((await ward(['auth', 'logout'], ana)).code, 0);
    // stdin is not a terminal here, so the CLI cannot ask for the code: it fails and says how to pass it.
    await fails(['auth', 'login', '--email', 'ana@example.com'], { ...ana, WARD_PASSWORD: PASSWORD }, /^Error: this account uses multi-factor authentication: a one-time code is needed\nHint: pass --otp CODE/);
    await fails(['auth', 'whoami'], ana, /^Error: you are not logged in/);
    await fails(['auth', 'login', '--email', 'ana@example.com', '--otp', '000000'], { ...ana, WARD_PASSWORD: PASSWORD }, /^Error: the one-time code is wrong/);
    clock.advance(30_000);
    const code = totpCode(secret, clock.now().getTime());
    const ok = await json(['auth', 'login', '--email', 'ana@example.com', '--otp', code], { ...ana, WARD_PASSWORD: PASSWORD });
    assert.equal(ok.user.email, 'ana@example.com');
    await fails(['auth', 'login', '--email', 'ana@example.com', '--otp', code], { ...ana, WARD_PASSWORD: PASSWORD }, /^Error: the one-time code is wrong, expired or was used already/);
    const viaRecovery = await json(['auth', 'login', '--email', 'ana@example.com', '--otp', recovery[0]!], { ...ana, WARD_PASSWORD: PASSWORD });
    assert.equal(viaRecovery.user.email, 'ana@example.com');
    assert.equal((await json(['auth', 'mfa', 'status'], ana)).recovery_codes_left, 9);
  });

  it('tokens: created once, listed without secrets, used as WARD_API_TOKEN, revoked', async () => {
    await json(['apps', 'create', 'portal', '--org', 'acme'], ana);
    const created = await ward(['tokens', 'create', '--name', 'ci', '--scope', 'read', '--org', 'acme', '--expires', '24h'], ana);
    assert.equal(created.code, 0, created.stderr);
    const secret = created.stdout.trim();
    assert.match(secret, /^ward_tok_[A-Za-z0-9_-]{43}$/, 'the secret alone on stdout');
    const list = await json(['tokens', 'list'], ana);
    assert.equal(list.length, 1);
    assert.equal(list[0].name, 'ci');
    assert.equal(list[0].scope, 'read');
    assert.ok(!JSON.stringify(list).includes('ward_tok_'));
    const withToken = { ...bo, WARD_API_TOKEN: secret };
    assert.deepEqual((await json(['apps', 'list'], withToken)).map((a: { name: string }) => a.name), ['portal']);
    await fails(['apps', 'create', 'sneaky', '--org', 'acme'], withToken, /^Error: this token's scope \(read\) does not allow app:create/);
    await fails(['tokens', 'create', '--name', 'x', '--scope', 'read'], withToken, /^Error: API tokens cannot manage accounts/);
    const table = await ward(['tokens', 'list'], ana);
    assert.match(table.stdout, /ci +read +acme +- +active/);
    await json(['tokens', 'revoke', list[0].id], ana);
    await fails(['apps', 'list'], withToken, /^Error: the credential is not valid\nHint:/);
    await fails(['tokens', 'create', '--name', 'forever', '--scope', 'read', '--expires', '400d'], ana, /^Error: tokens expire after 1m at least and 365d at most/);
  });

  it('members and policy from the CLI', async () => {
    const inv = await json(['orgs', 'invite', '--org', 'acme', '--role', 'viewer'], ana);
    await json(['auth', 'signup', '--email', 'bo@example.com', '--invite', inv.code, '--password-stdin'], bo, `${PASSWORD}\n`);
    const changed = await json(['orgs', 'members', 'add', 'bo@example.com', '--role', 'developer', '--org', 'acme'], ana);
    assert.equal(changed.change, 'role_changed');
    const members = await json(['orgs', 'members', 'list', '--org', 'acme'], ana);
    assert.deepEqual(members.map((m: { email: string; role: string; mfa: boolean }) => [m.email, m.role, m.mfa]), [['ana@example.com', 'owner', true], ['bo@example.com', 'developer', false]]);
    await fails(['orgs', 'members', 'remove', 'ana@example.com', '--org', 'acme'], ana, /^Error: that is the last owner of org "acme"/);
    await fails(['orgs', 'members', 'add', 'ana@example.com', '--role', 'viewer', '--org', 'acme'], bo, /^Error: your role \(developer\) does not allow org:manage/);

    const policy = await json(['orgs', 'policy', 'set', '--org', 'acme', '--require-mfa', 'true', '--session-idle', '15m'], ana);
    assert.deepEqual({ require_mfa: policy.require_mfa, session_idle: policy.session_idle }, { require_mfa: true, session_idle: '15m' });
    await fails(['apps', 'list'], bo, /^Error: org "acme" requires multi-factor authentication, and your account has none yet\nHint: enrol first: ward auth mfa enable/);
    const e = await json(['auth', 'mfa', 'enable'], bo);
    await json(['auth', 'mfa', 'confirm', totpCode(e.secret, clock.now().getTime())], bo);
    assert.deepEqual((await json(['apps', 'list'], bo)).map((a: { name: string }) => a.name), ['portal']);
    await json(['orgs', 'members', 'remove', 'bo@example.com', '--org', 'acme'], ana);
    await fails(['apps', 'show', 'portal'], bo, /^Error: app "portal" not found/);
    const shown = await json(['orgs', 'policy', 'show', '--org', 'acme'], ana);
    assert.equal(shown.require_mfa, true);
  });

  it('a throttled login says how long to wait', async () => {
    const env = { ...bo, WARD_CONFIG_DIR: join(tmp, 'eve') };
    for (let i = 0; i < 6; i++) {
      await fails(['auth', 'login', '--email', 'nobody@example.com', '--password-stdin'], env, /^Error: the email or password is wrong/, 'a wrong password\n');
    }
    await fails(['auth', 'login', '--email', 'nobody@example.com', '--password-stdin'], env, /^Error: too many failed logins; try again in 1 s\n/, 'a wrong password\n');
  });
});
