// `ward up` end to end, as the README's main command: the real CLI as a subprocess starts a real
// `ward server` in the background (agent with crun, edge with Ward's local CA) on a temp data dir and
// non-default ports, signs up, builds examples/hello, deploys it with two instances, and the app answers
// over HTTPS with the local CA. A second run reuses all of it. `ward up --stop` stops the server and its
// instances and takes down the host network; after() does the same if a test failed midway.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run } from '../../src/exec/index.ts';
import { cannotRunContainers } from '../integration/runtime-harness.ts';
import { freePort } from '../fixtures/images.ts';
import { ROOT, WARD, type Result } from './ward-cli.ts';

/** otherWard says why this test cannot start a host agent: one already runs here (it owns /run/ward). */
function otherWard(): string | false {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv.some((a) => a.endsWith('bin/ward.ts')) || !argv.includes('server')) continue;
    // A control plane alone (--roles control) has no agent and no host network: it is no obstacle.
    const i = argv.indexOf('--roles');
    const roles = i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith('--roles='))?.slice('--roles='.length);
    if (roles !== undefined && !roles.split(',').includes('agent')) continue;
    return `a ward server with an agent already runs on this host (pid ${pid}); one agent per host`;
  }
  const left = existsSync('/run/ward/runtime/instances') ? readdirSync('/run/ward/runtime/instances') : [];
  return left.length > 0 ? 'instances of another Ward agent are running on this host' : false;
}

const skip = cannotRunContainers();

