import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UserError } from '../core/index.ts';
import { defineCommand, isGroup, jsonFlag, type Command, type Group } from './command.ts';
import { commandTree } from './commands/index.ts';
import { commandHelp } from './help.ts';
import { fakeApi, runCli, tempDir, type FakeApi, type FakeReply, type RecordedRequest } from './testing.ts';

const TOKEN = 'ward_ses_TESTTOKENdo_not_print_me';
const T = '2026-01-01T00:00:00.000Z';
const user = { id: 'usr_01', email: 'ana@example.com', created_at: T };
const org = { id: 'org_01', name: 'acme', created_at: T };
const app = { id: 'app_01', name: 'portal', org: { id: org.id, name: org.name }, created_at: T, updated_at: T };
const cert = { hostname: 'www.example.com', app: 'portal', status: 'failing', not_after: T, renew_at: T, last_attempt_at: T, last_error: 'urn:ietf:params:acme:error:dns: no such host', failures: 2, next_attempt_at: T };
const session = { token: TOKEN, kind: 'cli', expires_at: '2999-01-01T00:00:00.000Z', idle_timeout: '12h' };

/** api answers like docs/api.md for one owner, and demands the session token where the API would. */
function api(req: RecordedRequest): FakeReply {
  const authed = req.headers.authorization === `Bearer ${TOKEN}`;
  const route = `${req.method} ${req.url}`;
  if (route === 'POST /v1/auth/signup') return { status: 201, body: { user, org, role: 'owner', session } };
  if (route === 'POST /v1/auth/login') {
    const b = req.body as { password?: string };
    if (b.password !== 'correct horse battery') return { status: 401, body: { error: { code: 'invalid_credentials', message: 'wrong email or password' } } };
    return { status: 200, body: { user, session } };
  }
  if (!authed) return { status: 401, body: { error: { code: 'unauthenticated', message: 'a credential is required' } } };
  switch (route) {
    case 'POST /v1/auth/logout':
      return { status: 204 };
    case 'GET /v1/auth/whoami':
      return { status: 200, body: { user, orgs: [{ id: org.id, name: org.name, role: 'owner' }] } };
    case 'GET /v1/orgs':
      return { status: 200, body: { orgs: [{ ...org, role: 'owner' }] } };
    case 'GET /v1/orgs/acme':
      return { status: 200, body: { org, role: 'owner', members: [{ user_id: user.id, email: user.email, role: 'owner', created_at: T }] } };
    case 'POST /v1/orgs/acme/invites':
      return { status: 201, body: { invite: { id: 'inv_01', code: 'INVITECODE', role: (req.body as { role: string }).role, expires_at: T } } };
    case 'POST /v1/orgs':
      return { status: 201, body: { org: { ...org, name: (req.body as { name: string }).name } } };
    case 'GET /v1/apps':
    case 'GET /v1/apps?org=acme':
      return { status: 200, body: { apps: [app] } };
    case 'POST /v1/apps':
      return { status: 201, body: { app } };
    case 'GET /v1/apps/portal':
    case 'DELETE /v1/apps/portal':
      return { status: 200, body: { app } };
    case 'POST /v1/apps/portal/certs':
      return { status: 201, body: { certificate: { ...cert, hostname: (req.body as { hostname: string }).hostname, status: 'pending', not_after: null, renew_at: null } } };
    case 'GET /v1/apps/portal/certs':
      return { status: 200, body: { certificates: [cert] } };
    case 'GET /v1/apps/portal/certs/www.example.com':
      return { status: 200, body: { certificate: cert } };
    case 'DELETE /v1/apps/portal/certs/www.example.com':
      return { status: 200, body: { removed: 'www.example.com' } };
    default:
      return { status: 404, body: { error: { code: 'not_found', message: `no route ${route}`, hint: 'check the name' } } };
  }
}

