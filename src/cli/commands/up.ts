import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isUserError, UserError } from '../../core/index.ts';
// server-config.ts alone: the config index would load the app-config schema (zod) into every command.
import { formatListen, parseListen, type Listen } from '../../config/server-config.ts';
import { processExists as alive, start } from '../../exec/index.ts';
import type { SignupAnswer, LoginAnswer } from '../api-types.ts';
import { apiPath, createApiClient } from '../client.ts';
import { defineCommand, jsonFlag, type Context } from '../command.ts';
import { createOutput } from '../output.ts';
import type { ApiInstance, ApiRelease } from './deploy-fields.ts';
import deploy from './deploy.ts';

/**
 * `ward up`: the quick start. It makes sure a single-node Ward runs for a data directory (starting one in
 * the background when nothing answers), that an account exists (made on first run, its password kept in a
 * 0600 file), that the example app is built, deployed with two health-checked instances, and answers over
 * HTTPS through the edge with a certificate from Ward's local CA; then it says where everything is.
 * Every step checks before it acts, so a second run reuses the server, account and app, and does not
 * deploy an image that already runs. docs/quickstart.md describes it for users.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** WARD_BIN is the executable `ward up` starts the server with (this checkout's). */
const WARD_BIN = join(ROOT, 'bin', 'ward.ts');
/** APP is the example app's name (and its ward.toml's `app`). */
const APP = 'hello';
const EMAIL = 'admin@ward.localhost';
const ORG = 'local';
const SERVER_START_MS = 90_000;
const HTTPS_WAIT_MS = 120_000;

/** UpFiles are where `ward up` keeps its state, all under the data directory. */
interface UpFiles {
  dataDir: string;
  pid: string;
  log: string;
  /** dir holds the account (account.json), its password (password, 0600) and the built archive. */
  dir: string;
  password: string;
  account: string;
  archive: string;
}

function upFiles(dataDir: string): UpFiles {
  const dir = join(dataDir, 'up');
  return {
    dataDir,
    pid: join(dataDir, 'server.pid'),
    log: join(dataDir, 'server.log'),
    dir,
    password: join(dir, 'password'),
    account: join(dir, 'account.json'),
    archive: join(dir, `${APP}.oci.tar`),
  };
}

