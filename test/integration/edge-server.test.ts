// The edge role of `ward server`, end to end on one node: startServer with roles control, agent and
// edge (the agent runs instances as host processes through ProcessRuntime on the loopback network), the
// edge on 127.0.0.1 ports, Pebble as the ACME CA. An app deployed with a hostname and `ward certs add`ed
// gets a certificate and answers over HTTPS through the edge with HSTS; an app without [http_service]
// is not reachable; an unknown Host gets 404. A port the edge cannot bind leaves the server running.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServerConfig } from '../../src/config/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { AUTO_MAX_EDGE_WORKERS } from '../../src/server/edge-role.ts';
import { ProcessRuntime } from '../../src/agent/runtime/index.ts';
import { LoopbackNetwork } from '../../src/agent/testing.ts';
import { ociArchive } from '../fixtures/archives.ts';
import { freePort, havePebble, startPebble, type Pebble } from '../fixtures/pebble.ts';

const PASSWORD = 'correct horse battery staple';
const HOST = 'web.ward.test';
const isRoot = process.getuid?.() === 0;

const APP = `'use strict';
const http = require('node:http');
const server = http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  res.setHeader('content-type', 'text/plain');
  res.end('hello from ' + process.env.WARD_APP_NAME + ' via ' + req.headers['x-forwarded-proto'] + ' for ' + req.headers.host);
});
server.listen({ port: Number(process.env.PORT), host: '127.0.0.1', reusePort: true });
process.on('SIGTERM', () => { server.close(() => process.exit(0)); server.closeAllConnections(); });
`;

