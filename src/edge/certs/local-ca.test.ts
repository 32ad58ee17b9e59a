import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run } from '../../exec/index.ts';
import { LocalCaIssuer } from './local-ca.ts';
import { aesGcmSealer } from './sealer.ts';

describe('LocalCaIssuer', () => {
  let dir = '';
  const key = randomBytes(32);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-local-ca-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('makes its CA on first use: ca.crt 0644, ca.key 0600 and sealed, a CA that signs leaves only', async () => {
    const ca = new LocalCaIssuer({ dir: join(dir, 'ca'), sealer: aesGcmSealer(key) });
    const pem = await ca.ready();
    assert.equal(await readFile(ca.certFile, 'utf8'), pem);
    assert.equal((await stat(ca.certFile)).mode & 0o777, 0o644);
    assert.equal((await stat(join(dir, 'ca', 'ca.key'))).mode & 0o777, 0o600);
    const sealed = await readFile(join(dir, 'ca', 'ca.key'), 'utf8');
    assert.doesNotMatch(sealed, /PRIVATE KEY/);
    const cert = new X509Certificate(pem);
    assert.equal(cert.ca, true);
    assert.match(cert.subject, /CN=Ward local CA /);
    // openssl reads the constraints the way browsers do: a CA, path length 0, cert and CRL signing only.
    const text = (await run(['openssl', 'x509', '-noout', '-text', '-in', ca.certFile])).stdout;
    assert.match(text, /CA:TRUE, pathlen:0/);
    assert.match(text, /Certificate Sign, CRL Sign/);
  });

  test('issues a leaf for the names that openssl and a TLS client verify against ca.crt', async () => {
    const ca = new LocalCaIssuer({ dir: join(dir, 'ca'), sealer: aesGcmSealer(key) });
    const c = await ca.issue(['hello.localhost', 'www.hello.localhost']);
    assert.equal(c.name, 'hello.localhost');
    assert.deepEqual(c.names, ['hello.localhost', 'www.hello.localhost']);
    assert.ok(c.notAfter.getTime() - Date.now() < 91 * 86_400_000 && c.notAfter.getTime() - Date.now() > 89 * 86_400_000);
    const leaf = join(dir, 'leaf.pem');
    await writeFile(leaf, c.certPem);
    const verified = await run(['openssl', 'verify', '-CAfile', ca.certFile, '-purpose', 'sslserver', leaf]);
    assert.match(verified.stdout, /: OK$/m);

    const caPem = await readFile(ca.certFile, 'utf8');
    const server = createServer({ key: c.keyPem, cert: c.certPem }, (s) => s.end('hi'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const handshake = (servername: string) =>
        new Promise<string>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port, servername, ca: caPem }, () => resolve(s.authorized ? 'authorized' : String(s.authorizationError)));
          s.on('error', (e) => reject(e));
          s.on('secureConnect', () => s.end());
        });
      assert.equal(await handshake('www.hello.localhost'), 'authorized');
      await assert.rejects(handshake('other.localhost'), /does not match|altnames/i);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('a second issuer on the same directory keeps the CA; another master key cannot open it', async () => {
    const first = await readFile(join(dir, 'ca', 'ca.crt'), 'utf8');
    const again = new LocalCaIssuer({ dir: join(dir, 'ca'), sealer: aesGcmSealer(key) });
    assert.equal(await again.ready(), first);
    const c = await again.issue(['a.localhost']);
    assert.ok(new X509Certificate(c.certPem).checkIssued(new X509Certificate(first)));
    const stranger = new LocalCaIssuer({ dir: join(dir, 'ca'), sealer: aesGcmSealer(randomBytes(32)) });
    await assert.rejects(stranger.issue(['a.localhost']), /does not open/);
  });
});