export default defineCommand({
  name: 'up',
  summary: 'Quick start: run a single-node Ward and the example app, and print its HTTPS URL',
  description: [
    'Starts `ward server` in the background for --data-dir unless one already answers at --api-listen',
    '(log in <data dir>/server.log, pid in <data dir>/server.pid), with certificates from Ward\'s own local',
    'CA (--acme-directory local). On first run it signs up an account and keeps its generated password in',
    '<data dir>/up/password (0600; never printed). It creates the app "hello" if missing, builds',
    'examples/hello into an OCI image from this machine\'s Node.js, deploys it (two instances, health',
    'checks) unless that image already runs, waits until https://hello.localhost/ answers through the',
    'edge, and prints the URL, the CA certificate to trust and how to log in. Safe to run again.',
    'The agent runs instances with crun: run it as root. `ward up --stop` stops the server it started,',
    'and the instances with it.',
  ].join('\n'),
  examples: ['ward up', 'ward up --data-dir /tmp/ward --api-listen 127.0.0.1:4281 --http-listen 127.0.0.1:8080 --https-listen 127.0.0.1:8443', 'ward up --stop'],
  flags: {
    'data-dir': { type: 'string', placeholder: 'DIR', description: 'Where the server keeps its state (default .ward-dev)' },
    'api-listen': { type: 'string', placeholder: 'HOST:PORT', description: 'The API address (default 127.0.0.1:4280)' },
    'http-listen': { type: 'string', placeholder: 'HOST:PORT', description: 'The edge\'s plain HTTP address (default :80)' },
    'https-listen': { type: 'string', placeholder: 'HOST:PORT', description: 'The edge\'s HTTPS address (default :443)' },
    'app-dir': { type: 'string', placeholder: 'DIR', description: 'The app to build and deploy as "hello" (default examples/hello)' },
    stop: { type: 'boolean', description: 'Stop the server `ward up` started for --data-dir, and its instances' },
    json: jsonFlag,
  },
  check({ flags }) {
    for (const f of ['api-listen', 'http-listen', 'https-listen'] as const) {
      const v = flags[f];
      if (v === undefined) continue;
      try {
        parseListen(v);
      } catch (e) {
        throw new UserError('usage', `--${f}: ${(e as Error).message}`, { hint: 'write HOST:PORT, like 127.0.0.1:8443' });
      }
    }
  },
  async run(ctx, { flags }) {
    const files = upFiles(resolve(ctx.cwd, flags['data-dir'] ?? '.ward-dev'));
    if (flags.stop) return stopServer(ctx, files);

    const started = Date.now();
    const apiListen = parseListen(flags['api-listen'] ?? '127.0.0.1:4280');
    const httpsListen = parseListen(flags['https-listen'] ?? ':443');
    const apiUrl = `http://${clientHost(apiListen)}:${apiListen.port}`;
    const step = (m: string) => ctx.out.info(`--> ${m}`);
    await mkdir(files.dir, { recursive: true, mode: 0o700 });

    // 1. The server.
    const server = await ensureServer(ctx, files, apiUrl, [
      '--api-listen', formatListen(apiListen),
      '--http-listen', flags['http-listen'] ?? ':80',
      '--https-listen', formatListen(httpsListen),
    ], step);

    // 2. The account, and a client that uses it.
    const account = await ensureAccount(ctx, files, apiUrl, step);
    const api = createApiClient({ env: { WARD_API_URL: apiUrl, WARD_API_TOKEN: account.token }, session: ctx.session, timeoutMs: 60_000 });

    // 3. The app.
    const existing = await api.get<{ app: { name: string } }>(apiPath`/v1/apps/${APP}`).catch((e: unknown) => {
      if (isUserError(e) && e.code === 'not_found') return undefined;
      throw e;
    });
    if (existing) step(`App ${APP} exists`);
    else {
      await api.post(apiPath`/v1/apps`, { name: APP });
      step(`Created app ${APP}`);
    }

    // 4. The image.
    const appDir = resolve(ctx.cwd, flags['app-dir'] ?? join(ROOT, 'examples', APP));
    const { buildNodeImage } = await import('../../build/index.ts');
    const buildStart = Date.now();
    const built = await buildNodeImage({ appDir }, files.archive);
    step(`Built ${shown(ctx, appDir)} into ${built.digest} (${Math.round(built.size / 1e6)} MB) in ${seconds(buildStart)}s`);

    // 5. The deploy, unless this image already runs healthy.
    const status = await api.get<{ release: ApiRelease | null; instances: ApiInstance[] }>(apiPath`/v1/apps/${APP}/status`);
    // The app folder's ward.toml is in the image too, so a changed config is a changed digest as well.
    const serving = status.instances.filter((i) => i.release === status.release?.version && i.desired_state === 'running');
    const healthy = serving.filter((i) => i.state === 'running' && i.health === 'passing').length;
    let deployed = false;
    if (status.release && status.release.digest === built.digest && status.release.status === 'succeeded' && healthy > 0 && healthy === serving.length) {
      step(`Release v${status.release.version} already runs this image on ${healthy} healthy instances; not deploying it again`);
    } else {
      // `ward deploy` itself, so the steps look the same; its table goes to stderr, our summary is the result.
      // No --strategy: the app's ward.toml [deploy] decides (rolling for the example, the default).
      const sub: Context = { ...ctx, api, cwd: appDir, out: createOutput(ctx.io.stderr, ctx.io.stderr, { json: false }) };
      await deploy.run(sub, { flags: { app: APP, config: join(appDir, 'ward.toml'), image: `oci-archive:${built.archive}`, strategy: undefined, detach: false, json: false }, args: {}, app: undefined });
      deployed = true;
    }
    const current = await api.get<{ release: ApiRelease | null }>(apiPath`/v1/apps/${APP}/status`);

    // 6. HTTPS through the edge, with the local CA.
    const { LOCAL_CA_CERT_FILE, localCaDir } = await import('../../edge/index.ts');
    // The edge module says where its local CA keeps the certificate people trust.
    const caFile = join(localCaDir(files.dataDir), LOCAL_CA_CERT_FILE);
    const ca = await readFile(caFile, 'utf8').catch(() => undefined);
    const port = httpsListen.port;
    const url = `https://${APP}.localhost${port === 443 ? '' : `:${port}`}/`;
    step(`Waiting for ${url} to answer through the edge`);
    const answer = await waitForHttps(url, clientHost(httpsListen), port, ca, files);
    step(`${url} answered 200: ${answer.trim()}`);

    const loginHint = `ward auth login --email ${account.email} --password-stdin < ${shown(ctx, files.password)}`;
    const summary = {
      url,
      ca_file: ca === undefined ? null : caFile,
      api_url: apiUrl,
      app: APP,
      release: current.release?.version ?? null,
      deployed,
      email: account.email,
      password_file: account.ownPassword ? files.password : null,
      logged_in: account.savedSession,
      server: { pid: server.pid, started: server.started, log: files.log, data_dir: files.dataDir },
      duration_ms: Date.now() - started,
    };
    ctx.out.result(summary, () => {
      const caPath = shown(ctx, caFile);
      ctx.out.line('');
      ctx.out.line(`Ward is up (${seconds(started)}s). The example app answers at ${url}`);
      ctx.out.line('');
      if (ca !== undefined) {
        ctx.out.line(`Its certificate comes from Ward's local CA: ${caPath}. To trust it:`);
        ctx.out.line(`  curl:     curl --cacert ${caPath} ${url}`);
        ctx.out.line(`  system:   sudo cp ${caPath} /usr/local/share/ca-certificates/ward-local-ca.crt && sudo update-ca-certificates`);
        ctx.out.line('  browsers: import it as a certificate authority (Firefox: Settings > Privacy & Security > Certificates >');
        ctx.out.line('            View Certificates > Authorities > Import; Chrome: chrome://certificate-manager > Local certificates)');
        ctx.out.line('');
      }
      ctx.out.line(`API:      ${apiUrl}${server.pid ? ` (server pid ${server.pid}, log ${shown(ctx, files.log)})` : ''}`);
      if (account.ownPassword) ctx.out.line(`Log in:   ${loginHint}${account.savedSession ? '   (this CLI is logged in already)' : ''}`);
      ctx.out.line(`Then:     ward status -a ${APP}; ward logs -a ${APP}; ward releases -a ${APP}`);
      ctx.out.line(`Stop:     ward up --stop${flags['data-dir'] ? ` --data-dir ${flags['data-dir']}` : ''}`);
    });
  },
});