const waitFor = async <T>(what: string, cond: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> => {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
};

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('ward server with the edge role', { timeout: 180_000 }, async () => {
  const available = isRoot && (await havePebble());
  let root = '';
  let server: RunningServer | undefined;
  let pebble: Pebble | undefined;
  let runtime: ProcessRuntime | undefined;
  let token = '';
  let httpPort = 0;
  let httpsPort = 0;

  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(server!.apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : undefined };
  };
  // Without `ca` (only for names no app routes) the edge answers with its default certificate, which names
  // no customer and no CA signs: that one call does not verify, every other one trusts only Pebble's CA.
  const https = (host: string, ca: string | undefined, path = '/') =>
    new Promise<Answer>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: httpsPort, servername: host, path, headers: { host }, ...(ca ? { ca } : { rejectUnauthorized: false }), agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
  const http = (host: string, path = '/') =>
    new Promise<Answer>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: httpPort, path, headers: { host }, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });

  before(async () => {
    if (!available) return;
    root = await mkdtemp(join(tmpdir(), 'ward-edge-server-'));
    httpPort = await freePort();
    httpsPort = await freePort();
    pebble = await startPebble({ httpPort, tlsPort: httpsPort });
    const config = resolveServerConfig({
      flags: {
        'data-dir': join(root, 'data'),
        'api-listen': '127.0.0.1:0',
        roles: 'control,agent,edge',
        'http-listen': `127.0.0.1:${httpPort}`,
        'https-listen': `127.0.0.1:${httpsPort}`,
        'acme-directory': pebble.directoryUrl,
        'acme-email': 'ops@ward.test',
        'acme-ca-file': pebble.caFile,
        'log-level': process.env.WARD_TEST_LOG ?? 'silent',
        hostname: 'edge-host',
      },
      env: {},
      cwd: process.cwd(),
    });
    runtime = new ProcessRuntime({ stateDir: join(root, 'runtime') });
    server = await startServer(config, {
      runtime: { runtime, network: new LoopbackNetwork(), runDir: join(root, 'run'), agent: { reconcileIntervalMs: 200, capture: { pollMs: 50 } } },
      edge: { refreshMs: 200, acmePollMs: { min: 200, max: 1000 } },
    });
    const signup = await fetch(`${server.apiUrl}/v1/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'owner@example.com', password: PASSWORD, org: 'acme' }),
    });
    token = ((await signup.json()) as { session: { token: string } }).session.token;
  });

  after(async () => {
    await server?.close({ stopInstances: true }).catch(() => {});
    for (const info of (await runtime?.recover().catch(() => [])) ?? []) await runtime!.destroy(info.id).catch(() => {});
    await pebble?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const deploy = async (app: string, config: Record<string, unknown>) => {
    await mkdir(join(root, app), { recursive: true });
    await writeFile(join(root, app, 'server.js'), APP);
    assert.equal((await api('POST', '/v1/apps', { name: app })).status, 201);
    const archive = await ociArchive({ config: { Entrypoint: [process.execPath, join(root, app, 'server.js')] } });
    const up = await fetch(`${server!.apiUrl}/v1/apps/${app}/images?format=oci-archive`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: archive,
    });
    const image = (await up.json()) as any;
    assert.equal(up.status, 201, JSON.stringify(image));
    const d = await api('POST', `/v1/apps/${app}/deploy`, { image: image.image.digest, config: { app, ...config } });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    return waitFor(`${app} v1 to succeed`, async () => {
      const r = await api('GET', `/v1/apps/${app}/releases/1`);
      if (r.body?.release?.status === 'failed') throw new Error(`release failed: ${r.body.release.reason}`);
      return r.body?.release?.status === 'succeeded' ? r.body : undefined;
    }, 60_000);
  };

  test('an app with a hostname gets a certificate and answers over HTTPS with HSTS', { skip: !available && 'needs root and pebble' }, async () => {
    assert.equal(server!.edge?.state(), 'listening');
    const port = await freePort();
    await deploy('web', {
      env: { PORT: String(port) },
      http_service: { internal_port: port, hostnames: [HOST], checks: [{ path: '/healthz', interval: '1s', grace_period: '5s' }] },
    });
    const add = await api('POST', '/v1/apps/web/certs', { hostname: HOST });
    assert.equal(add.status, 201, JSON.stringify(add.body));
    assert.equal(add.body.certificate.hostname, HOST);
    assert.equal(add.body.certificate.app, 'web');
    const valid = await waitFor('the certificate to be issued', async () => {
      const r = await api('GET', `/v1/apps/web/certs/${HOST}`);
      return r.body?.certificate?.status === 'valid' ? r.body.certificate : undefined;
    }, 60_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${JSON.stringify((await api('GET', '/v1/apps/web/certs')).body)}\n${pebble!.log().slice(-2000)}`);
    });
    assert.ok(Date.parse(valid.not_after) > Date.now());
    assert.equal(valid.last_error, null);

    const ca = await pebble!.rootPem();
    const r = await waitFor('the app through the edge', async () => {
      const a = await https(HOST, ca);
      return a.status === 200 ? a : undefined;
    });
    assert.equal(r.body, `hello from web via https for ${HOST}`);
    assert.match(String(r.headers['strict-transport-security']), /^max-age=31536000/);
    // Plain HTTP redirects (force_https is on by default).
    const plain = await http(HOST, '/x?y=1');
    assert.equal(plain.status, 301);
    assert.equal(plain.headers.location, `https://${HOST}:${httpsPort}/x?y=1`);

    const list = await api('GET', '/v1/apps/web/certs');
    assert.deepEqual(list.body.certificates.map((c: any) => [c.hostname, c.app, c.status]), [[HOST, 'web', 'valid']]);
    const audit = await server!.store.audit.list({});
    assert.ok(audit.some((e) => e.action === 'cert.add' && e.outcome === 'success'), 'cert.add is audited');
    // The edge's metrics are on the API's /metrics, certificate expiry included.
    const metrics = await (await fetch(`${server!.apiUrl}/metrics`)).text();
    assert.match(metrics, new RegExp(`ward_edge_certificate_expiry_timestamp_seconds\\{name="${HOST.replace(/\./g, '\\.')}"\\} \\d+`));
    // edge_workers = auto: one worker process per core; their request metrics are summed into /metrics, once.
    if (availableParallelism() > 1) assert.equal(server!.edge?.cluster?.pids.length, Math.min(availableParallelism(), AUTO_MAX_EDGE_WORKERS));
    assert.match(metrics, /^ward_edge_requests_total\{app="web",status="200"\} [1-9]/m);
    for (const family of ['ward_edge_requests_total', 'ward_edge_certificate_expiry_timestamp_seconds', 'ward_http_requests_total']) {
      assert.equal(metrics.match(new RegExp(`^# TYPE ${family} `, 'gm'))?.length, 1, family);
    }
    // The access log is in the app's log stream (ward logs): an `edge` line for the request the instance
    // answered, from whichever worker served it; no header value but the user agent.
    const edgeLine = await waitFor('the access log line', async () => {
      const lines: Array<{ instance: string; stream: string; message: string }> = (await api('GET', '/v1/apps/web/logs')).body?.logs ?? [];
      return lines.find((l) => l.stream === 'edge' && JSON.parse(l.message).status === 200);
    });
    const logged = JSON.parse(edgeLine.message);
    assert.equal(logged.host, HOST);
    assert.equal(logged.app, 'web');
    assert.equal(logged.protocol, 'HTTP/1.1');
    assert.match(edgeLine.instance, /^ins_/);
    assert.match(logged.upstream, /^127\.0\.0\.1:\d+$/);
  });

  test('an app without [http_service] is not reachable, and an unknown host gets 404', { skip: !available && 'needs root and pebble' }, async () => {
    const port = await freePort();
    await deploy('worker', { env: { PORT: String(port) } });
    await server!.edge!.refresh();
    for (const host of ['worker.ward.test', 'worker', 'unknown.ward.test']) {
      const a = await https(host, undefined);
      assert.equal(a.status, 404, `${host}: ${a.status} ${a.body}`);
      assert.doesNotMatch(a.body, /hello from/);
    }
    // A name added to another app is not handed over.
    const steal = await api('POST', '/v1/apps/worker/certs', { hostname: HOST });
    assert.equal(steal.status, 409, JSON.stringify(steal.body));
    assert.equal((await api('GET', `/v1/apps/worker/certs/${HOST}`)).status, 404);
  });

  test('remove stops managing the name', { skip: !available && 'needs root and pebble' }, async () => {
    const del = await api('DELETE', `/v1/apps/web/certs/${HOST}`);
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.equal((await api('GET', `/v1/apps/web/certs/${HOST}`)).status, 404);
  });
});

describe('ward server with the edge role on a port it cannot bind', { timeout: 60_000 }, () => {
  test('the server starts; the edge reports listen_failed', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ward-edge-busy-'));
    const busy: Server = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    let server: RunningServer | undefined;
    try {
      const config = resolveServerConfig({
        flags: { 'data-dir': join(root, 'data'), 'api-listen': '127.0.0.1:0', roles: 'control,edge', 'http-listen': `127.0.0.1:${port}`, 'https-listen': '127.0.0.1:0', 'log-level': 'silent' },
        env: {},
        cwd: process.cwd(),
      });
      server = await startServer(config);
      assert.equal(server.edge?.state(), 'listen_failed');
      assert.equal(server.edge?.error()?.code, 'listen_failed');
      assert.match(server.edge?.error()?.message ?? '', /EADDRINUSE/);
      assert.equal((await fetch(`${server.apiUrl}/v1/health`)).status, 200, 'the control plane runs');
    } finally {
      await server?.close();
      await new Promise((r) => busy.close(r));
      await rm(root, { recursive: true, force: true });
    }
  });
});
