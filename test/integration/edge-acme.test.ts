// Real ACME: Debian's Pebble validates http-01 and tls-alpn-01 against the edge's own listeners on
// 127.0.0.1, the issued certificates are served by SNI, and the keys on disk are sealed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import {
  AcmeIssuer,
  aesGcmSealer,
  CertificateCache,
  CertManager,
  ChallengeStore,
  Edge,
  FileCertStore,
  FileIssuanceLock,
  RouteTable,
  StaticUpstreamSource,
} from '../../src/edge/index.ts';
import { havePebble, startPebble, type Pebble } from '../fixtures/pebble.ts';

const HOSTS = ['http01.ward.test', 'alpn.ward.test'];

describe('edge ACME with Pebble', { timeout: 120_000 }, async () => {
  const available = await havePebble();
  let dir: string;
  let backend: Server;
  let edge: Edge;
  let pebble: Pebble | undefined;
  const challenges = new ChallengeStore();
  const cache = new CertificateCache();
  let store: FileCertStore;
  let httpsPort = 0;

  before(async () => {
    if (!available) return;
    dir = await mkdtemp(join(tmpdir(), 'ward-edge-acme-'));
    backend = createServer((req, res) => res.end(`backend ${req.headers.host}`));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const upstreams = new StaticUpstreamSource([{ id: 'b', host: '127.0.0.1', port: (backend.address() as { port: number }).port }]);
    const routes = new RouteTable([{ app: 'acme', hostnames: HOSTS, forceHttps: true, hsts: 'max-age=31536000', concurrency: { softLimit: undefined, hardLimit: undefined }, upstreams }]);
    edge = new Edge({ routes, certificates: cache, challenges, http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 } });
    await edge.start();
    const a = edge.addresses();
    httpsPort = a.https!.port;
    pebble = await startPebble({ httpPort: a.http!.port, tlsPort: httpsPort });
    store = new FileCertStore(join(dir, 'certs'), aesGcmSealer(randomBytes(32)));
  });

  after(async () => {
    await edge?.stop({ graceMs: 100 });
    await pebble?.stop();
    await new Promise((r) => (backend ? backend.close(r) : r(undefined)));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const manager = (challengeTypes: Array<'http-01' | 'tls-alpn-01'>) =>
    new CertManager({
      store,
      lock: new FileIssuanceLock(join(dir, 'locks')),
      cache,
      issuer: new AcmeIssuer({ directoryUrl: pebble!.directoryUrl, email: 'ops@ward.test', caPem: pebble!.caPem, store, challenges, challengeTypes, pollMinMs: 200, pollMaxMs: 1000 }),
      checkIntervalMs: 3_600_000,
    });

  const handshake = (servername: string, ca?: string) =>
    new Promise<{ cert: PeerCertificate; authorized: boolean; error: Error | null }>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: httpsPort, servername, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false, ...(ca ? { ca } : {}) }, () => {
        resolve({ cert: s.getPeerCertificate(), authorized: s.authorized, error: s.authorizationError });
        s.end();
      });
      s.on('error', reject);
    });

  for (const [host, type] of [
    ['http01.ward.test', 'http-01'],
    ['alpn.ward.test', 'tls-alpn-01'],
  ] as const) {
    test(`issues ${host} with ${type}, serves it by SNI, and seals its key`, { skip: !available && 'pebble is not installed' }, async () => {
      const before = await handshake(host);
      assert.doesNotMatch(before.cert.subjectaltname ?? '', new RegExp(host), 'before issuance the default certificate names no customer');
      const m = manager([type]);
      await m.add([host]);
      await m.tick();
      const status = await m.show(host);
      assert.equal(status?.state, 'valid', `status: ${JSON.stringify(status)}\n${pebble!.log().slice(-3000)}`);
      assert.equal(status?.failures, 0);
      assert.ok(status?.renewAt && Date.parse(status.renewAt) < Date.parse(status.notAfter!), 'renewal is before expiry');
      const after = await handshake(host, await pebble!.rootPem());
      assert.match(after.cert.subjectaltname ?? '', new RegExp(`DNS:${host.replace(/\./g, '\\.')}`));
      assert.equal(after.authorized, true, String(after.error));
      // The private keys (certificate and account) are on disk only sealed.
      for (const sub of ['certs', 'accounts']) {
        for (const f of await readdir(join(dir, 'certs', sub))) {
          const text = await readFile(join(dir, 'certs', sub, f), 'utf8');
          assert.doesNotMatch(text, /PRIVATE KEY/, `${sub}/${f} holds a plaintext key`);
        }
      }
      // And a request over the issued certificate reaches the app.
      const body = await new Promise<string>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: httpsPort, servername: host, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false }, () => {
          s.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
        });
        let out = '';
        s.on('data', (d: Buffer) => (out += d));
        s.on('end', () => resolve(out));
        s.on('error', reject);
      });
      assert.match(body, /^HTTP\/1\.1 200/);
      assert.match(body, new RegExp(`backend ${host.replace(/\./g, '\\.')}`));
      assert.match(body, /strict-transport-security: max-age=31536000/i);
      await m.stop();
    });
  }

  test('a name the CA refuses is recorded with its error and backs off', { skip: !available && 'pebble is not installed' }, async () => {
    // This issuer's challenges go to a store the edge does not read, so Pebble's validation gets a 404.
    const failing = new CertManager({
      store,
      lock: new FileIssuanceLock(join(dir, 'locks')),
      cache,
      issuer: new AcmeIssuer({ directoryUrl: pebble!.directoryUrl, caPem: pebble!.caPem, store, challenges: new ChallengeStore(), challengeTypes: ['http-01'], pollMinMs: 200, pollMaxMs: 1000 }),
      checkIntervalMs: 3_600_000,
      backoffMinMs: 60_000,
    });
    await failing.add(['nochallenge.ward.test']);
    const t0 = Date.now();
    await failing.tick();
    const s = await failing.show('nochallenge.ward.test');
    assert.equal(s?.state, 'failing');
    assert.match(s?.lastError ?? '', /404/, 'the validation error says what Pebble saw');
    assert.equal(s?.failures, 1);
    assert.ok(s?.lastError && s.lastError.length > 0, 'the CA or validation message is kept');
    assert.ok(Date.parse(s!.nextAttemptAt!) >= t0 + 60_000, 'the next attempt waits for the backoff');
    // A tick before the backoff has passed does not try again.
    await failing.tick();
    assert.equal((await failing.show('nochallenge.ward.test'))?.failures, 1);
    await failing.stop();
  });
});