describe('help', () => {
  it('ward --help lists every noun and top-level command', async () => {
    for (const argv of [[], ['--help'], ['-h'], ['help']]) {
      const r = await runCli(argv);
      assert.equal(r.code, 0);
      assert.equal(r.stderr, '');
      for (const e of commandTree) assert.match(r.stdout, new RegExp(`^  ${e.name} +${escape(e.summary)}$`, 'm'));
      assert.match(r.stdout, /WARD_API_URL/);
    }
  });

  it('ward <noun> --help lists its verbs', async () => {
    for (const g of commandTree.filter(isGroup)) {
      const r = await runCli([g.name, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`ward ${g.name} <command>`));
      for (const c of g.commands) assert.match(r.stdout, new RegExp(`^  ${c.name} +${escape(c.summary)}$`, 'm'));
    }
  });

  it('ward <noun> <verb> --help shows usage, arguments and every flag', async () => {
    for (const [path, cmd] of allCommands()) {
      for (const argv of [[...path.split(' ').slice(1), '--help'], ['help', ...path.split(' ').slice(1)]]) {
        const r = await runCli(argv);
        assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
        assert.equal(r.stdout, commandHelp(cmd, path));
      }
      const text = commandHelp(cmd, path);
      assert.match(text, new RegExp(`Usage:\n  ${path}`));
      for (const name of Object.keys(cmd.flags)) assert.match(text, new RegExp(`--${name}\\b`), `${path} --${name}`);
      for (const a of cmd.args) assert.match(text, new RegExp(`^  ${a.name} `, 'm'));
      assert.match(text, /-h, --help/);
    }
  });

  it('--help wins over other mistakes on the line', async () => {
    const r = await runCli(['apps', 'destroy', '--bogus', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /ward apps destroy NAME \[flags\]/);
  });

  it('shows required flags in the usage line and marks repeatable ones', () => {
    const cmd = defineCommand({
      name: 'x',
      summary: 's',
      flags: { tag: { type: 'string', multiple: true, description: 'a tag' }, must: { type: 'string', required: true, placeholder: 'M', description: 'm' } },
      args: [{ name: 'KEY', variadic: true, required: true, description: 'k' }],
      async run() {},
    });
    const text = commandHelp(cmd, 'ward t x');
    assert.match(text, /ward t x KEY\.\.\. --must M \[flags\]/);
    assert.match(text, /--tag VALUE +a tag \(repeatable\)/);
  });

  it('every command that prints data takes --json', () => {
    // `ward audit export` prints the export file itself (JSONL or CSV), which is already machine-readable.
    const noData = new Set(['ward auth logout', 'ward server', 'ward audit export']);
    for (const [path, cmd] of allCommands()) {
      if (!noData.has(path)) assert.ok('json' in cmd.flags, `${path} lacks --json`);
    }
  });
});

describe('unknown commands', () => {
  const cases: Array<[string[], string, string]> = [
    [['foo'], 'unknown command "ward foo"', 'see ward --help for the list of commands'],
    [['aps'], 'unknown command "ward aps"', 'did you mean "ward apps"?'],
    [['aps', 'list'], 'unknown command "ward aps"', 'did you mean "ward apps list"?'],
    [['list', 'apps'], 'unknown command "ward list"', 'did you mean "ward apps list"?'],
    [['verison'], 'unknown command "ward verison"', 'did you mean "ward version"?'],
    [['apps', 'lst'], 'unknown command "ward apps lst"', 'did you mean "ward apps list"?'],
    [['apps', 'lsit'], 'unknown command "ward apps lsit"', 'did you mean "ward apps list"?'],
    [['apps', 'delete'], 'unknown command "ward apps delete"', 'see ward apps --help'],
    [['orgs', 'inv'], 'unknown command "ward orgs inv"', 'did you mean "ward orgs invite"?'],
  ];
  for (const [argv, error, hint] of cases) {
    it(`ward ${argv.join(' ')}`, async () => {
      const r = await runCli(argv);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `Error: ${error}\nHint: ${hint}\n`);
    });
  }
});

