// OCSP stapling, tried from the outside: a test CA made with openssl, its `openssl ocsp` responder on a
// loopback port, the edge serving certificates that name it, and `openssl s_client -status` asking for
// the staple. A good certificate gets one; a revoked one, or one whose responder is down, gets none and
// the handshake goes on. Every process and file is removed at the end, even on failure.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, start } from '../../src/exec/index.ts';
import { CertificateCache, Edge, OcspStapler, certificateFacts, ocspTarget, postOcsp, readOcspResponse } from '../../src/edge/index.ts';
import { freePort } from '../fixtures/pebble.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** asn1Time is index.txt's date form, YYMMDDHHMMSSZ. */
function asn1Time(d: Date): string {
  return d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
}


describe('edge OCSP stapling', { timeout: 120_000 }, () => {
  let dir = '';
  let responder: ChildProcess | undefined;
  let edge: Edge | undefined;
  let ocspPort = 0;
  let httpsPort = 0;
  let stapler: OcspStapler;
  const chains = new Map<string, string>();

  const openssl = (...args: string[]) => run(['openssl', ...args], { cwd: dir });

  /** leaf issues an ECDSA P-256 certificate for `name` from the test CA, naming `ocspUrl` as its responder. */
  async function leaf(name: string, serial: string, ocspUrl: string): Promise<{ certPem: string; keyPem: string }> {
    await openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
    await openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
    await writeFile(join(dir, `${name}.ext`), `subjectAltName=DNS:${name}\nauthorityInfoAccess=OCSP;URI:${ocspUrl}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n`);
    await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${serial}`, '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
    const certPem = (await readFile(join(dir, `${name}.pem`), 'utf8')) + (await readFile(join(dir, 'ca.pem'), 'utf8'));
    return { certPem, keyPem: await readFile(join(dir, `${name}.key`), 'utf8') };
  }

  /** sClient does one handshake asking for a staple and returns what openssl prints. */
  async function sClient(name: string): Promise<string> {
    const r = await run(['openssl', 's_client', '-connect', `127.0.0.1:${httpsPort}`, '-servername', name, '-status', '-CAfile', join(dir, 'ca.pem')], { input: '', timeoutMs: 20_000, allowFailure: true });
    return r.stdout + r.stderr;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-edge-ocsp-'));
    ocspPort = await freePort();
    const deadPort = await freePort(); // nothing listens there
    await openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key');
    await openssl('req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=Ward OCSP Test CA', '-days', '3', '-out', 'ca.pem', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature');
    const url = `http://127.0.0.1:${ocspPort}`;
    const certs = {
      'good.test': await leaf('good.test', '1001', url),
      'revoked.test': await leaf('revoked.test', '1002', url),
      'down.test': await leaf('down.test', '1003', `http://127.0.0.1:${deadPort}`),
    };
    const exp = asn1Time(new Date(Date.now() + 2 * 86_400_000));
    const revokedAt = asn1Time(new Date(Date.now() - 3_600_000));
    await writeFile(join(dir, 'index.txt'), `V\t${exp}\t\t1001\tunknown\t/CN=good.test\nR\t${exp}\t${revokedAt}\t1002\tunknown\t/CN=revoked.test\n`);
    responder = start(['openssl', 'ocsp', '-index', 'index.txt', '-port', String(ocspPort), '-rsigner', 'ca.pem', '-rkey', 'ca.key', '-CA', 'ca.pem', '-nmin', '30', '-ignore_err'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    // Ready when it says so: a probe connection would wedge it (it serves one connection at a time).
    let said = '';
    responder.stderr!.on('data', (d: Buffer) => (said = (said + d.toString()).slice(-4096)));
    for (let i = 0; i < 100 && !said.includes('waiting for OCSP client connections'); i++) await sleep(100);

    const cache = new CertificateCache();
    for (const [name, c] of Object.entries(certs)) {
      chains.set(name, c.certPem);
      const f = certificateFacts(c.certPem);
      cache.set({ name, names: [name], certPem: c.certPem, keyPem: c.keyPem, notBefore: f.notBefore, notAfter: f.notAfter, source: 'manual' });
    }
    stapler = new OcspStapler({ retryMinMs: 60_000 });
    edge = new Edge({ certificates: cache, http: false, https: { host: '127.0.0.1', port: 0 }, ocsp: stapler });
    await edge.start();
    httpsPort = edge.addresses().https!.port;
  });

  after(async () => {
    await edge?.stop({ graceMs: 0 });
    if (responder?.pid !== undefined && responder.exitCode === null) {
      const exited = new Promise((r) => responder!.once('exit', r));
      process.kill(responder.pid, 'SIGKILL');
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a good certificate gets a stapled response that openssl accepts', async () => {
    // The first handshake may come before the fetch it starts has finished: no staple, no waiting.
    let out = '';
    for (let i = 0; i < 40; i++) {
      out = await sClient('good.test');
      assert.match(out, /New, TLSv1\.3, Cipher is/, 'every handshake completes');
      if (/Cert Status: good/.test(out)) break;
      await sleep(250);
    }
    assert.match(out, /OCSP Response Status: successful/);
    assert.match(out, /Cert Status: good/);
    assert.match(out, /Next Update:/);
    assert.match(out, /Verify return code: 0 \(ok\)/);
  });

  test('a revoked certificate gets no staple, and the handshake goes on', async () => {
    const m = { key: '', cert: chains.get('revoked.test')!, notAfter: new Date(Date.now() + 86_400_000) };
    assert.equal(await new OcspStapler().refresh(m), false, 'a REVOKED answer is not kept');
    for (let i = 0; i < 3; i++) {
      const out = await sClient('revoked.test');
      assert.match(out, /New, TLSv1\.3, Cipher is/);
      assert.match(out, /OCSP response: no response sent/);
    }
  });

  test('a responder that is down means no staple, never a failed handshake', async () => {
    for (let i = 0; i < 3; i++) {
      const out = await sClient('down.test');
      assert.match(out, /New, TLSv1\.3, Cipher is/);
      assert.match(out, /OCSP response: no response sent/);
    }
  });

  test('a response is refreshed halfway to nextUpdate and never stapled past it; failures back off', async () => {
    let now = Date.now();
    let calls = 0;
    let down = false;
    const s = new OcspStapler({
      now: () => now,
      retryMinMs: 60_000,
      post: async (url, body, timeoutMs) => {
        calls++;
        if (down) throw new Error('responder down (test)');
        return postOcsp(url, body, timeoutMs);
      },
    });
    const m = { key: '', cert: chains.get('good.test')!, notAfter: new Date(now + 86_400_000) };
    assert.equal(await s.refresh(m), true);
    const first = s.staple(m)!;
    assert.ok(first, 'stapled from memory');
    const w = readOcspResponse(first, ocspTarget(m.cert)!);
    assert.equal(calls, 1);
    assert.equal(s.staple(m), first, 'not due yet: no fetch');
    assert.equal(calls, 1);
    // Past the halfway point with the responder down: the old response is still served, one fetch is
    // tried, and the next waits for the backoff.
    down = true;
    now = w.thisUpdate + (w.nextUpdate - w.thisUpdate) / 2 + 1;
    assert.equal(s.staple(m), first);
    await s.refresh(m).catch(() => {});
    const tried = calls;
    assert.equal(s.staple(m), first);
    assert.equal(calls, tried, 'backing off');
    // Past nextUpdate nothing is stapled, whatever is in memory.
    now = w.nextUpdate + 1;
    assert.equal(s.staple(m), undefined);
    // The responder back: a fresh response once the backoff is over.
    down = false;
    now = Date.now();
    assert.equal(await s.refresh(m), true);
    assert.ok(s.staple(m));
  });

  test('a response is only used for the certificate it is about', async () => {
    const good = ocspTarget(chains.get('good.test')!)!;
    const revoked = ocspTarget(chains.get('revoked.test')!)!;
    const res = await postOcsp(good.url, good.request, 10_000);
    assert.equal(res.status, 200);
    const der = res.body;
    const w = readOcspResponse(der, good);
    assert.ok(w.nextUpdate > w.thisUpdate);
    assert.throws(() => readOcspResponse(der, revoked), /not about this certificate/);
    assert.throws(() => readOcspResponse(Buffer.from('garbage'), good));
    assert.equal(ocspTarget(chains.get('good.test')!.split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----\n'), undefined, 'no issuer in the chain: no stapling');
  });
});
