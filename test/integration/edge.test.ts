// The edge against real node:http backends on 127.0.0.1: routing, tenant isolation, HSTS and redirects,
// failure answers, retries, balancing limits, WebSocket, TCP services, limits, draining, logs, metrics.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, connect as netConnect, type Server as NetServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Registry } from 'prom-client';
import {
  CertificateCache,
  Edge,
  RouteTable,
  StaticUpstreamSource,
  selfSignedCertificate,
  certificateFacts,
  type AccessLogEntry,
  type HttpRoute,
  type Upstream,
} from '../../src/edge/index.ts';
import { UserError } from '../../src/core/index.ts';
import { freePort } from '../fixtures/pebble.ts';
import { parseRaw, rawExchange, request1, request2, startBackend, type Backend } from '../fixtures/edge.ts';

const HSTS = 'max-age=31536000';
const none = { softLimit: undefined, hardLimit: undefined };
const up = (b: { port: number }, id = `b${b.port}`): Upstream => ({ id, host: '127.0.0.1', port: b.port });

describe('edge', { timeout: 60_000 }, () => {
  let one: Backend;
  let two: Backend;
  let slow: Backend;
  let resetter: Backend;
  let wsBackend: Backend;
  let echo: NetServer;
  let echoPort = 0;
  let deadPort = 0;
  let edge: Edge;
  let http = 0;
  let https = 0;
  const log: AccessLogEntry[] = [];
  const registry = new Registry();
  const cache = new CertificateCache();
  const drainSource = new StaticUpstreamSource();
  let routes: RouteTable;
  const route = (app: string, hostnames: string[], upstreams: Upstream[], extra: Partial<HttpRoute> = {}): HttpRoute => ({
    app,
    hostnames,
    forceHttps: true,
    hsts: HSTS,
    concurrency: none,
    upstreams: new StaticUpstreamSource(upstreams),
    ...extra,
  });

  before(async () => {
    one = await startBackend('one', (req, res) => {
      res.setHeader('keep-alive', 'timeout=99');
      res.setHeader('connection', 'x-internal');
      res.setHeader('x-internal', 'hop');
      res.setHeader('strict-transport-security', 'max-age=1');
      res.setHeader('x-app', 'one');
      res.end(`one ${req.method} ${req.url}`);
    });
    two = await startBackend('two');
    slow = await startBackend('slow', (req, res) => setTimeout(() => res.end('slow done'), Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 500)));
    resetter = await startBackend('resetter', (req) => req.socket.destroy());
    wsBackend = await startBackend('ws');
    wsBackend.server.on('upgrade', (req, socket, head) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Seen-Host: ' + req.headers.host + '\r\n\r\n');
      if (head.length) socket.write(head);
      socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
    });
    echo = createNetServer((s) => s.on('data', (d) => s.write(Buffer.concat([Buffer.from('tcp:'), d]))));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as { port: number }).port;
    deadPort = await freePort(); // nothing listens here: connections are refused
    drainSource.set([up(slow)]);
    routes = new RouteTable(
      [
        route('alpha', ['alpha.test', 'alias.alpha.test'], [up(one)]),
        route('beta', ['beta.test'], [up(two)]),
        route('plain', ['plain.test'], [up(two)], { forceHttps: false, hsts: undefined }),
        route('empty', ['empty.test'], []),
        route('retry', ['retry.test'], [{ id: 'dead', host: '127.0.0.1', port: deadPort }, up(two)]),
        route('reset', ['reset.test'], [up(resetter)]),
        route('busy', ['busy.test'], [up(slow)], { concurrency: { softLimit: 1, hardLimit: 1 } }),
        route('ws', ['ws.test'], [up(wsBackend)]),
        { ...route('drain', ['drain.test'], []), upstreams: drainSource },
      ],
      [
        { app: 'tcp', port: 40001, tls: false, proxyProtocol: false, upstreams: new StaticUpstreamSource([{ id: 'e', host: '127.0.0.1', port: echoPort }]) },
        { app: 'tcp', port: 40002, tls: true, proxyProtocol: true, upstreams: new StaticUpstreamSource([{ id: 'e', host: '127.0.0.1', port: echoPort }]) },
      ],
    );
    for (const names of [['alpha.test', 'alias.alpha.test'], ['beta.test'], ['plain.test'], ['empty.test'], ['retry.test'], ['reset.test'], ['busy.test'], ['ws.test'], ['drain.test']]) {
      const kc = await selfSignedCertificate({ names });
      const f = certificateFacts(kc.certPem);
      cache.set({ name: names[0]!, names, certPem: kc.certPem, keyPem: kc.keyPem, notBefore: f.notBefore, notAfter: f.notAfter, source: 'manual' });
    }
    edge = new Edge({
      routes,
      certificates: cache,
      http: { host: '127.0.0.1', port: 0 },
      https: { host: '127.0.0.1', port: 0 },
      publicHttpsPort: 8443,
      tcpBind: () => ({ host: '127.0.0.1', port: 0 }),
      limits: { maxBodyBytes: 1024 * 1024, requestsPerSecondPerIp: 0 },
      metrics: registry,
      accessLog: { write: (e) => log.push(e) },
    });
    await edge.start();
    http = edge.addresses().http!.port;
    https = edge.addresses().https!.port;
  });

  after(async () => {
    await edge?.stop({ graceMs: 200 });
    await Promise.all([one, two, slow, resetter, wsBackend].map((b) => b?.close()));
    await new Promise((r) => (echo ? echo.close(r) : r(undefined)));
  });

  const seenTotal = () => [one, two, slow, resetter, wsBackend].reduce((n, b) => n + b.seen.length, 0);

  test('an unknown hostname gets 404 without touching any backend', async () => {
    const before = seenTotal();
    const a = await request1(https, { host: 'nobody.test', servername: 'nobody.test' });
    const b = await request1(http, { host: 'nobody.test' });
    const c = await request1(https, { host: 'alpha.test', servername: 'nobody.test' });
    assert.equal(a.status, 404);
    assert.equal(a.headers['strict-transport-security'], HSTS, 'HSTS on the edge’s own HTTPS answers too');
    assert.equal(b.status, 404);
    assert.equal(c.status, 421, 'a known Host on a connection for an unknown name is misdirected, not served');
    assert.equal(seenTotal(), before);
  });

  test('HTTPS is proxied with HSTS, forwarding headers and a request id; hop-by-hop headers are stripped both ways', async () => {
    const r = await request1(https, {
      host: 'alpha.test',
      servername: 'alpha.test',
      path: '/hello?x=1',
      headers: { 'X-Forwarded-For': '6.6.6.6', 'X-Forwarded-Host': 'evil.test', 'X-Request-Id': 'forged', Forwarded: 'for=6.6.6.6', Connection: 'X-Secret', 'X-Secret': 'hop', 'Proxy-Connection': 'keep-alive', TE: 'trailers' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'one GET /hello?x=1');
    assert.equal(r.headers['strict-transport-security'], HSTS, "the app's own HSTS header is replaced by its configured one");
    assert.match(r.headers['x-request-id'] ?? '', /^[0-9a-f]{8}-[0-9a-z]+$/);
    assert.equal(r.headers['x-app'], 'one');
    assert.equal(r.headers['x-internal'], undefined, 'a header the backend named in Connection is dropped');
    assert.notEqual(r.headers['keep-alive'], 'timeout=99');
    const seen = one.seen.at(-1)!;
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-forwarded-host'], 'alpha.test');
    assert.equal(seen.headers['x-request-id'], r.headers['x-request-id']);
    assert.equal(seen.headers.host, 'alpha.test');
    for (const h of ['forwarded', 'x-secret', 'proxy-connection', 'te']) assert.equal(seen.headers[h], undefined, `${h} reached the backend`);
  });

  test('cross-tenant: the SNI of one app with the Host of another is refused with 421 (HTTP/1.1, HTTP/2, no SNI)', async () => {
    const before = two.seen.length;
    const h1 = await request1(https, { host: 'beta.test', servername: 'alpha.test' });
    const h2 = await request2(https, { servername: 'alpha.test', authority: 'beta.test' });
    const noSni = await request1(https, { host: 'beta.test', tls: true, servername: false });
    assert.equal(h1.status, 421);
    assert.equal(h2.status, 421);
    assert.equal(noSni.status, 421);
    assert.equal(two.seen.length, before, "beta's backend never saw a request");
    const sameApp = await request1(https, { host: 'alias.alpha.test', servername: 'alpha.test' });
    assert.equal(sameApp.status, 200, 'two names of one app may share a connection');
  });

  test('HTTP/2 to clients is proxied with HSTS', async () => {
    const r = await request2(https, { servername: 'alpha.test', authority: 'alpha.test', path: '/h2' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'one GET /h2');
    assert.equal(r.headers['strict-transport-security'], HSTS);
    assert.equal(log.at(-1)?.protocol, 'HTTP/2');
  });

  test('a handshake for an unknown or missing SNI gets the default certificate, which names no customer', async () => {
    for (const servername of ['nobody.test', undefined]) {
      const cert = await new Promise<{ subject: string; san: string | undefined }>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: https, rejectUnauthorized: false, ...(servername ? { servername } : {}) }, () => {
          const c = s.getPeerCertificate();
          resolve({ subject: JSON.stringify(c.subject), san: c.subjectaltname });
          s.end();
        });
        s.on('error', reject);
      });
      assert.equal(cert.san, undefined);
      assert.match(cert.subject, /ward-edge/);
      assert.doesNotMatch(cert.subject, /alpha|beta|plain/);
    }
  });

  test('plain HTTP redirects force_https apps (301 for GET/HEAD, 308 otherwise) and serves the others', async () => {
    const get = await request1(http, { host: 'alpha.test', path: '/a/b?c=d' });
    assert.equal(get.status, 301);
    assert.equal(get.headers.location, 'https://alpha.test:8443/a/b?c=d');
    assert.equal(get.headers['strict-transport-security'], undefined, 'HSTS is never sent over plain HTTP (RFC 6797 §7.2)');
    const post = await request1(http, { host: 'alpha.test', method: 'POST', path: '/form', body: 'x=1' });
    assert.equal(post.status, 308);
    const plain = await request1(http, { host: 'plain.test', path: '/p' });
    assert.equal(plain.status, 200);
    assert.equal(plain.body, 'two GET /p');
    assert.equal(two.seen.at(-1)?.headers['x-forwarded-proto'], 'http');
  });

  test('no healthy instance answers 503 with Retry-After', async () => {
    const r = await request1(https, { host: 'empty.test', servername: 'empty.test' });
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '5');
  });

  test('a refused connection is retried on another instance for idempotent requests', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await request1(https, { host: 'retry.test', servername: 'retry.test', path: `/r${i}` });
      assert.equal(r.status, 200, `attempt ${i}`);
      assert.equal(r.body, `two GET /r${i}`);
    }
    assert.match(await registry.metrics(), /ward_edge_upstream_errors_total\{app="retry",kind="retry"\} [1-9]/);
  });

  test('a non-idempotent request is never retried; an idempotent one is', async () => {
    const before = resetter.seen.length;
    const post = await request1(https, { host: 'reset.test', servername: 'reset.test', method: 'POST', body: 'pay once' });
    assert.equal(post.status, 502);
    assert.equal(resetter.seen.length - before, 1, 'the POST reached the instance exactly once');
    const get = await request1(https, { host: 'reset.test', servername: 'reset.test' });
    assert.equal(get.status, 502);
    assert.equal(resetter.seen.length - before, 1 + 3, 'the GET was tried three times');
  });

  test('the hard concurrency limit answers 503 instead of queueing', async () => {
    const first = request1(https, { host: 'busy.test', servername: 'busy.test', path: '/?ms=800' });
    await new Promise((r) => setTimeout(r, 200));
    const second = await request1(https, { host: 'busy.test', servername: 'busy.test' });
    assert.equal(second.status, 503);
    assert.equal(second.headers['retry-after'], '1');
    assert.equal((await first).status, 200);
  });

  test('WebSocket upgrades are relayed, with the tenant check', async () => {
    const handshake = 'GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    const data = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: https, servername: 'ws.test', ALPNProtocols: ['http/1.1'], rejectUnauthorized: false }, () => s.write(handshake));
      let got = '';
      let sent = false;
      s.on('data', (d: Buffer) => {
        got += d;
        if (!sent && got.includes('\r\n\r\n')) {
          sent = true;
          s.write('ping');
        }
        if (got.includes('echo:ping')) {
          s.destroy();
          resolve(got);
        }
      });
      s.on('error', reject);
      setTimeout(() => reject(new Error(`no echo: ${got}`)), 5000).unref();
    });
    const r = parseRaw(data);
    assert.equal(r.status, 101);
    assert.equal(r.headers['x-seen-host'], 'ws.test');
    assert.equal(r.headers['strict-transport-security'], HSTS);
    const misdirected = await rawExchange({ port: https, tls: { servername: 'alpha.test' } }, handshake);
    assert.equal(parseRaw(misdirected.data).status, 421);
  });

  test('bodies over the limit get 413 and never reach the app', async () => {
    const before = two.seen.length;
    const r = await request1(http, { host: 'plain.test', method: 'POST', headers: { 'Content-Length': String(2 * 1024 * 1024) } });
    assert.equal(r.status, 413);
    const chunked = await rawExchange({ port: http }, `POST / HTTP/1.1\r\nHost: plain.test\r\nTransfer-Encoding: chunked\r\n\r\n${'100000\r\n' + 'x'.repeat(0x100000) + '\r\n'}${'100000\r\n' + 'x'.repeat(0x100000) + '\r\n'}0\r\n\r\n`);
    assert.match(chunked.data, /^HTTP\/1\.1 413/);
    assert.equal(two.seen.filter((s) => s.method === 'POST').length, two.seen.slice(0, before).filter((s) => s.method === 'POST').length);
  });

  test('draining: a removed instance finishes its request; new requests go to the remaining one', async () => {
    const inFlight = request1(https, { host: 'drain.test', servername: 'drain.test', path: '/?ms=600' });
    await new Promise((r) => setTimeout(r, 150));
    drainSource.set([up(two)]);
    const next = await request1(https, { host: 'drain.test', servername: 'drain.test', path: '/after' });
    assert.equal(next.body, 'two GET /after');
    const done = await inFlight;
    assert.equal(done.status, 200);
    assert.equal(done.body, 'slow done');
  });

  test('setRoutes swaps the whole table at once', async () => {
    const previous = edge.routes;
    await edge.setRoutes(new RouteTable([route('beta', ['beta.test'], [up(one)])], previous.tcpRoutes()));
    const r = await request1(https, { host: 'beta.test', servername: 'beta.test', path: '/swapped' });
    assert.equal(r.body, 'one GET /swapped');
    assert.equal((await request1(https, { host: 'alpha.test', servername: 'alpha.test' })).status, 404, 'alpha is gone with the old table');
    await edge.setRoutes(previous);
    assert.equal((await request1(https, { host: 'alpha.test', servername: 'alpha.test' })).status, 200);
  });

  test('TCP services pass bytes through, or terminate TLS and send a PROXY header', async () => {
    const plainPort = edge.tcpAddress(40001)!.port;
    const tlsPort = edge.tcpAddress(40002)!.port;
    const passthrough = await rawExchange({ port: plainPort, idleMs: 500 }, 'hello');
    assert.equal(passthrough.data, 'tcp:hello');
    const terminated = await rawExchange({ port: tlsPort, tls: { servername: 'alpha.test', ALPNProtocols: [] }, idleMs: 500 }, 'hi');
    assert.match(terminated.data, /^tcp:PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\n/);
    assert.match(terminated.data, /hi/);
    await edge.setRoutes(new RouteTable([], []));
    assert.equal(edge.tcpAddress(40001), undefined, 'a port leaves with its route');
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = netConnect({ host: '127.0.0.1', port: plainPort });
        s.on('connect', () => {
          s.destroy();
          resolve(undefined);
        });
        s.on('error', reject);
      }),
    );
    await edge.setRoutes(routes);
  });

  test('access log lines and metrics describe what happened, and name no secret', async () => {
    await request1(https, { host: 'alpha.test', servername: 'alpha.test', path: '/logged?token=abc', headers: { Authorization: 'Bearer s3cret', Cookie: 'session=s3cret' } });
    const e = log.find((x) => x.path === '/logged?token=abc')!;
    assert.equal(e.app, 'alpha');
    assert.equal(e.status, 200);
    assert.equal(e.client, '127.0.0.1');
    assert.equal(e.method, 'GET');
    assert.equal(e.host, 'alpha.test');
    assert.ok(e.bytes > 0 && e.duration_ms >= 0);
    // The instance that answered, by address and id (kept after the request released it).
    assert.equal(e.upstream, `127.0.0.1:${one.port}`);
    assert.equal(e.instance, `b${one.port}`);
    assert.equal(log.find((x) => x.status === 404)?.instance, undefined, 'an edge-local answer names no instance');
    assert.doesNotMatch(JSON.stringify(log), /s3cret/);
    const m = await registry.metrics();
    assert.match(m, /ward_edge_requests_total\{app="alpha",status="200"\} \d+/);
    assert.match(m, /ward_edge_requests_total\{app="-",status="404"\} \d+/);
    assert.match(m, /ward_edge_request_duration_seconds_bucket\{le="[^"]+",app="alpha"\} \d+/);
    assert.match(m, /ward_edge_tls_handshakes_total\{result="ok"\} \d+/);
    assert.match(m, /ward_edge_upstream_errors_total\{app="reset",kind="connect"\} \d+/);
  });
});

