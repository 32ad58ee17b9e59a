// bench/edge: Ward's edge against Caddy and nginx as TLS reverse proxies to the same backend, and
// against the backend itself (the limit), measured with wrk on this machine.
//
//   node bench/edge/run.ts [--duration 10] [--connections 64] [--rounds 1] [--workers N]
//
// Needs Debian's caddy, nginx and wrk (scripts/bootstrap --test installs them). Everything listens on
// 127.0.0.1 and is stopped by its pid at the end, even on failure; the temp dir is removed.
//
// For each target it runs:
//   keep-alive   wrk -t2 -cC -dD --latency over TLS 1.3 (small body): req/s and p99
//   handshakes   the same with `Connection: close`, so every request is a new TLS connection: req/s
// Targets: ward (EdgeCluster, one worker per core), caddy (Debian 2.6, reverse_proxy), nginx (one worker
// per core, upstream keepalive), direct (wrk to the backend's own TLS port). The backend is nginx with one
// worker answering a 23-byte body, the cheapest backend there is, so the proxies' own cost dominates.
// Goal (issue 6): ward ≥ 1.5× caddy keep-alive req/s, p99 no worse than caddy's, handshakes ≥ caddy's.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import type { ChildProcess } from 'node:child_process';
import { run, start } from '../../src/exec/index.ts';
import { EdgeCluster } from '../../src/edge/cluster.ts';
import { selfSignedCertificate } from '../../src/edge/index.ts';
import { freePort } from '../../test/fixtures/pebble.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const DURATION = arg('duration', 10);
const CONNECTIONS = arg('connections', 64);
const ROUNDS = arg('rounds', 1);
const WORKERS = arg('workers', availableParallelism());
const HANDSHAKE_SECONDS = Math.max(3, Math.round(DURATION / 2));

interface Result {
  rps: number;
  p99ms: number;
  errors: string;
  /** cpuUs is the target's CPU time (user + system, all its processes) per request, in microseconds. */
  cpuUs: number;
}

