// The CLI end to end: a real `ward server` control plane started in-process on a temp data dir and a
// free port, and the real `bin/ward.ts` run as subprocesses, the way a user runs it. Every data command
// is called with --json and its one JSON document checked against docs/api.md.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveServerConfig } from '../../src/config/index.ts';
import { startServer } from '../../src/server/index.ts';
import { ROOT, WARD, ward, type Result } from './ward-cli.ts';

const PASSWORD = 'correct horse battery staple';

describe('ward CLI against a real server', () => {
  let tmp: string;
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  let owner: Record<string, string>;
  let colleague: Record<string, string>;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'ward-e2e-cli-'));
    const config = resolveServerConfig({
      flags: { 'data-dir': join(tmp, 'data'), 'api-listen': '127.0.0.1:0', 'log-level': 'silent', roles: 'control' },
      env: {},
    });
    server = await startServer(config);
    const base = { WARD_API_URL: server.apiUrl, HOME: tmp };
    owner = { ...base, WARD_CONFIG_DIR: join(tmp, 'owner') };
    colleague = { ...base, WARD_CONFIG_DIR: join(tmp, 'colleague') };
  });

  after(async () => {
    await server?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  /** json runs a --json command, asserts success and one JSON document on stdout, and returns it. */
  async function json(args: string[], env: Record<string, string>, stdin = ''): Promise<any> {
    const r = await ward([...args, '--json'], env, stdin);
    assert.equal(r.code, 0, `ward ${args.join(' ')} failed: ${r.stderr}`);
    let doc: unknown;
    assert.doesNotThrow(() => (doc = JSON.parse(r.stdout)), `stdout of ward ${args.join(' ')} is not one JSON document: ${r.stdout}`);
    assert.doesNotMatch(r.stdout + r.stderr, /ward_ses_/, 'a session token was printed');
    return doc;
  }

  /** fails runs a command that must fail as a user error: exit 1, empty stdout, Error line, no stack. */
  async function fails(args: string[], env: Record<string, string>, error: RegExp, stdin = ''): Promise<Result> {
    const r = await ward(args, env, stdin);
    assert.equal(r.code, 1, `ward ${args.join(' ')} should fail: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, error);
    assert.doesNotMatch(r.stderr, /unexpected|\n\s+at /);
    return r;
  }

  it('answers --help and version without a server', async () => {
    const help = await ward(['--help'], owner);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^ {2}apps +/m);
    const v = await json(['version'], owner);
    assert.match(v.version, /^\d+\.\d+\.\d+/);
  });

  it('signs up, logs out and in, manages orgs and apps', async () => {
    await fails(['auth', 'whoami'], owner, /^Error: you are not logged in\nHint: run `ward auth login`/);

    // Signup: the first account owns the first org. The session file is private.
    const signup = await json(['auth', 'signup', '--email', 'ana@example.com', '--org', 'acme', '--password-stdin'], owner, `${PASSWORD}\n`);
    assert.equal(signup.user.email, 'ana@example.com');
    assert.match(signup.user.id, /^usr_/);
    assert.equal(signup.org.name, 'acme');
    assert.equal(signup.role, 'owner');
    assert.equal(signup.session.token, undefined, 'the token is not printed');
    assert.equal(signup.session.kind, 'cli');
    assert.equal((await stat(join(owner.WARD_CONFIG_DIR!, 'session.json'))).mode & 0o777, 0o600);
    assert.equal((await stat(owner.WARD_CONFIG_DIR!)).mode & 0o777, 0o700);
    assert.deepEqual(await readdir(owner.WARD_CONFIG_DIR!), ['session.json']);

    const who = await json(['auth', 'whoami'], owner);
    assert.equal(who.user.id, signup.user.id);
    assert.deepEqual(who.orgs.map((o: { id: string; name: string; role: string }) => ({ id: o.id, name: o.name, role: o.role })), [{ id: signup.org.id, name: 'acme', role: 'owner' }]);
    assert.equal(who.api_url, server!.apiUrl);

    // Logout revokes and forgets; login brings a new session.
    const logout = await ward(['auth', 'logout'], owner);
    assert.equal(logout.code, 0, logout.stderr);
    assert.match(logout.stderr, /^Logged out ana@example\.com/);
    await fails(['auth', 'whoami'], owner, /^Error: you are not logged in\n/);
    await fails(['auth', 'login', '--email', 'ana@example.com', '--password-stdin'], owner, /^Error: /, 'wrong password here\n');
    const login = await ward(['auth', 'login', '--email', 'ana@example.com', '--json'], { ...owner, WARD_PASSWORD: PASSWORD });
    assert.equal(login.code, 0, login.stderr);
    assert.equal(JSON.parse(login.stdout).user.id, signup.user.id);
    assert.equal((await json(['auth', 'whoami'], owner)).user.email, 'ana@example.com');

    // Orgs.
    const beta = await json(['orgs', 'create', 'beta'], owner);
    assert.equal(beta.name, 'beta');
    assert.match(beta.id, /^org_/);
    const orgs = await json(['orgs', 'list'], owner);
    assert.ok(Array.isArray(orgs));
    assert.deepEqual(orgs.map((o: { name: string; role: string }) => [o.name, o.role]).sort(), [['acme', 'owner'], ['beta', 'owner']]);
    const shown = await json(['orgs', 'show', 'acme'], owner);
    assert.equal(shown.org.id, signup.org.id);
    assert.equal(shown.role, 'owner');
    assert.deepEqual(shown.members.map((m: { email: string; role: string }) => [m.email, m.role]), [['ana@example.com', 'owner']]);
    await fails(['orgs', 'show', 'nope'], owner, /^Error: /);

    // An invite lets a colleague sign up into acme with the invite's role.
    const invite = await json(['orgs', 'invite', '--org', 'acme', '--role', 'developer'], owner);
    assert.equal(invite.role, 'developer');
    assert.equal(typeof invite.code, 'string');
    const plainInvite = await ward(['orgs', 'invite', '--org', 'acme', '--role', 'viewer'], owner);
    assert.equal(plainInvite.code, 0, plainInvite.stderr);
    assert.match(plainInvite.stdout, /^\S+\n$/, 'without --json, stdout is the code alone');
    const joined = await json(['auth', 'signup', '--email', 'bo@example.com', '--invite', invite.code, '--password-stdin'], colleague, `${PASSWORD}\n`);
    assert.equal(joined.org.name, 'acme');
    assert.equal(joined.role, 'developer');
    await fails(['auth', 'signup', '--email', 'cy@example.com', '--invite', invite.code, '--password-stdin'], { ...colleague, WARD_CONFIG_DIR: join(tmp, 'cy') }, /^Error: /, `${PASSWORD}\n`);

    // Apps.
    const app = await json(['apps', 'create', 'portal', '--org', 'acme'], owner);
    assert.equal(app.name, 'portal');
    assert.match(app.id, /^app_/);
    assert.equal(app.org.id, signup.org.id);
    assert.equal(app.org.name, 'acme');
    await fails(['apps', 'create', 'portal', '--org', 'acme'], owner, /^Error: /);
    assert.deepEqual((await json(['apps', 'list'], owner)).map((a: { name: string }) => a.name), ['portal']);
    assert.deepEqual(await json(['apps', 'list', '--org', 'beta'], owner), []);
    assert.deepEqual((await json(['apps', 'list'], colleague)).map((a: { id: string }) => a.id), [app.id]);
    assert.equal((await json(['apps', 'show', 'portal'], owner)).id, app.id);
    assert.equal((await json(['apps', 'show', '-a', app.id], owner)).name, 'portal');

    // Destroy needs --yes; without it nothing is deleted.
    await fails(['apps', 'destroy', 'portal'], owner, /^Error: not destroying app "portal" without --yes.*\nHint: if you mean it, run: ward apps destroy portal --yes\n$/);
    assert.equal((await json(['apps', 'show', 'portal'], owner)).id, app.id);
    const destroyed = await json(['apps', 'destroy', 'portal', '--yes'], owner);
    assert.equal(destroyed.id, app.id);
    assert.deepEqual(await json(['apps', 'list'], owner), []);
    await fails(['apps', 'show', 'portal'], owner, /^Error: /);
  });

  it('ward server starts, answers, and stops gracefully on SIGTERM', async () => {
    // The control role alone: an agent takes host-wide resources (/run/ward, the ward bridge, the resolver on
    // port 53), which test/e2e/up.test.ts's full server holds while the suites run side by side.
    const child = spawn(process.execPath, [WARD, 'server', '--roles', 'control', '--data-dir', join(tmp, 'server2'), '--api-listen', '127.0.0.1:0', '--log-level', 'silent'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      let stderr = '';
      child.stdout.resume();
      const url = await new Promise<string>((resolveUrl, reject) => {
        child.stderr.setEncoding('utf8').on('data', (s: string) => {
          stderr += s;
          const m = /^Ward API listening on (\S+)$/m.exec(stderr);
          if (m) resolveUrl(m[1]!);
        });
        child.on('exit', (code) => reject(new Error(`ward server exited with ${code}: ${stderr}`)));
      });
      const health = await fetch(`${url}/v1/health`);
      assert.equal(health.status, 200);
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.match(stderr, /Received SIGTERM; shutting down\.\nStopped\.\n$/);
    } finally {
      clearTimeout(killer);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('ward server reports a bad configuration as a user error', async () => {
    await fails(['server', '--data-dir', join(tmp, 'server3'), '--roles', 'contrl'], owner, /^Error: --roles "contrl": unknown role "contrl" \(did you mean "control"\?\)/);
  });

  it('explains an unreachable API', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise((r) => probe.close(r));
    const url = `http://127.0.0.1:${port}`;
    const r = await fails(['apps', 'list'], { ...owner, WARD_API_URL: url, WARD_API_TOKEN: 'ward_tok_x' }, new RegExp(`^Error: cannot reach the Ward API at ${url} \\(connection refused\\)\n`));
    assert.match(r.stderr, /\nHint: start it with `ward server` or set WARD_API_URL\n$/);
  });
});