describe('edge limits and shutdown', { timeout: 30_000 }, () => {
  let backend: Backend;
  let edge: Edge;
  let port = 0;
  before(async () => {
    backend = await startBackend('b', (req, res) => setTimeout(() => res.end('ok'), req.url === '/slow' ? 700 : 0));
    const upstreams = new StaticUpstreamSource([up(backend)]);
    edge = new Edge({
      routes: new RouteTable([{ app: 'x', hostnames: ['x.test'], forceHttps: false, hsts: undefined, concurrency: none, upstreams }]),
      http: { host: '127.0.0.1', port: 0 },
      https: false,
      limits: { requestsPerSecondPerIp: 5, requestBurstPerIp: 5, maxConnectionsPerIp: 3 },
    });
    await edge.start();
    port = edge.addresses().http!.port;
  });
  after(async () => {
    await edge?.stop({ graceMs: 100 });
    await backend?.close();
  });

  test('per-IP request rate: past the burst the client gets 429 with Retry-After', async () => {
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 7; i++) {
      const r = await request1(port, { host: 'x.test' });
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers['retry-after'];
    }
    assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200]);
    assert.ok(statuses.slice(5).includes(429), String(statuses));
    assert.ok(Number(retryAfter) >= 1);
  });

  test('per-IP connections: past the limit new connections are closed at once', async () => {
    const sockets = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<ReturnType<typeof netConnect>>((resolve) => {
            const s = netConnect({ host: '127.0.0.1', port }, () => resolve(s));
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 100));
    const fourth = await rawExchange({ port, idleMs: 1000 }, 'GET / HTTP/1.1\r\nHost: x.test\r\n\r\n');
    assert.equal(fourth.data, '');
    assert.equal(fourth.closed, true);
    for (const s of sockets) s.destroy();
  });

  test('stop lets a request in flight finish, then closes', async () => {
    await new Promise((r) => setTimeout(r, 1100)); // the rate limit's bucket refills
    const inFlight = request1(port, { host: 'x.test', path: '/slow' });
    await new Promise((r) => setTimeout(r, 150));
    const stopped = edge.stop({ graceMs: 5000 });
    const r = await inFlight;
    await stopped;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    await assert.rejects(request1(port, { host: 'x.test' }));
  });
});