describe('flag and argument errors', () => {
  const cases: Array<[string[], string, string?]> = [
    [['apps', 'list', '--jsn'], 'unknown flag --jsn for ward apps list', 'did you mean --json? see ward apps list --help'],
    [['apps', 'list', '-z'], 'unknown flag -z for ward apps list'],
    [['auth', 'login'], 'ward auth login needs --email EMAIL'],
    [['auth', 'login', '--email'], 'flag --email needs a value'],
    [['auth', 'login', '--email', '--otp', '1'], 'flag --email needs a value'],
    [['auth', 'login', '--email', 'a@b.c', '--email', 'd@e.f'], 'flag --email is given more than once'],
    [['apps', 'list', '--json=yes'], 'flag --json takes no value'],
    [['orgs', 'invite', '--org', 'acme', '--role', 'boss'], 'invalid value "boss" for --role', 'use one of: owner, admin, developer, viewer, auditor'],
    [['orgs', 'show'], 'ward orgs show needs ORG'],
    [['orgs', 'show', 'a', 'b'], 'unexpected argument "b" for ward orgs show'],
    [['orgs', 'invite', '--org', 'acme', '--role', 'viewer', '--expires', '7'], 'invalid --expires: invalid duration "7": use a number and a unit, like 30s, 5m, 1h or 7d'],
    [['apps', 'create', 'Bad_Name'], 'invalid app name "Bad_Name": it has upper-case letters; names are lower-case', ''],
    [['apps', 'destroy', 'portal'], 'not destroying app "portal" without --yes: this deletes the app and everything in it, with no undo', 'if you mean it, run: ward apps destroy portal --yes'],
    [['auth', 'signup', '--email', 'a@b.c'], 'signup needs --org ORG (the first account on a server) or --invite CODE', 'ask an org owner for an invite: ward orgs invite --org ORG --role developer'],
    [['--verbose'], 'unexpected flag --verbose before the command', 'flags go after the command: ward <command> [flags]; see ward --help'],
    [['apps', '--json', 'list'], '"ward apps" needs a command before its flags', 'see ward apps --help'],
  ];
  for (const [argv, error, hint] of cases) {
    it(`ward ${argv.join(' ')}`, async () => {
      // No session and no server: each mistake must be caught before either matters.
      const r = await runCli(argv, { env: { WARD_CONFIG_DIR: '/nonexistent/ward-test' } });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      const lines = r.stderr.split('\n');
      assert.equal(lines[0], `Error: ${error}`);
      if (hint === '') assert.equal(lines.length, 2);
      else {
        const path = argv[0]?.startsWith('-') || argv[1]?.startsWith('-') ? '' : `ward ${argv.slice(0, 2).join(' ')}`;
        assert.equal(lines[1], `Hint: ${hint ?? `see ${path} --help`}`);
        assert.equal(lines.length, 3);
      }
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }
});

describe('error reporting', () => {
  const boom = (e: unknown): Group => ({
    name: 'test',
    summary: 's',
    commands: [
      defineCommand({
        name: 'fail',
        summary: 'fails',
        async run() {
          throw e;
        },
      }),
    ],
  });

  it('prints a UserError as Error and Hint, exit 1, no stack', async () => {
    const r = await runCli(['test', 'fail'], { tree: [boom(new UserError('conflict', 'it exists', { hint: 'pick another' }))] });
    assert.deepEqual(r, { code: 1, stdout: '', stderr: 'Error: it exists\nHint: pick another\n' });
  });

  it('prints a bug as "unexpected", exit 1, stack only with WARD_DEBUG=1', async () => {
    const tree = [boom(new TypeError('x is undefined'))];
    const r = await runCli(['test', 'fail'], { tree });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'Error: unexpected: x is undefined\nHint: this is a bug in Ward; run again with WARD_DEBUG=1 to see the stack trace, and report it\n');
    const d = await runCli(['test', 'fail'], { tree, env: { WARD_DEBUG: '1' } });
    assert.equal(d.code, 1);
    assert.match(d.stderr, /^Error: unexpected: x is undefined\nTypeError: x is undefined\n\s+at /);
  });

  it('returns the code run() returns', async () => {
    const tree: Group[] = [{ name: 't', summary: 's', commands: [defineCommand({ name: 'three', summary: 's', run: async () => 3 })] }];
    assert.equal((await runCli(['t', 'three'], { tree })).code, 3);
  });
});

describe('definitions', () => {
  it('rejects declaration mistakes when the command is defined', () => {
    const run = async () => {};
    assert.throws(() => defineCommand({ name: 'a', summary: 's', flags: { Bad: { type: 'string', description: 'd' } }, run }), /kebab-case/);
    assert.throws(() => defineCommand({ name: 'a', summary: 's', flags: { x: { type: 'string', short: 'h', description: 'd' } }, run }), /-h/);
    assert.throws(() => defineCommand({ name: 'a', summary: 's', args: [{ name: 'A', variadic: true, description: 'd' }, { name: 'B', description: 'd' }], run }), /variadic/);
    assert.throws(() => defineCommand({ name: 'a', summary: 's', requireApp: { positional: 'NOPE' }, run }), /does not declare/);
  });

  it('parses typed flags: booleans default false, repeatable strings to arrays', async () => {
    let seen: unknown;
    const cmd = defineCommand({
      name: 'x',
      summary: 's',
      args: [{ name: 'FIRST', required: true, description: 'd' }, { name: 'REST', variadic: true, description: 'd' }],
      flags: {
        tag: { type: 'string', short: 't', multiple: true, description: 'd' },
        force: { type: 'boolean', short: 'f', description: 'd' },
        json: jsonFlag,
        name: { type: 'string', description: 'd' },
      },
      async run(_ctx, input) {
        const tags: string[] = input.flags.tag;
        const force: boolean = input.flags.force;
        const name: string | undefined = input.flags.name;
        const rest: string[] = input.args.REST;
        seen = { tags, force, name, first: input.args.FIRST, rest };
      },
    });
    const tree = [{ name: 't', summary: 's', commands: [cmd] }];
    assert.equal((await runCli(['t', 'x', 'a', '-t', 'one', 'b', '--tag=two', 'c'], { tree })).code, 0);
    assert.deepEqual(seen, { tags: ['one', 'two'], force: false, name: undefined, first: 'a', rest: ['b', 'c'] });
    assert.equal((await runCli(['t', 'x', 'a', '-f', '--', '--not-a-flag'], { tree })).code, 0);
    assert.deepEqual(seen, { tags: [], force: true, name: undefined, first: 'a', rest: ['--not-a-flag'] });
  });
});

describe('requireApp', () => {
  let dir: { dir: string; remove(): Promise<void> };
  let server: FakeApi;
  before(async () => {
    dir = await tempDir();
    server = await fakeApi(api);
  });
  after(async () => {
    await server.close();
    await dir.remove();
  });
  const env = () => ({ WARD_API_URL: server.url, WARD_API_TOKEN: TOKEN });

  it('takes the positional, -a, or the app of ./ward.toml', async () => {
    await writeFile(join(dir.dir, 'ward.toml'), 'app = "portal"\nprimary_region = "local"\n');
    for (const argv of [['apps', 'show', 'portal', '--json'], ['apps', 'show', '-a', 'portal', '--json'], ['apps', 'show', '--json']]) {
      const r = await runCli(argv, { env: env(), cwd: dir.dir });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).name, 'portal');
    }
  });

  it('refuses two different apps, and explains a missing or broken ward.toml', async () => {
    const two = await runCli(['apps', 'show', 'portal', '-a', 'other'], { env: env(), cwd: dir.dir });
    assert.equal(two.code, 1);
    assert.match(two.stderr, /^Error: two apps named: "portal" and -a other\n/);
    const empty = await tempDir();
    try {
      const none = await runCli(['apps', 'show'], { env: env(), cwd: empty.dir });
      assert.equal(none.stderr, 'Error: no app given, and there is no ward.toml here\nHint: pass -a APP, or run this in the directory of your ward.toml\n');
      await writeFile(join(empty.dir, 'ward.toml'), 'app = \n');
      const broken = await runCli(['apps', 'show'], { env: env(), cwd: empty.dir });
      assert.match(broken.stderr, /^Error: ward\.toml has 1 error:\nward\.toml:1:7: error: invalid TOML/);
      await writeFile(join(empty.dir, 'ward.toml'), 'app = "portal"\n[http_service]\ninternal_port = "abc"\n');
      const invalid = await runCli(['apps', 'show'], { env: env(), cwd: empty.dir });
      assert.equal(invalid.code, 1);
      assert.match(invalid.stderr, /ward\.toml:3:1: error: http_service\.internal_port: expected a port number/);
      await writeFile(join(empty.dir, 'ward.toml'), 'primary_region = "local"\n');
      const noApp = await runCli(['apps', 'show'], { env: env(), cwd: empty.dir });
      assert.match(noApp.stderr, /^Error: ward\.toml has no app name\nHint: add app = "NAME"/);
    } finally {
      await empty.remove();
    }
  });
});