/** clientHost is the address a client on this machine uses for a listen address (all interfaces → loopback). */
function clientHost(l: Listen): string {
  if (l.host === '::' || l.host === '0.0.0.0') return '127.0.0.1';
  return l.host.includes(':') ? `[${l.host}]` : l.host;
}

function seconds(since: number): string {
  return ((Date.now() - since) / 1000).toFixed(1);
}

/** shown prints a path relative to the working directory when it is inside it (shorter to copy). */
function shown(ctx: Context, path: string): string {
  const r = relative(ctx.cwd, path);
  return r && !r.startsWith('..') ? r : path;
}

async function healthy(apiUrl: string): Promise<boolean> {
  try {
    const r = await fetch(`${apiUrl}/v1/health`, { signal: AbortSignal.timeout(2000) });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

/** ourServer returns the pid in the pid file when that process is alive and is a `ward server` of this data dir. */
async function ourServer(files: UpFiles): Promise<number | undefined> {
  const text = await readFile(files.pid, 'utf8').catch(() => undefined);
  const pid = Number(text?.trim());
  if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
  // The pid may have been reused by something else since: check its command line before trusting it.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const argv = cmdline.split('\0');
  return argv.includes('server') && argv.includes(files.dataDir) ? pid : undefined;
}

/**
 * ensureServer finds the server answering at apiUrl, or starts one: `ward server` detached from this
 * terminal (it outlives `ward up`), output appended to server.log, its pid in server.pid.
 */
async function ensureServer(ctx: Context, files: UpFiles, apiUrl: string, listen: string[], step: (m: string) => void): Promise<{ pid: number | undefined; started: boolean }> {
  if (await healthy(apiUrl)) {
    const pid = await ourServer(files);
    step(`Using the Ward server at ${apiUrl}${pid ? ` (pid ${pid})` : ' (not started by ward up)'}`);
    return { pid, started: false };
  }
  let pid = await ourServer(files);
  if (pid === undefined) {
    if (process.getuid?.() !== 0) {
      throw new UserError('unavailable', 'ward up starts a server whose agent runs instances with crun, which needs root', {
        hint: 'run it as root (sudo npx ward up), or start `ward server` yourself and point ward up at it with --api-listen',
      });
    }
    const argv = [process.execPath, WARD_BIN, 'server', '--data-dir', files.dataDir, ...listen, '--acme-directory', 'local', '--stop-instances-on-exit'] as const;
    const log = openSync(files.log, 'a', 0o600);
    try {
      const child = start(argv, { detached: true, stdio: ['ignore', log, log], cwd: files.dataDir, env: { ...ctx.env } as NodeJS.ProcessEnv });
      child.unref();
      pid = child.pid;
    } finally {
      closeSync(log);
    }
    if (pid === undefined) throw new UserError('up_failed', `could not start ${WARD_BIN} server`, { hint: `see ${files.log}` });
    await writeFile(files.pid, `${pid}\n`, { mode: 0o644 });
    step(`Started a Ward server in the background (pid ${pid}, log ${shown(ctx, files.log)})`);
  } else {
    step(`Waiting for the Ward server that is starting (pid ${pid})`);
  }
  const end = Date.now() + SERVER_START_MS;
  for (;;) {
    if (await healthy(apiUrl)) break;
    if (!alive(pid)) {
      await rm(files.pid, { force: true });
      throw new UserError('up_failed', `the Ward server exited before it answered at ${apiUrl}:\n${await tail(files.log)}`, { hint: `the whole log is ${files.log}` });
    }
    if (Date.now() > end) throw new UserError('up_failed', `the Ward server (pid ${pid}) did not answer at ${apiUrl} within ${SERVER_START_MS / 1000}s:\n${await tail(files.log)}`, { hint: `see ${files.log}; ward up --stop stops it` });
    await sleep(250);
  }
  step(`Ward server answers at ${apiUrl}`);
  return { pid, started: true };
}

/** tail returns the last lines of the server log, indented, for an error message. */
async function tail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).map((l) => `  ${l}`).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Account {
  email: string;
  token: string;
  /** ownPassword: the account is ward up's, its password in the password file. */
  ownPassword: boolean;
  /** savedSession: the CLI's stored session was written (it had none, or one for this server). */
  savedSession: boolean;
}

/**
 * ensureAccount logs in as ward up's account, signing it up first on a server with no accounts. The
 * password is random, written 0600 before the signup (so it is never lost) and never printed. On a
 * server with other accounts, the user's own CLI session for that server is used instead.
 */
async function ensureAccount(ctx: Context, files: UpFiles, apiUrl: string, step: (m: string) => void): Promise<Account> {
  const anonymous = createApiClient({ env: { WARD_API_URL: apiUrl }, session: { path: '', read: async () => undefined, write: async () => {}, clear: async () => false } });
  const saved = await readFile(files.account, 'utf8').then((t) => JSON.parse(t) as { email: string }, () => undefined);
  let email: string;
  let token: string;
  let expires: string;
  if (saved) {
    email = saved.email;
    const password = (await readFile(files.password, 'utf8')).trim();
    const r = await anonymous.post<LoginAnswer>('/v1/auth/login', { email, password }, { auth: false }).catch((e: unknown) => {
      if (!isUserError(e) || e.code !== 'invalid_credentials') throw e;
      throw new UserError('invalid_credentials', `the server at ${apiUrl} does not accept ward up's account ${email} (from ${files.account})`, {
        hint: `is it another server than the one ward up made? Otherwise remove ${files.dir} to sign up again on a new data dir`,
      });
    });
    token = r.session.token;
    expires = r.session.expires_at;
    step(`Logged in as ${email}`);
  } else {
    const password = randomBytes(24).toString('base64url');
    // Both files before the signup: if ward up dies right after it, the next run can still log in.
    await rm(files.password, { force: true });
    const fh = await open(files.password, 'wx', 0o600);
    try {
      await fh.writeFile(`${password}\n`);
    } finally {
      await fh.close();
    }
    await writeFile(files.account, JSON.stringify({ email: EMAIL, org: ORG }) + '\n', { mode: 0o600 });
    try {
      const r = await anonymous.post<SignupAnswer>('/v1/auth/signup', { email: EMAIL, password, org: ORG }, { auth: false });
      email = r.user.email;
      token = r.session.token;
      expires = r.session.expires_at;
    } catch (e) {
      await rm(files.account, { force: true });
      await rm(files.password, { force: true });
      if (isUserError(e) && e.code === 'invite_required') return useOwnSession(ctx, apiUrl, step);
      throw e;
    }
    step(`Signed up ${email}, owner of org ${ORG} (password in ${shown(ctx, files.password)}, 0600)`);
  }
  // Log the CLI in too, unless that would replace a session for another server.
  const current = await ctx.session.read();
  const envUrl = ctx.env.WARD_API_URL?.trim().replace(/\/+$/, '');
  let savedSession = false;
  if ((!current || current.api_url === apiUrl) && (!envUrl || envUrl === apiUrl) && !ctx.env.WARD_API_TOKEN) {
    await ctx.session.write({ api_url: apiUrl, token, email, expires_at: expires });
    savedSession = true;
  }
  return { email, token, ownPassword: true, savedSession };
}

async function useOwnSession(ctx: Context, apiUrl: string, step: (m: string) => void): Promise<Account> {
  const target = await ctx.api.target();
  if (target.credential && target.apiUrl === apiUrl) {
    step(`The server has accounts already; using your CLI login${target.credential.email ? ` (${target.credential.email})` : ''}`);
    return { email: target.credential.email ?? 'you', token: target.credential.token, ownPassword: false, savedSession: false };
  }
  throw new UserError('not_logged_in', `the server at ${apiUrl} has accounts already, and this CLI is not logged in to it`, {
    hint: `log in with \`ward auth login --email EMAIL\` (WARD_API_URL=${apiUrl}), then run ward up again`,
  });
}

/**
 * waitForHttps asks the edge for the app's URL until it answers 200, trusting the local CA. The name is
 * sent in SNI and Host but the connection goes to the edge's own address: *.localhost is loopback for
 * browsers and curl, not always for the system resolver.
 */
async function waitForHttps(url: string, host: string, port: number, ca: string | undefined, files: UpFiles): Promise<string> {
  const u = new URL(url);
  const end = Date.now() + HTTPS_WAIT_MS;
  let last = 'no answer yet';
  for (;;) {
    const r = await httpsGet(u, host.replace(/^\[|\]$/g, ''), port, ca);
    if ('status' in r && r.status === 200) return r.body;
    last = 'status' in r ? `HTTP ${r.status}: ${r.body.trim().slice(0, 200)}` : r.error;
    if (Date.now() > end) {
      throw new UserError('up_failed', `${url} did not answer 200 within ${HTTPS_WAIT_MS / 1000}s; last: ${last}`, {
        hint: `is the edge listening (see ${files.log}; another process on the port?) Choose other ports with --http-listen and --https-listen`,
      });
    }
    await sleep(500);
  }
}

function httpsGet(u: URL, host: string, port: number, ca: string | undefined): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolvePromise) => {
    const req = request({ host, port, path: u.pathname, servername: u.hostname, headers: { host: u.host }, ...(ca ? { ca } : {}), timeout: 5000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 4096) body += c;
      });
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
      res.on('error', (e) => resolvePromise({ error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolvePromise({ error: e.message }));
    req.end();
  });
}