test('a taken port is a listen_failed user error, and nothing stays bound', async () => {
  const holder = createNetServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const taken = (holder.address() as { port: number }).port;
  const free = await freePort();
  const edge = new Edge({ http: { host: '127.0.0.1', port: free }, https: { host: '127.0.0.1', port: taken } });
  try {
    await assert.rejects(edge.start(), (e: unknown) => e instanceof UserError && e.code === 'listen_failed' && /EADDRINUSE/.test(e.message) && /another process/.test(e.hint ?? ''));
    // The HTTP listener that did bind was closed again.
    const again = createNetServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(free, '127.0.0.1', () => again.close(() => resolve()));
    });
  } finally {
    await new Promise((r) => holder.close(r));
  }
});

describe('edge: a pooled connection the app closed', { timeout: 30_000 }, () => {
  // The app answers the first request of each connection with keep-alive and closes the connection when
  // a second request arrives on it, unanswered: what an app that times out idle connections (or is
  // shutting down) does while the edge reuses the connection from its pool.
  let app: NetServer;
  let edge: Edge;
  let closedOnReuse = 0;
  let connections = 0;

  before(async () => {
    app = createNetServer((s) => {
      connections++;
      let seen = 0;
      let buf = '';
      s.on('error', () => {});
      s.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        while (buf.includes('\r\n\r\n')) {
          buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
          if (++seen > 1) {
            closedOnReuse++;
            s.destroy();
            return;
          }
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=60\r\n\r\nok');
        }
      });
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const port = (app.address() as { port: number }).port;
    edge = new Edge({
      routes: new RouteTable([{ app: 'stale', hostnames: ['stale.test'], forceHttps: false, hsts: undefined, concurrency: none, upstreams: new StaticUpstreamSource([{ id: 'only', host: '127.0.0.1', port }]) }]),
      http: { host: '127.0.0.1', port: 0 },
      https: false,
      limits: { requestsPerSecondPerIp: 0 },
    });
    await edge.start();
  });

  after(async () => {
    await edge?.stop({ graceMs: 200 });
    await new Promise((r) => (app ? app.close(r) : r(undefined)));
  });

  test('an idempotent request is retried on a fresh connection; a POST is not', async () => {
    const port = edge.addresses().http!.port;
    for (let i = 0; i < 5; i++) {
      const r = await request1(port, { host: 'stale.test', path: `/g${i}` });
      assert.equal(r.status, 200, `GET ${i}: ${r.body}`);
    }
    assert.ok(closedOnReuse >= 1, 'the edge reused a pooled connection the app then closed');
    assert.ok(connections > closedOnReuse, 'and retried on a new one');
    const before = closedOnReuse;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await request1(port, { host: 'stale.test', method: 'POST', body: 'once' })).status);
    assert.ok(closedOnReuse > before, 'a POST met a closed pooled connection');
    assert.ok(statuses.includes(502), 'and was answered 502, not replayed');
  });
});
