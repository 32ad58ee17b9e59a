// The edge's protocol defences, tried from the outside: request smuggling over raw sockets (plain and
// TLS), slowloris while normal clients keep being served, and the TLS policy as `openssl s_client` and
// testssl.sh see it. Everything talks to 127.0.0.1 only and every loop is bounded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { run } from '../../src/exec/index.ts';
import { CertificateCache, Edge, RouteTable, StaticUpstreamSource, certificateFacts, selfSignedCertificate } from '../../src/edge/index.ts';
import { rawExchange, request1, startBackend, type Backend } from '../fixtures/edge.ts';

const HOST = 'app.test';
const SMUGGLED = `GET /smuggled HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;

/** Each vector is a request whose framing two parsers could read differently; the edge must refuse it. */
const VECTORS: Array<[string, string]> = [
  ['CL.TE', `POST /cl-te HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${5 + SMUGGLED.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE.CL', `POST /te-cl HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${(SMUGGLED.length).toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`],
  ['TE obfuscated: xchunked', `POST /obf1 HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE obfuscated: identity, chunked', `POST /obf2 HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE obfuscated: chunked, identity', `POST /obf3 HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE obfuscated: two headers', `POST /obf4 HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE obfuscated: vertical tab', `POST /obf5 HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE obfuscated: line folding', `POST /obf6 HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE on HTTP/1.0', `POST /obf7 HTTP/1.0\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['duplicate Content-Length', `POST /dup-cl HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['duplicate Content-Length, same value', `POST /dup-cl2 HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx${SMUGGLED}`],
  ['Content-Length list', `POST /cl-list HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 1, 1\r\n\r\nx${SMUGGLED}`],
  ['whitespace before colon (Transfer-Encoding)', `POST /ws-te HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['whitespace before colon (Content-Length)', `POST /ws-cl HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length : ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['two Host headers', `GET /two-hosts HTTP/1.1\r\nHost: ${HOST}\r\nHost: other.test\r\n\r\n${SMUGGLED}`],
  ['absolute-form target naming another host', `GET http://other.test/abs HTTP/1.1\r\nHost: ${HOST}\r\n\r\n${SMUGGLED}`],
  ['NUL in a header value', `GET /nul HTTP/1.1\r\nHost: ${HOST}\r\nX-A: a\x00b\r\n\r\n${SMUGGLED}`],
  ['bare CR in a header value', `GET /cr HTTP/1.1\r\nHost: ${HOST}\r\nX-A: a\rb\r\n\r\n${SMUGGLED}`],
  ['chunk size overflow', `POST /overflow HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF1\r\nabc\r\n0\r\n\r\n${SMUGGLED}`],
];

const testsslAvailable = (await run(['sh', '-c', 'command -v testssl'], { allowFailure: true })).code === 0;

describe('edge protocol defences', { timeout: 240_000 }, () => {
  let backend: Backend;
  let edge: Edge;
  let http = 0;
  let https = 0;
  let dir: string;
  let certFile: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-edge-proto-'));
    backend = await startBackend('backend');
    const kc = await selfSignedCertificate({ commonName: HOST, names: [HOST] });
    certFile = join(dir, 'cert.pem');
    await writeFile(certFile, kc.certPem);
    const cache = new CertificateCache();
    const f = certificateFacts(kc.certPem);
    cache.set({ name: HOST, names: [HOST], certPem: kc.certPem, keyPem: kc.keyPem, notBefore: f.notBefore, notAfter: f.notAfter, source: 'manual' });
    edge = new Edge({
      routes: new RouteTable([{ app: 'app', hostnames: [HOST], forceHttps: false, hsts: 'max-age=31536000', concurrency: { softLimit: undefined, hardLimit: undefined }, upstreams: new StaticUpstreamSource([{ id: 'b', host: '127.0.0.1', port: backend.port }]) }]),
      certificates: cache,
      http: { host: '127.0.0.1', port: 0 },
      https: { host: '127.0.0.1', port: 0 },
      limits: { headersTimeoutMs: 2000, requestTimeoutMs: 5000, handshakeTimeoutMs: 2000, requestsPerSecondPerIp: 0 },
    });
    await edge.start();
    http = edge.addresses().http!.port;
    https = edge.addresses().https!.port;
  });

  after(async () => {
    await edge?.stop({ graceMs: 200 });
    await backend?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a well-formed chunked request still goes through', async () => {
    const { data } = await rawExchange({ port: http }, `POST /ok HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
    assert.match(data, /^HTTP\/1\.1 200/);
    assert.equal(backend.seen.at(-1)?.body, 'hello');
  });

  for (const secure of [false, true]) {
    for (const [name, payload] of VECTORS) {
      test(`${secure ? 'TLS' : 'plain'}: ${name} → 400, connection closed, nothing smuggled`, async () => {
        const before = backend.seen.length;
        const { data, closed } = await rawExchange({ port: secure ? https : http, ...(secure ? { tls: { servername: HOST } } : {}), idleMs: 3000 }, payload);
        assert.match(data, /^HTTP\/1\.1 400 /, `answer: ${JSON.stringify(data.slice(0, 200))}`);
        assert.equal((data.match(/HTTP\/1\.1 /g) ?? []).length, 1, 'exactly one response: the smuggled request got none');
        assert.equal(closed, true, 'the connection is closed after the 400');
        assert.equal(backend.seen.length, before, `the backend saw ${JSON.stringify(backend.seen.slice(before).map((s) => s.url))}`);
      });
    }
  }

  test('slowloris: 50 trickling sockets are cut off while normal clients keep being served', async () => {
    const slow: Array<{ socket: Socket; closedAt: number | undefined }> = [];
    const started = Date.now();
    for (let i = 0; i < 50; i++) {
      const tlsSock = i % 2 === 1;
      const socket: Socket = tlsSock
        ? tlsConnect({ host: '127.0.0.1', port: https, servername: HOST, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false })
        : netConnect({ host: '127.0.0.1', port: http });
      const entry = { socket, closedAt: undefined as number | undefined };
      socket.on('error', () => {});
      socket.on('close', () => (entry.closedAt = Date.now()));
      socket.once(tlsSock ? 'secureConnect' : 'connect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\n`));
      slow.push(entry);
    }
    // Every 400 ms each slow socket sends one more header line, never the blank line that ends them.
    const drip = setInterval(() => {
      for (const s of slow) if (s.closedAt === undefined && s.socket.writable) s.socket.write(`X-${Math.random().toString(36).slice(2, 6)}: a\r\n`);
    }, 400);
    // A raw TCP socket that never starts its TLS handshake is cut off too.
    const silent = netConnect({ host: '127.0.0.1', port: https });
    let silentClosedAt: number | undefined;
    silent.on('error', () => {});
    silent.on('close', () => (silentClosedAt = Date.now()));
    const latencies: number[] = [];
    let stoppedAt = Infinity;
    // Normal clients keep asking for 5 s, and on until the slow sockets are all gone (at most 20 s: on a
    // loaded machine a TLS handshake, after which the header clock starts, can itself take seconds).
    const allCut = () => slow.every((s) => s.closedAt !== undefined) && silentClosedAt !== undefined;
    try {
      while (Date.now() - started < 5000 || (!allCut() && Date.now() - started < 20_000)) {
        const t = Date.now();
        const r = await request1(https, { host: HOST, servername: HOST, path: '/normal' });
        assert.equal(r.status, 200);
        const p = await request1(http, { host: HOST, path: '/normal' });
        assert.equal(p.status, 200);
        latencies.push(Date.now() - t);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      stoppedAt = Date.now();
      clearInterval(drip);
      for (const s of slow) s.socket.destroy();
      silent.destroy();
    }
    // Cut by the edge, not by the test's clean-up: closed while the test was still dripping.
    const cut = slow.filter((s) => s.closedAt !== undefined && s.closedAt < stoppedAt).length;
    assert.equal(cut, 50, `only ${cut} of 50 slow sockets were cut off by the header timeout`);
    assert.ok(silentClosedAt !== undefined && silentClosedAt < stoppedAt, 'a silent TLS connection is cut off by the handshake timeout');
    // Served all along (one pair every ~100 ms when nothing blocks; no latency bound: the machine's load
    // is not the edge's doing).
    latencies.sort((a, b) => a - b);
    assert.ok(latencies.length >= 10, `normal clients got ${latencies.length} answers (median ${latencies[latencies.length >> 1]} ms)`);
  });

  // openssl s_client as a client with its own policy loosened (SECLEVEL=0), so that only the edge decides.
  const sClient = async (args: string[]) => {
    const r = await run(['openssl', 's_client', '-connect', `127.0.0.1:${https}`, '-servername', HOST, ...args], { input: '', allowFailure: true, timeoutMs: 15_000 });
    const out = r.stdout + r.stderr;
    const m = /New, (TLSv[\d.]+), Cipher is (\S+)/.exec(out);
    const ok = m !== null && m[2] !== '(NONE)';
    return { ok, out, version: m?.[1], cipher: m?.[2], alpn: /ALPN protocol: (\S+)/.exec(out)?.[1] };
  };

  const policy: Array<[string, string[], boolean]> = [
    ['TLS 1.0', ['-tls1', '-cipher', 'DEFAULT@SECLEVEL=0'], false],
    ['TLS 1.1', ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0'], false],
    ['TLS 1.2 CBC (non-AEAD) ECDHE-ECDSA-AES128-SHA256', ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA256@SECLEVEL=0'], false],
    ['TLS 1.2 CBC (non-AEAD) ECDHE-ECDSA-AES256-SHA', ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-SHA@SECLEVEL=0'], false],
    ['TLS 1.2 static RSA (no forward secrecy) AES128-GCM-SHA256', ['-tls1_2', '-cipher', 'AES128-GCM-SHA256@SECLEVEL=0'], false],
    ['TLS 1.2 DHE (finite field)', ['-tls1_2', '-cipher', 'DHE-RSA-AES128-GCM-SHA256@SECLEVEL=0'], false],
    ['TLS 1.2 RC4/3DES/NULL', ['-tls1_2', '-cipher', 'RC4:3DES:eNULL:aNULL@SECLEVEL=0'], false],
    ['TLS 1.3 AES-128-CCM', ['-tls1_3', '-ciphersuites', 'TLS_AES_128_CCM_SHA256'], false],
    ['TLS 1.3 group P-521 only', ['-tls1_3', '-groups', 'P-521'], false],
    ['TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256', ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'], true],
    ['TLS 1.2 ECDHE-ECDSA-AES256-GCM-SHA384', ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-GCM-SHA384'], true],
    ['TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305', ['-tls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305'], true],
    ['TLS 1.3 TLS_AES_128_GCM_SHA256', ['-tls1_3', '-ciphersuites', 'TLS_AES_128_GCM_SHA256'], true],
    ['TLS 1.3 TLS_AES_256_GCM_SHA384', ['-tls1_3', '-ciphersuites', 'TLS_AES_256_GCM_SHA384'], true],
    ['TLS 1.3 TLS_CHACHA20_POLY1305_SHA256', ['-tls1_3', '-ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256'], true],
    ['TLS 1.3 X25519', ['-tls1_3', '-groups', 'X25519'], true],
    ['TLS 1.3 P-256', ['-tls1_3', '-groups', 'P-256'], true],
    ['TLS 1.3 P-384', ['-tls1_3', '-groups', 'P-384'], true],
  ];
  for (const [name, args, accepted] of policy) {
    test(`openssl s_client: ${name} is ${accepted ? 'accepted' : 'refused'}`, async () => {
      const r = await sClient(args);
      assert.equal(r.ok, accepted, r.out.slice(0, 600));
    });
  }

  test('openssl s_client: ALPN offers h2 and http/1.1', async () => {
    assert.equal((await sClient(['-alpn', 'h2,http/1.1'])).alpn, 'h2');
    assert.equal((await sClient(['-alpn', 'http/1.1'])).alpn, 'http/1.1');
    assert.equal((await sClient(['-alpn', 'spdy/3'])).ok, false, 'no common protocol is a fatal alert (RFC 7301 §3.2)');
  });

  test('openssl s_client: renegotiation is refused', async () => {
    const r = await run(['sh', '-c', `(printf 'R\\n'; sleep 1) | openssl s_client -connect 127.0.0.1:${https} -servername ${HOST} -tls1_2`], { allowFailure: true, timeoutMs: 15_000 });
    assert.doesNotMatch(r.stdout + r.stderr, /RENEGOTIATING[\s\S]*Verify return code[\s\S]*Verify return code/, 'a second handshake completed');
    assert.match(r.stdout + r.stderr, /Secure Renegotiation IS NOT supported|renegotiation|no renegotiation|RENEGOTIATING/i);
  });

  test('testssl.sh finds no offered weak protocol or cipher', { skip: !testsslAvailable && 'testssl is not installed', timeout: 200_000 }, async () => {
    const out = join(dir, 'testssl.json');
    await run(
      ['testssl', '--quiet', '--color', '0', '--warnings', 'off', '--nodns', 'none', '--ip', '127.0.0.1', '--add-ca', certFile, '-p', '-s', '-f', '-S', '-h', '-U', '--jsonfile', out, `https://${HOST}:${https}/`],
      { allowFailure: true, timeoutMs: 190_000 },
    );
    const findings = JSON.parse(await readFile(out, 'utf8')) as Array<{ id: string; severity: string; finding: string }>;
    const by = (id: string) => findings.find((f) => f.id === id)?.finding ?? '';
    for (const id of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1']) assert.match(by(id), /not offered/, `${id}: ${by(id)}`);
    assert.match(by('TLS1_2'), /offered/);
    assert.match(by('TLS1_3'), /offered/);
    // testssl 3.0's names: AVERAGE is its class of CBC and non-FS suites.
    for (const id of ['cipherlist_NULL', 'cipherlist_aNULL', 'cipherlist_EXPORT', 'cipherlist_LOW', 'cipherlist_3DES_IDEA', 'cipherlist_AVERAGE']) {
      assert.match(by(id), /not offered/, `${id}: ${by(id)}`);
    }
    assert.match(by('PFS'), /offered/);
    assert.match(by('PFS_ECDHE_curves'), /X25519/);
    assert.equal(by('ALPN_HTTP2'), 'h2');
    assert.match(by('HSTS_time'), /365 days|31536000/);
    assert.match(by('secure_client_renego'), /not vulnerable/);
    // The certificate is this test's own self-signed one, without revocation info: its findings are not
    // the edge's. Everything else HIGH or CRITICAL is.
    const bad = findings.filter((f) => ['HIGH', 'CRITICAL'].includes(f.severity) && !f.id.startsWith('cert_'));
    assert.deepEqual(bad.map((f) => `${f.id}: ${f.finding}`), []);
  });
});