/** stopServer ends the server ward up started for this data dir (SIGTERM: it stops its instances, then exits). */
async function stopServer(ctx: Context, files: UpFiles): Promise<void> {
  const pid = await ourServer(files);
  if (pid === undefined) {
    await rm(files.pid, { force: true });
    ctx.out.result({ stopped: false, pid: null }, () => ctx.out.info(`No server started by ward up is running for ${files.dataDir}.`));
    return;
  }
  ctx.out.info(`--> Stopping the Ward server (pid ${pid}) and its instances`);
  process.kill(pid, 'SIGTERM');
  // Instances get their kill_timeout (default 5s) each, in parallel; allow for a slow one.
  const end = Date.now() + 120_000;
  while (alive(pid)) {
    if (Date.now() > end) throw new UserError('up_failed', `the Ward server (pid ${pid}) has not stopped after 120s`, { hint: `see ${files.log}; kill ${pid} ends it at once` });
    await sleep(200);
  }
  await rm(files.pid, { force: true });
  const network = await takeDownHostNetwork(files);
  if (network) ctx.out.info(`--> Took down the host network it had set up (${network})`);
  ctx.out.result({ stopped: true, pid }, () => ctx.out.info(`--> Stopped. State stays in ${shown(ctx, files.dataDir)}; ward up starts it again.`));
}