/** up runs the real CLI (no shell) with a timeout long enough for a first build and deploy. */
function cli(args: string[], env: Record<string, string>, timeoutMs = 300_000): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [WARD, ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** get asks the edge on 127.0.0.1 for https://hello.localhost:PORT/ (SNI and Host), trusting only `ca`. */
function get(port: number, ca: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', servername: 'hello.localhost', headers: { host: `hello.localhost:${port}` }, ...(ca ? { ca } : {}), agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

describe('ward up (real server, crun, edge, local CA)', { skip }, () => {
  /** explain is a failed run's stderr and the end of the server's log, for the assertion message. */
  const explain = async (r: Result) => `${r.stderr}\n--- server.log (end) ---\n${(await readFile(join(dataDir, 'server.log'), 'utf8').catch(() => '')).split('\n').slice(-40).join('\n')}`;
  let tmp = '';
  let dataDir = '';
  let env: Record<string, string> = {};
  let ports = { api: 0, http: 0, https: 0 };
  let listen: string[] = [];
  /** busy is why the tests cannot run: another agent kept this host (checked in before(), after waiting); they fail saying so. */
  let busy: string | false = false;

  before(async () => {
    // Another suite's short-lived `ward server` (test/e2e/cli.test.ts) may hold the host for a moment: wait.
    const until = Date.now() + 120_000;
    while ((busy = otherWard()) && Date.now() < until) await new Promise((r) => setTimeout(r, 1000));
    if (busy) return;
    tmp = await mkdtemp(join(tmpdir(), 'ward-up-'));
    dataDir = join(tmp, 'data');
    env = { HOME: tmp, WARD_CONFIG_DIR: join(tmp, 'cfg') };
    ports = { api: await freePort(), http: await freePort(), https: await freePort() };
    listen = ['--data-dir', dataDir, '--api-listen', `127.0.0.1:${ports.api}`, '--http-listen', `127.0.0.1:${ports.http}`, '--https-listen', `127.0.0.1:${ports.https}`];
  });

  after(async () => {
    if (!dataDir) return;
    try {
      // Whatever a failed test left: the server (by its pid, with its instances) and the host network.
      const pid = Number(await readFile(join(dataDir, 'server.pid'), 'utf8').catch(() => ''));
      if (pid > 1) {
        const r = await cli(['up', '--stop', '--data-dir', dataDir], env, 180_000);
        if (r.code !== 0) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // Gone already.
          }
        }
      }
    } finally {
      // The agent's cgroup parents stay behind empty; rmdir removes only empty ones.
      for (const c of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
        try {
          rmdirSync(join('/sys/fs/cgroup', c, 'ward'));
        } catch {
          // Not there, or not empty (then something else uses it).
        }
      }
      // And the agent's run directory: the runtime's tmpfs once no instance is in it, then the empty folders.
      if (existsSync('/run/ward/runtime/instances') && readdirSync('/run/ward/runtime/instances').length === 0) {
        await run(['umount', '/run/ward/runtime'], { allowFailure: true });
      }
      for (const d of ['runtime/instances', 'runtime/crun', 'runtime', 'network', '']) {
        try {
          rmdirSync(join('/run/ward', d));
        } catch {
          // Not there, or in use.
        }
      }
      await rm(tmp, { recursive: true, force: true });
    }
  });

  test('first run: starts a server, signs up, builds and deploys hello, and it answers over HTTPS with the local CA', async () => {
    if (busy) assert.fail(`${busy}: stop it, then run this suite again`);
    const r = await cli(['up', ...listen, '--json'], env);
    assert.equal(r.code, 0, await explain(r));
    const s = JSON.parse(r.stdout);
    assert.equal(s.url, `https://hello.localhost:${ports.https}/`);
    assert.equal(s.deployed, true);
    assert.equal(s.server.started, true);
    assert.equal(s.release, 1);
    assert.equal(s.ca_file, join(dataDir, 'edge', 'local-ca', 'ca.crt'));
    assert.match(r.stderr, /--> Started a Ward server in the background \(pid \d+/);
    assert.match(r.stderr, /--> Signed up admin@ward\.localhost, owner of org local/);
    assert.match(r.stderr, /--> Release v1 created \(\w+\): starting 2 instances/);
    assert.match(r.stderr, /--> Health checks passing 2\/2/);
    assert.match(r.stderr, /answered 200: Hello from Ward! Release v1, instance ins_/);

    const ca = await readFile(s.ca_file, 'utf8');
    const answer = await get(ports.https, ca);
    assert.equal(answer.status, 200);
    assert.match(answer.body, /^Hello from Ward! Release v1, instance ins_\w+/);
    // Only the local CA makes it trusted: the system's CAs do not know it.
    await assert.rejects(get(ports.https, undefined), /self[- ]signed|unable to (get|verify)/i);

    // The password is in a 0600 file and nowhere else: not on the terminal, not in the server's log.
    assert.equal((await stat(s.password_file)).mode & 0o777, 0o600);
    const password = (await readFile(s.password_file, 'utf8')).trim();
    assert.ok(password.length >= 24);
    assert.ok(!r.stdout.includes(password) && !r.stderr.includes(password));
    assert.ok(!(await readFile(join(dataDir, 'server.log'), 'utf8')).includes(password));
    assert.equal((await stat(join(dataDir, 'edge', 'local-ca', 'ca.key'))).mode & 0o777, 0o600);
  });

  test('second run: reuses the server, the account and the app, and does not deploy the same image again', async () => {
    if (busy) assert.fail(`${busy}: stop it, then run this suite again`);
    const pid = Number(await readFile(join(dataDir, 'server.pid'), 'utf8'));
    const r = await cli(['up', ...listen, '--json'], env);
    assert.equal(r.code, 0, await explain(r));
    const s = JSON.parse(r.stdout);
    assert.equal(s.server.started, false);
    assert.equal(s.server.pid, pid);
    assert.equal(s.deployed, false);
    assert.equal(s.release, 1);
    assert.match(r.stderr, /--> Logged in as admin@ward\.localhost/);
    assert.match(r.stderr, /--> App hello exists/);
    assert.match(r.stderr, /already runs this image on 2 healthy instances; not deploying it again/);

    // ward up logged this CLI in (it had no session): ward status works without more ado.
    const st = await cli(['status', '-a', 'hello', '--json'], env, 30_000);
    assert.equal(st.code, 0, st.stderr);
    const running = JSON.parse(st.stdout).instances.filter((i: { state: string; health: string }) => i.state === 'running' && i.health === 'passing');
    assert.equal(running.length, 2);
  });

  test('a changed app is a new image: ward up deploys it as release 2 with the app\'s strategy (rolling)', async () => {
    if (busy) assert.fail(`${busy}: stop it, then run this suite again`);
    const app = join(tmp, 'hello-v2');
    await cp(join(ROOT, 'examples', 'hello'), app, { recursive: true });
    const server = join(app, 'server.js');
    await writeFile(server, (await readFile(server, 'utf8')).replace('Hello from Ward!', 'Hello again from Ward!'));
    const r = await cli(['up', ...listen, '--app-dir', app, '--json'], env);
    assert.equal(r.code, 0, await explain(r));
    const s = JSON.parse(r.stdout);
    assert.equal(s.deployed, true);
    assert.equal(s.release, 2);
    assert.match(r.stderr, /--> Release v2 created \(rolling\)/);
    const answer = await get(ports.https, await readFile(s.ca_file, 'utf8'));
    assert.match(answer.body, /^Hello again from Ward! Release v2, instance ins_/);
  });

  test('ward up --stop stops the server and its instances; a second --stop says nothing runs', async () => {
    if (busy) assert.fail(`${busy}: stop it, then run this suite again`);
    const pid = Number(await readFile(join(dataDir, 'server.pid'), 'utf8'));
    const r = await cli(['up', '--stop', '--data-dir', dataDir], env, 180_000);
    assert.equal(r.code, 0, await explain(r));
    assert.match(r.stderr, /--> Stopping the Ward server \(pid \d+\) and its instances/);
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    assert.deepEqual(existsSync('/run/ward/runtime/instances') ? readdirSync('/run/ward/runtime/instances') : [], []);
    await assert.rejects(get(ports.https, undefined), /ECONNREFUSED/);
    const again = await cli(['up', '--stop', '--data-dir', dataDir], env, 30_000);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /No server started by ward up is running/);
  });
});