describe('commands against the API', () => {
  let server: FakeApi;
  let config: { dir: string; remove(): Promise<void> };
  before(async () => {
    server = await fakeApi(api);
    config = await tempDir();
  });
  after(async () => {
    await server.close();
    await config.remove();
  });

  const run = (argv: string[], stdin?: string, extra: Record<string, string> = {}) =>
    runCli(argv, { stdin, env: { WARD_API_URL: server.url, WARD_CONFIG_DIR: config.dir, ...extra } });

  /** json runs a --json command, checks it succeeded with exactly one JSON document on stdout, and returns it. */
  async function json(argv: string[], stdin?: string): Promise<any> {
    const r = await run([...argv, '--json'], stdin);
    assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
    assert.doesNotThrow(() => JSON.parse(r.stdout), `stdout of ${argv.join(' ')} is one JSON document`);
    assert.ok(!r.stdout.includes(TOKEN) && !r.stderr.includes(TOKEN), 'the token is never printed');
    return JSON.parse(r.stdout);
  }

  it('ward certs add, list, show and remove', async () => {
    const env = { WARD_API_TOKEN: TOKEN };
    const add = await run(['certs', 'add', 'WWW.example.com', '-a', 'portal', '--json'], undefined, env);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(JSON.parse(add.stdout).hostname, 'www.example.com');
    assert.deepEqual(server.requests.at(-1)!.body, { hostname: 'www.example.com' });
    const list = await run(['certs', 'list', '-a', 'portal', '--json'], undefined, env);
    assert.deepEqual(JSON.parse(list.stdout), [cert]);
    const table = await run(['certs', 'list', '-a', 'portal'], undefined, env);
    assert.match(table.stdout, /www\.example\.com\s+failing/);
    assert.match(table.stdout, /no such host/);
    const show = await run(['certs', 'show', 'www.example.com', '-a', 'portal'], undefined, env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /last error\s+urn:ietf:params:acme:error:dns: no such host/);
    assert.match(show.stdout, /failures\s+2/);
    const removed = await run(['certs', 'remove', 'www.example.com', '-a', 'portal'], undefined, env);
    assert.deepEqual(removed, { code: 0, stdout: '', stderr: 'Removed the certificate for www.example.com from portal.\n' });
    assert.equal(server.requests.at(-1)!.method, 'DELETE');
    const bad = await run(['certs', 'add', 'https://x.example.com/', '-a', 'portal'], undefined, env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /is not a hostname/);
  });

  it('runs the whole account and app flow with --json', async () => {
    const before = await run(['auth', 'whoami']);
    assert.deepEqual(before, { code: 1, stdout: '', stderr: 'Error: you are not logged in\nHint: run `ward auth login`, or set WARD_API_TOKEN\n' });

    const signup = await json(['auth', 'signup', '--email', 'ana@example.com', '--org', 'acme', '--password-stdin'], 'correct horse battery\n');
    assert.deepEqual(signup, { user, org, role: 'owner', session: { kind: 'cli', expires_at: session.expires_at, idle_timeout: '12h' } });
    assert.deepEqual(server.requests.at(-1)!.body, { email: 'ana@example.com', password: 'correct horse battery', org: 'acme' });
    assert.equal(server.requests.at(-1)!.headers.authorization, undefined);
    assert.equal((await stat(join(config.dir, 'session.json'))).mode & 0o777, 0o600);

    const who = await json(['auth', 'whoami']);
    assert.equal(who.user.email, 'ana@example.com');
    assert.equal(who.api_url, server.url);
    assert.equal(who.credential, 'session');

    const orgs = await json(['orgs', 'list']);
    assert.ok(Array.isArray(orgs));
    assert.equal(orgs[0].name, 'acme');
    assert.equal((await json(['orgs', 'show', 'acme'])).members[0].email, 'ana@example.com');
    assert.equal((await json(['orgs', 'create', 'beta'])).name, 'beta');
    const invite = await json(['orgs', 'invite', '--org', 'acme', '--role', 'developer', '--expires', '24h']);
    assert.equal(invite.code, 'INVITECODE');
    assert.deepEqual(server.requests.at(-1)!.body, { role: 'developer', expires_in: '24h' });

    assert.deepEqual(await json(['apps', 'create', 'portal', '--org', 'acme']), app);
    assert.deepEqual(await json(['apps', 'list']), [app]);
    assert.deepEqual(await json(['apps', 'list', '--org', 'acme']), [app]);
    assert.deepEqual(await json(['apps', 'show', 'portal']), app);
    assert.deepEqual(await json(['apps', 'destroy', 'portal', '--yes']), app);
    assert.equal(server.requests.at(-1)!.method, 'DELETE');

    const out = await run(['auth', 'logout']);
    assert.deepEqual(out, { code: 0, stdout: '', stderr: `Logged out ana@example.com from ${server.url}.\n` });
    assert.equal(server.requests.at(-1)!.url, '/v1/auth/logout');
    assert.equal(server.requests.at(-1)!.headers.authorization, `Bearer ${TOKEN}`);
    await assert.rejects(stat(join(config.dir, 'session.json')), { code: 'ENOENT' });
    assert.equal((await run(['auth', 'logout'])).stderr, 'You are not logged in.\n');

    const bad = await run(['auth', 'login', '--email', 'ana@example.com', '--password-stdin'], 'wrong password\n');
    assert.deepEqual(bad, { code: 1, stdout: '', stderr: 'Error: wrong email or password\n' });
    const login = await json(['auth', 'login', '--email', 'ana@example.com', '--password-stdin'], 'correct horse battery\n');
    assert.equal(login.user.id, user.id);
    assert.deepEqual(server.requests.at(-1)!.body, { email: 'ana@example.com', password: 'correct horse battery', kind: 'cli' });
    assert.equal((await json(['auth', 'whoami'])).user.id, user.id);
  });

  it('prints tables for people: data on stdout, prose on stderr', async () => {
    const env = { WARD_API_TOKEN: TOKEN };
    const list = await run(['apps', 'list'], undefined, env);
    assert.equal(list.code, 0);
    assert.equal(list.stdout, 'NAME     ORG    ID       CREATED\nportal   acme   app_01   2026-01-01T00:00:00Z\n');
    const invite = await run(['orgs', 'invite', '--org', 'acme', '--role', 'viewer'], undefined, env);
    assert.equal(invite.stdout, 'INVITECODE\n');
    assert.match(invite.stderr, /ward auth signup --email EMAIL --invite INVITECODE/);
    const show = await run(['apps', 'show', 'portal'], undefined, env);
    assert.match(show.stdout, /^Name      portal\nID        app_01\nOrg       acme\n/);
    const created = await run(['apps', 'create', 'portal'], undefined, env);
    assert.equal(created.stderr, 'Created app portal in org acme.\n');
    assert.match(created.stdout, /^Name +portal$/m);
  });

  it('maps API errors to Error and Hint', async () => {
    const r = await run(['apps', 'show', 'nope'], undefined, { WARD_API_TOKEN: TOKEN });
    assert.deepEqual(r, { code: 1, stdout: '', stderr: 'Error: no route GET /v1/apps/nope\nHint: check the name\n' });
    const refused = await run(['apps', 'list'], undefined, { WARD_API_TOKEN: 'ward_tok_wrong' });
    assert.equal(refused.stderr, 'Error: a credential is required\nHint: WARD_API_TOKEN was refused; check it, or unset it to use your login\n');
  });

  it('encodes names into single path segments', async () => {
    await run(['apps', 'show', '../orgs'], undefined, { WARD_API_TOKEN: TOKEN });
    assert.equal(server.requests.at(-1)!.url, '/v1/apps/..%2Forgs');
  });

  it('never sends the stored session to another server', async () => {
    await json(['auth', 'signup', '--email', 'ana@example.com', '--org', 'acme', '--password-stdin'], 'correct horse battery\n');
    const other = await fakeApi(() => ({ status: 200, body: { apps: [] } }));
    try {
      const r = await runCli(['apps', 'list'], { env: { WARD_API_URL: other.url, WARD_CONFIG_DIR: config.dir } });
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `Error: you are logged in to ${server.url}, not to ${other.url}\nHint: run \`ward auth login\` to log in there, or unset WARD_API_URL\n`);
      assert.equal(other.requests.length, 0);
    } finally {
      await other.close();
    }
  });
});

describe('version', () => {
  it('prints one JSON document with --json', async () => {
    const r = await runCli(['version', '--json']);
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
    const v = JSON.parse(r.stdout);
    assert.match(v.version, /^\d+\.\d+\.\d+/);
    assert.equal(v.node, process.version);
    const plain = await runCli(['--version']);
    assert.equal(plain.stdout, `ward ${v.version} (node ${process.version}, ${process.platform}/${process.arch})\n`);
  });
});

function allCommands(): Array<[string, Command]> {
  return commandTree.flatMap((e): Array<[string, Command]> => (isGroup(e) ? e.commands.map((c) => [`ward ${e.name} ${c.name}`, c] as [string, Command]) : [[`ward ${e.name}`, e]]));
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