/** RUN_DIR is the agent's run directory (src/server/agent-role.ts: /run/ward). */
const RUN_DIR = '/run/ward';

/**
 * takeDownHostNetwork removes what the agent set up on the host and keeps up while it is away (org
 * bridges, Ward's nftables tables, the WireGuard interface and its wireguard-go), once no instance is
 * left: `ward up --stop` leaves nothing running. The next start sets it up again from the records in
 * the database. It returns what it removed, or undefined when instances remain (then it leaves all).
 */
async function takeDownHostNetwork(files: UpFiles): Promise<string | undefined> {
  const left = await readdir(join(RUN_DIR, 'runtime', 'instances')).catch(() => []);
  if (left.length > 0) return undefined;
  const { BridgeNetwork, WireGuardDevice } = await import('../../agent/network/index.ts');
  const removed: string[] = [];
  const network = new BridgeNetwork({ stateDir: join(RUN_DIR, 'network') });
  if ((await network.orgs()).length > 0) removed.push('bridges');
  await network.close();
  removed.push('nftables tables');
  const wgDir = join(files.dataDir, 'agent', 'wireguard');
  for (const f of await readdir(wgDir).catch(() => [])) {
    const name = /^([a-z][a-z0-9-]{1,14})\.pid$/.exec(f)?.[1];
    if (!name) continue;
    await new WireGuardDevice({ name, stateDir: wgDir, listenPort: 51820 }).down();
    removed.push(`WireGuard ${name}`);
  }
  return removed.join(', ');
}