// CPU per request is steadier than req/s on a machine others load: it prices the work, not the share of
// the cores the target happened to get. Read from /proc: utime + stime of the target's processes.
const TICK_US = 1_000_000 / 100; // USER_HZ is 100 on Linux
async function cpuTicks(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return total;
}
/** processTree is a pid and its descendants (nginx's and caddy's workers). */
async function processTree(root: number): Promise<number[]> {
  const parent = new Map<number, number>();
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const stat = await readFile(`/proc/${d}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid) parent.set(Number(d), ppid);
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, pp] of parent) if (pp === out[i]) out.push(pid);
  return out;
}

function parseWrk(out: string): Omit<Result, 'cpuUs'> {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const m = /\s99%\s+([\d.]+)(us|ms|s)\b/.exec(out);
  const p99ms = m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : NaN;
  const errors = [/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[0], /Socket errors: [^\n]+/.exec(out)?.[0]].filter(Boolean).join('; ');
  return { rps, p99ms, errors };
}

async function wrk(port: number, seconds: number, close: boolean, pids: readonly number[] = []): Promise<Result> {
  const argv: [string, ...string[]] = ['wrk', '-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency'];
  if (close) argv.push('-H', 'Connection: close');
  argv.push(`https://localhost:${port}/`);
  const before = await cpuTicks(pids);
  const r = await run(argv, { timeoutMs: (seconds + 30) * 1000 });
  const used = (await cpuTicks(pids)) - before;
  const w = parseWrk(r.stdout);
  return { ...w, cpuUs: w.rps > 0 ? (used * TICK_US) / (w.rps * seconds) : NaN };
}

function check(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, servername: 'localhost', path: '/', headers: { host: 'localhost' }, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`port ${port}: status ${res.statusCode}: ${body}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitFor(port: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await check(port);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const procs: ChildProcess[] = [];
async function stopAll(): Promise<void> {
  for (const p of procs) {
    if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      process.kill(p.pid, 'SIGTERM');
      const t = setTimeout(() => p.pid !== undefined && p.exitCode === null && process.kill(p.pid, 'SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
  }
}

const dir = await mkdtemp(join(tmpdir(), 'ward-bench-edge-'));
let ward: EdgeCluster | undefined;
try {
  const kc = await selfSignedCertificate({ commonName: 'localhost', names: ['localhost'] });
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  await writeFile(cert, kc.certPem);
  await writeFile(key, kc.keyPem, { mode: 0o600 });
  const [backendPort, backendTls, wardPort, caddyPort, nginxPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const tlsCommon = `ssl_certificate ${cert};\n    ssl_certificate_key ${key};\n    ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_session_cache shared:SSL:10m;\n    ssl_session_tickets on;`;

  // The backend: nginx, one worker, a fixed small body on plain HTTP (for the proxies) and TLS (direct).
  await writeFile(
    join(dir, 'backend.conf'),
    `worker_processes 1;\ndaemon off;\npid ${dir}/backend.pid;\nerror_log ${dir}/backend-error.log;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  keepalive_requests 1000000;\n  server {\n    listen 127.0.0.1:${backendPort};\n    listen 127.0.0.1:${backendTls} ssl;\n    ${tlsCommon}\n    location / { return 200 "hello from the backend\\n"; }\n  }\n}\n`,
  );
  // nginx as the reverse proxy: one worker per core, keep-alive to the backend.
  await writeFile(
    join(dir, 'nginx.conf'),
    `worker_processes ${WORKERS};\ndaemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/nginx-error.log;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  keepalive_requests 1000000;\n  upstream backend { server 127.0.0.1:${backendPort}; keepalive 128; }\n  server {\n    listen 127.0.0.1:${nginxPort} ssl http2;\n    ${tlsCommon}\n    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; proxy_set_header X-Forwarded-For $remote_addr; }\n  }\n}\n`,
  );
  await writeFile(
    join(dir, 'Caddyfile'),
    `{\n\tadmin off\n\tauto_https off\n\tstorage file_system ${dir}/caddy\n\tlog default {\n\t\toutput discard\n\t}\n}\nhttps://localhost:${caddyPort} {\n\tbind 127.0.0.1\n\ttls ${cert} ${key}\n\treverse_proxy 127.0.0.1:${backendPort}\n}\n`,
  );
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
  for (const conf of ['backend.conf', 'nginx.conf']) {
    const t = await run(['nginx', '-t', '-p', dir, '-c', join(dir, conf)], { allowFailure: true, env });
    if (t.code !== 0) throw new Error(`nginx ${conf}: ${t.stderr}`);
  }
  procs.push(start(['nginx', '-p', dir, '-c', join(dir, 'backend.conf')], { stdio: 'ignore', env }));
  const nginxProc = start(['nginx', '-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore', env });
  const caddyProc = start(['caddy', 'run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], { stdio: 'ignore', env });
  procs.push(nginxProc, caddyProc);
  ward = new EdgeCluster({
    workers: WORKERS,
    config: {
      http: false,
      https: { host: '127.0.0.1', port: wardPort },
      publicHttpsPort: wardPort,
      // All of wrk's connections come from 127.0.0.1: per-client-IP limits would measure the limiter.
      limits: { requestsPerSecondPerIp: 0, maxConnectionsPerIp: 1_000_000 },
      http2: true,
      accessLog: 'none',
      tcpPortOffset: 0,
      defaultCertificate: kc,
    },
    routes: { http: [{ app: 'bench', hostnames: ['localhost'], forceHttps: true, hsts: 'max-age=31536000', concurrency: { softLimit: undefined, hardLimit: undefined }, upstreams: [{ id: 'backend', host: '127.0.0.1', port: backendPort }] }], tcp: [] },
    certificates: [{ name: 'localhost', names: ['localhost'], certPem: kc.certPem, keyPem: kc.keyPem, notAfter: new Date(Date.now() + 86_400_000) }],
  });
  await ward.start();
  const targets: Array<[string, number]> = [
    ['ward', wardPort],
    ['caddy', caddyPort],
    ['nginx', nginxPort],
    ['direct', backendTls],
  ];
  for (const [name, port] of targets) await waitFor(port).catch((e) => Promise.reject(new Error(`${name} did not answer: ${(e as Error).message}`)));
  // The processes whose CPU each target's requests cost (direct: the backend's, counted for reference).
  const pidsOf = new Map<string, number[]>([
    ['ward', [process.pid, ...ward.pids]],
    ['caddy', await processTree(caddyProc.pid!)],
    ['nginx', await processTree(nginxProc.pid!)],
    ['direct', await processTree(procs[0]!.pid!)],
  ]);
  const [l1] = loadavg();
  console.log(`edge bench: ${CONNECTIONS} connections, ${DURATION} s keep-alive + ${HANDSHAKE_SECONDS} s Connection: close per target, ${ROUNDS} round(s), ward workers ${WORKERS}, ${availableParallelism()} cores, load average before ${l1!.toFixed(2)}`);
  const best = new Map<string, { keep: Result; close: Result }>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [name, port] of targets) {
      await wrk(port, 2, false); // warm-up: JITs, pools, session caches
      const keep = await wrk(port, DURATION, false, pidsOf.get(name));
      const close = await wrk(port, HANDSHAKE_SECONDS, true, pidsOf.get(name));
      console.log(
        `  round ${round} ${name.padEnd(6)} keep-alive ${keep.rps.toFixed(0).padStart(7)} req/s  p99 ${keep.p99ms.toFixed(2).padStart(7)} ms  ${keep.cpuUs.toFixed(0).padStart(4)} µs CPU/req   handshakes ${close.rps.toFixed(0).padStart(6)}/s  ${close.cpuUs.toFixed(0).padStart(4)} µs CPU/conn ${[keep.errors, close.errors].filter(Boolean).join(' ')}`,
      );
      const prev = best.get(name);
      if (!prev || keep.rps > prev.keep.rps) best.set(name, { keep, close: prev && prev.close.rps > close.rps ? prev.close : close });
      else if (close.rps > prev.close.rps) prev.close = close;
    }
  }
  const caddy = best.get('caddy')!;
  const nginx = best.get('nginx')!;
  console.log('\ntarget   keep-alive req/s   p99 ms   handshakes/s   ×caddy req/s   ×nginx req/s   ×caddy handshakes   µs CPU/req   µs CPU/conn');
  for (const [name] of targets) {
    const b = best.get(name)!;
    console.log(
      `${name.padEnd(8)} ${b.keep.rps.toFixed(0).padStart(16)} ${b.keep.p99ms.toFixed(2).padStart(8)} ${b.close.rps.toFixed(0).padStart(14)} ${(b.keep.rps / caddy.keep.rps).toFixed(2).padStart(14)} ${(b.keep.rps / nginx.keep.rps).toFixed(2).padStart(14)} ${(b.close.rps / caddy.close.rps).toFixed(2).padStart(19)} ${b.keep.cpuUs.toFixed(0).padStart(12)} ${b.close.cpuUs.toFixed(0).padStart(13)}`,
    );
  }
  const w = best.get('ward')!;
  console.log(
    `\ngoal: ward ≥ 1.5× caddy req/s: ${(w.keep.rps / caddy.keep.rps).toFixed(2)}× ${w.keep.rps >= 1.5 * caddy.keep.rps ? 'met' : 'NOT met'}; ` +
      `p99 ≤ caddy's: ${w.keep.p99ms.toFixed(2)} vs ${caddy.keep.p99ms.toFixed(2)} ms ${w.keep.p99ms <= caddy.keep.p99ms ? 'met' : 'NOT met'}; ` +
      `handshakes ≥ caddy's: ${w.close.rps.toFixed(0)} vs ${caddy.close.rps.toFixed(0)} ${w.close.rps >= caddy.close.rps ? 'met' : 'NOT met'}; ` +
      `stretch ≥ 0.5× nginx: ${(w.keep.rps / nginx.keep.rps).toFixed(2)}×`,
  );
} finally {
  await ward?.stop(1000).catch(() => {});
  await stopAll();
  await rm(dir, { recursive: true, force: true });
}
