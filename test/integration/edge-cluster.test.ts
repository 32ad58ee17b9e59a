// EdgeCluster: the edge as worker processes (`ward server`'s default on a multi-core machine). What the
// primary pushes (routes, certificates) reaches every worker, including one started to replace a worker
// that was killed; a port another process holds is refused before any worker runs; stop ends them all.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../../src/core/index.ts';
import { processExists as alive } from '../../src/exec/index.ts';
import { EdgeCluster } from '../../src/edge/cluster.ts';
import { selfSignedCertificate, type KeyAndCertificate } from '../../src/edge/index.ts';
import type { RouteSnapshot } from '../../src/edge/snapshot.ts';
import { request1, startBackend, type Backend } from '../fixtures/edge.ts';

async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * servedCertificate is the fingerprint of the certificate a TLS handshake for `servername` gets. The
 * chain is verified against the test's own self-signed certificates (so it must be one of them); the
 * name check is replaced by reading which one it was, since the default certificate names no host.
 */
function servedCertificate(port: number, servername: string, trusted: KeyAndCertificate[]): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const s = tlsConnect(
      {
        host: '127.0.0.1',
        port,
        servername,
        ca: trusted.map((t) => t.certPem),
        ALPNProtocols: ['http/1.1'],
        checkServerIdentity: (_host, cert) => void (seen = cert.fingerprint256),
      },
      () => {
        s.destroy();
        resolve(seen);
      },
    );
    s.on('error', reject);
  });
}

const fingerprint = async (kc: KeyAndCertificate) => new (await import('node:crypto')).X509Certificate(kc.certPem).fingerprint256;

describe('EdgeCluster (two worker processes)', { timeout: 60_000 }, () => {
  let backend: Backend;
  let cluster: EdgeCluster;
  let defaultCert: KeyAndCertificate;
  let twoCert: KeyAndCertificate;
  const exits: Array<number | undefined> = [];
  const ready: Array<number | undefined> = [];
  const routes = (hostnames: string[]): RouteSnapshot => ({
    http: [{ app: 'web', hostnames, forceHttps: false, hsts: undefined, concurrency: { softLimit: undefined, hardLimit: undefined }, upstreams: [{ id: 'ins_a', host: '127.0.0.1', port: backend.port }] }],
    tcp: [],
  });

  before(async () => {
    backend = await startBackend('a');
    defaultCert = await selfSignedCertificate();
    cluster = new EdgeCluster({
      workers: 2,
      config: { http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 }, publicHttpsPort: 443, limits: { requestsPerSecondPerIp: 0 }, http2: true, accessLog: 'none', tcpPortOffset: 0, defaultCertificate: defaultCert },
      routes: routes(['one.test']),
      onWorkerExit: (pid) => exits.push(pid),
      onWorkerReady: (pid) => ready.push(pid),
    });
    await cluster.start();
  });

  after(async () => {
    const pids = cluster?.pids ?? [];
    await cluster?.stop(500);
    for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} ended with stop()`);
    await backend?.close();
  });

  test('both workers listen on one port each for HTTP and HTTPS, and serve the routes they were given', async () => {
    assert.equal(cluster.pids.length, 2);
    const { http, https } = cluster.addresses();
    assert.ok(http && http.port > 0 && https && https.port > 0);
    // Connections are spread by the kernel; enough of them reach both workers.
    for (let i = 0; i < 8; i++) assert.equal((await request1(http.port, { host: 'one.test' })).status, 200);
    assert.equal((await request1(http.port, { host: 'two.test' })).status, 404);
  });

  test('a route change resolves once every worker has it; a certificate set later is served by every worker', async () => {
    const { http, https } = cluster.addresses();
    await cluster.setRoutes(routes(['one.test', 'two.test']));
    // Right after the promise: every connection, whichever worker takes it, has the new table.
    for (let i = 0; i < 8; i++) assert.equal((await request1(http!.port, { host: 'two.test' })).status, 200);

    const kc = (twoCert = await selfSignedCertificate({ commonName: 'two.test', names: ['two.test'] }));
    assert.notEqual(await servedCertificate(https!.port, 'two.test', [defaultCert, kc]), await fingerprint(kc), 'not served before it is set');
    cluster.setCertificates([{ name: 'two.test', names: ['two.test'], certPem: kc.certPem, keyPem: kc.keyPem, notAfter: new Date(Date.now() + 86_400_000) }]);
    await cluster.setRoutes(routes(['one.test', 'two.test'])); // a round trip to every worker: the certificates went before it
    for (let i = 0; i < 8; i++) assert.equal(await servedCertificate(https!.port, 'two.test', [defaultCert, kc]), await fingerprint(kc));
    assert.equal(await servedCertificate(https!.port, 'unknown.test', [defaultCert, kc]), await fingerprint(defaultCert), 'an unknown name gets the default certificate');
  });

  test('a killed worker is replaced, and the new one has the current routes, certificates and pending ACME challenges', async () => {
    const { http, https } = cluster.addresses();
    // An ACME validation under way: the replacement must answer the pending challenge too.
    cluster.applyChallenge({ kind: 'http-01', token: 'tok-1', keyAuthorization: 'tok-1.thumb' });
    cluster.applyChallenge({ kind: 'http-01', token: 'tok-gone', keyAuthorization: 'tok-gone.thumb' });
    cluster.applyChallenge({ kind: 'http-01', token: 'tok-gone', keyAuthorization: undefined });
    const [victim, survivor] = cluster.pids;
    process.kill(victim!, 'SIGKILL');
    const replacement = await waitFor('the replacement worker', () => cluster.pids.length === 2 && !cluster.pids.includes(victim!) && cluster.pids.find((p) => p !== survivor));
    await waitFor('the replacement listening', () => ready.includes(replacement));
    assert.deepEqual(exits, [victim]);
    // The kernel spreads connections over both listeners by their source ports: 24 of them reach the
    // replacement too (all 24 on one worker: odds of 1 in 8 million), and every one is served alike.
    const served = new Set<string>();
    for (let i = 0; i < 24; i++) {
      assert.equal((await request1(http!.port, { host: 'two.test' })).status, 200);
      const challenge = await request1(http!.port, { host: 'two.test', path: '/.well-known/acme-challenge/tok-1' });
      assert.deepEqual([challenge.status, challenge.body], [200, 'tok-1.thumb']);
      assert.equal((await request1(http!.port, { host: 'nowhere.test', path: '/.well-known/acme-challenge/tok-gone' })).status, 404);
      served.add(await servedCertificate(https!.port, 'two.test', [defaultCert, twoCert]));
    }
    assert.deepEqual([...served], [await fingerprint(twoCert)], 'the same, current certificate from every worker');
  });

  test('a port another process holds is listen_failed, and no worker is left running', async () => {
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as { port: number }).port;
    const forks: number[] = [];
    const other = new EdgeCluster({
      workers: 2,
      config: { http: { host: '127.0.0.1', port }, https: false, publicHttpsPort: 443, limits: {}, http2: true, accessLog: 'none', tcpPortOffset: 0, defaultCertificate: defaultCert },
      routes: routes(['one.test']),
      onWorkerExit: (pid) => forks.push(pid ?? 0),
    });
    try {
      await assert.rejects(other.start(), (e: unknown) => e instanceof UserError && e.code === 'listen_failed' && /EADDRINUSE/.test(e.message));
      assert.deepEqual(other.pids, []);
      assert.deepEqual(forks, []);
    } finally {
      await other.stop(0);
      await new Promise((r) => holder.close(r));
    }
  });
});
