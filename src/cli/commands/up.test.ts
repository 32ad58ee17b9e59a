import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fakeApi, runCli, tempDir, type FakeApi } from '../testing.ts';

// What `ward up` decides before it would start anything: input mistakes, --stop's pid checks, and an
// existing server with other accounts. The whole quick start, with a real server, is test/e2e/up.test.ts.
describe('ward up (no server started)', () => {
  let dir = '';
  let remove: () => Promise<void> = async () => {};
  let api: FakeApi;
  before(async () => {
    ({ dir, remove } = await tempDir());
    // A server that answers and already has accounts: signup needs an invite.
    api = await fakeApi((req) => {
      if (req.url === '/v1/health') return { status: 200, body: { status: 'ok' } };
      if (req.url === '/v1/auth/signup') return { status: 403, body: { error: { code: 'invite_required', message: 'this server already has accounts' } } };
      return { status: 404, body: { error: { code: 'not_found', message: 'no such route' } } };
    });
  });
  after(async () => {
    await api?.close();
    await remove();
  });
  const env = () => ({ WARD_CONFIG_DIR: join(dir, 'cfg') });

  test('a malformed listen address is a usage error, before anything starts', async () => {
    const r = await runCli(['up', '--data-dir', join(dir, 'a'), '--https-listen', '8443'], { env: env(), cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: --https-listen: invalid listen address "8443"/);
    assert.match(r.stderr, /Hint: write HOST:PORT/);
    assert.equal(existsSync(join(dir, 'a')), false);
  });

  test('--stop with nothing started says so; a pid file naming another process is not trusted', async () => {
    const none = await runCli(['up', '--stop', '--data-dir', join(dir, 'b'), '--json'], { env: env(), cwd: dir });
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(JSON.parse(none.stdout), { stopped: false, pid: null });
    // This test's own process is alive but is no `ward server` of that data dir: it must not be signalled.
    await mkdir(join(dir, 'c'), { recursive: true });
    await writeFile(join(dir, 'c', 'server.pid'), `${process.pid}\n`);
    const other = await runCli(['up', '--stop', '--data-dir', join(dir, 'c')], { env: env(), cwd: dir });
    assert.equal(other.code, 0, other.stderr);
    assert.match(other.stderr, /No server started by ward up is running for /);
    assert.equal(existsSync(join(dir, 'c', 'server.pid')), false);
  });

  test('a server with accounts of its own and no login here: not_logged_in, and no password file is left', async () => {
    const port = new URL(api.url).port;
    const r = await runCli(['up', '--data-dir', join(dir, 'd'), '--api-listen', `127.0.0.1:${port}`], { env: env(), cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--> Using the Ward server at http:\/\/127\.0\.0\.1:\d+ \(not started by ward up\)/);
    assert.match(r.stderr, /Error: the server at http:\/\/127\.0\.0\.1:\d+ has accounts already, and this CLI is not logged in to it/);
    assert.match(r.stderr, /Hint: log in with `ward auth login --email EMAIL`/);
    assert.equal(existsSync(join(dir, 'd', 'up', 'password')), false);
    assert.equal(existsSync(join(dir, 'd', 'up', 'account.json')), false);
  });
});
