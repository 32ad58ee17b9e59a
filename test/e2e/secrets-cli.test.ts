// `ward secrets` end to end: a real `ward server` (in-process, temp data dir, free port) and the real
// bin/ward.ts as subprocesses. set (NAME=VALUE and NAME=- from stdin), list (table and --json), import
// from a .env on stdin, unset, the refusals, and `ward secrets rotate-master-key` on the stopped server.
// The canaries appear in no output, no log line, and no file of the data dir or the CLI's config dirs.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { resolveServerConfig, type ServerConfig } from '../../src/config/index.ts';
import { startServer } from '../../src/server/index.ts';
import { scanFiles } from '../integration/canary-scan.ts';
import { freePort } from '../../src/agent/testing.ts';
import { ward, type Result } from './ward-cli.ts';

const PASSWORD = 'correct horse battery staple';

describe('ward secrets against a real server', () => {
  let tmp: string;
  let dataDir: string;
  let config: ServerConfig;
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  let owner: Record<string, string>;
  let viewer: Record<string, string>;
  const outputs: string[] = [];
  const STDIN_CANARY = `wardcanarystdin${randomBytes(12).toString('hex')}`;
  const ARG_CANARY = `wardcanaryarg${randomBytes(12).toString('hex')}`;
  const ENV_CANARY = `wardcanarydotenv${randomBytes(12).toString('hex')}`;
  const CANARIES = [STDIN_CANARY, ARG_CANARY, ENV_CANARY];

  async function start(): Promise<void> {
    server = await startServer(config, { logDestination: pino.destination({ dest: join(tmp, 'server.log'), sync: true, append: true }) });
    owner.WARD_API_URL = server.apiUrl;
    viewer.WARD_API_URL = server.apiUrl;
  }

  async function w(args: string[], env: Record<string, string>, stdin = ''): Promise<Result> {
    const r = await ward(args, env, stdin);
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  async function json(args: string[], env: Record<string, string>, stdin = ''): Promise<any> {
    const r = await w([...args, '--json'], env, stdin);
    assert.equal(r.code, 0, `ward ${args.join(' ')} failed: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'ward-e2e-secrets-'));
    dataDir = join(tmp, 'data');
    // A fixed port, so the CLI's sessions (bound to the API URL) survive the server's restarts.
    const port = await freePort();
    config = resolveServerConfig({ flags: { 'data-dir': dataDir, 'api-listen': `127.0.0.1:${port}`, 'log-level': 'info', roles: 'control' }, env: {} });
    owner = { HOME: tmp, WARD_CONFIG_DIR: join(tmp, 'owner') };
    viewer = { HOME: tmp, WARD_CONFIG_DIR: join(tmp, 'viewer') };
    await start();
    let r = await w(['auth', 'signup', '--email', 'owner@example.com', '--org', 'acme', '--password-stdin'], owner, PASSWORD);
    assert.equal(r.code, 0, r.stderr);
    r = await w(['apps', 'create', 'portal', '--org', 'acme'], owner);
    assert.equal(r.code, 0, r.stderr);
    const code = (await w(['orgs', 'invite', '--org', 'acme', '--role', 'viewer'], owner)).stdout.trim();
    r = await w(['auth', 'signup', '--email', 'viewer@example.com', '--invite', code, '--password-stdin'], viewer, PASSWORD);
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    await server?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('sets from arguments and stdin, lists names and digests, imports a .env, unsets', async () => {
    const set = await json(['secrets', 'set', `ARG_SECRET=${ARG_CANARY}`, 'STDIN_SECRET=-', '-a', 'portal'], owner, `${STDIN_CANARY}\n`);
    assert.deepEqual([set.version, set.changed.sort()], [1, ['ARG_SECRET', 'STDIN_SECRET']]);
    // Nothing runs, so nothing is rolled: `none`, or `deferred` while this server runs without the deploy machinery.
    assert.ok(['none', 'deferred'].includes(set.rollout.status), set.rollout.status);

    const listed = await json(['secrets', 'list', '-a', 'portal'], viewer);
    assert.deepEqual(listed.map((s: any) => s.name), ['ARG_SECRET', 'STDIN_SECRET']);
    const table = await w(['secrets', 'list', '-a', 'portal'], viewer);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NAME +DIGEST +VERSION +CREATED/m);
    assert.match(table.stdout, /STDIN_SECRET +[0-9a-f]{16} +1 /);

    const imported = await json(['secrets', 'import', '-a', 'portal', '--stage'], owner, `# prod\nexport DOTENV_SECRET="${ENV_CANARY}"\nSTDIN_SECRET=${STDIN_CANARY}\n`);
    assert.deepEqual([imported.version, imported.changed, imported.unchanged, imported.staged], [2, ['DOTENV_SECRET'], ['STDIN_SECRET'], true], 'the trailing newline of stdin was not part of the value');

    const human = await w(['secrets', 'unset', 'ARG_SECRET', '-a', 'portal'], owner);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stderr, /Removed ARG_SECRET on portal: secrets version 3\./);
    assert.deepEqual((await json(['secrets', 'list', '-a', 'portal'], owner)).map((s: any) => s.name), ['DOTENV_SECRET', 'STDIN_SECRET']);
  });

  it('refuses clearly, without echoing what might be a value', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['secrets', 'set', ARG_CANARY, '-a', 'portal'], owner, /argument 1 is not NAME=VALUE/],
      [['secrets', 'set', `${ARG_CANARY}-x=1`, '-a', 'portal'], owner, /invalid secret name in argument 1/],
      [['secrets', 'set', 'A=-', 'B=-', '-a', 'portal'], owner, /only one value can come from stdin/],
      [['secrets', 'set', `A=${ARG_CANARY}`, '-a', 'portal'], viewer, /does not allow secret:write/],
      [['secrets', 'unset', 'NOPE', '-a', 'portal'], owner, /has no secret named NOPE/],
      [['secrets', 'import', '-a', 'portal'], owner, /stdin held nothing/],
    ];
    for (const [args, env, error] of cases) {
      const r = await w(args, env);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, error);
    }
    const bad = await w(['secrets', 'import', '-a', 'portal'], owner, `OK=1\n${ENV_CANARY}\n`);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /line 2/);
  });

  it('rotates the master key on the stopped server; it starts again and everything reads', async () => {
    const before = await readFile(join(dataDir, 'master.key'));
    await server!.close();
    server = undefined;
    const r = await json(['secrets', 'rotate-master-key', '--data-dir', dataDir], {});
    assert.equal(r.rewrapped, 2, 'the server root key and the app key');
    assert.notEqual(r.from_key_id, r.to_key_id);
    assert.deepEqual(await readFile(r.retired_file), before);
    assert.notDeepEqual(await readFile(join(dataDir, 'master.key')), before);
    await start();
    const listed = await json(['secrets', 'list', '-a', 'portal'], owner);
    assert.equal(listed.length, 2);
    const set = await json(['secrets', 'set', 'AFTER=rotation', '-a', 'portal'], owner);
    assert.equal(set.version, 4, 'the app key still opens: a new value is sealed with it');
    const verify = await w(['audit', 'list', '--org', 'acme', '--json'], owner);
    assert.ok(JSON.parse(verify.stdout).some((e: any) => e.action === 'secret.import'));
  });

  it('no canary in any output, log line, or file of the data dir and config dirs', async () => {
    await server!.close();
    server = undefined;
    const all = outputs.join('\n');
    for (const c of CANARIES) assert.ok(!all.includes(c), `${c.slice(0, 20)}… was printed`);
    const log = await readFile(join(tmp, 'server.log'), 'utf8');
    assert.match(log, /secrets set/);
    const scan = await scanFiles([tmp], CANARIES.map((c) => Buffer.from(c)));
    assert.deepEqual(scan.hits, [[], [], []], `files: ${(await readdir(dataDir)).join(', ')}`);
    await start();
  });
});
