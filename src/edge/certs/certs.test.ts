import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../../core/index.ts';
import { IssuanceError, toIssuanceError, type CertificateIssuer } from './acme.ts';
import { backoffDelay, CertManager, renewalTime } from './manager.ts';
import { aesGcmSealer, SealedValueError } from './sealer.ts';
import { certificateFacts, selfSignedCertificate } from './self-signed.ts';
import { CertificateCache, storedFromPem } from './source.ts';
import { FileCertStore, FileIssuanceLock, type StoredCertificate } from './store.ts';
import { copyCertStore, StoreCertStore, StoreIssuanceLock } from './store-backed.ts';
import { SqliteStore, SQLITE_FILE } from '../../store/index.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ward-edge-certs-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function makeCert(names: string[], days = 90, startDaysAgo = 0): Promise<StoredCertificate> {
  const kc = await selfSignedCertificate({ commonName: names[0], names, days });
  const facts = certificateFacts(kc.certPem);
  const shift = startDaysAgo * 86_400_000;
  return { name: names[0]!, names, certPem: kc.certPem, keyPem: kc.keyPem, notBefore: new Date(facts.notBefore.getTime() - shift), notAfter: new Date(facts.notAfter.getTime() - shift), source: 'acme' };
}

describe('aesGcmSealer', () => {
  const key = randomBytes(32);
  test('round-trips and binds the context', async () => {
    const s = aesGcmSealer(key);
    const sealed = await s.seal(Buffer.from('secret key material'), 'cert-key:a.example.com');
    assert.match(sealed, /^v1\./);
    assert.doesNotMatch(sealed, /secret/);
    assert.equal((await s.open(sealed, 'cert-key:a.example.com')).toString(), 'secret key material');
    await assert.rejects(s.open(sealed, 'cert-key:b.example.com'), SealedValueError);
    await assert.rejects(aesGcmSealer(randomBytes(32)).open(sealed, 'cert-key:a.example.com'), SealedValueError);
    const parts = sealed.split('.');
    parts[3] = Buffer.from('tampered').toString('base64url');
    await assert.rejects(s.open(parts.join('.'), 'cert-key:a.example.com'), SealedValueError);
  });
  test('refuses a key of the wrong size', () => {
    assert.throws(() => aesGcmSealer(randomBytes(16)), /32 bytes/);
  });
});

describe('FileCertStore', () => {
  test('stores certificates, status and accounts with keys sealed and files private', async () => {
    const root = join(dir, 'store1');
    const store = new FileCertStore(root, aesGcmSealer(randomBytes(32)));
    const cert = await makeCert(['a.example.com', 'www.a.example.com']);
    await store.putCertificate(cert);
    await store.putAccount({ directoryUrl: 'https://acme.test/dir', email: 'ops@example.com', url: 'https://acme.test/acct/1', keyPem: cert.keyPem });
    await store.putStatus({ name: 'a.example.com', state: 'valid', notAfter: cert.notAfter.toISOString(), renewAt: undefined, lastAttemptAt: undefined, lastError: undefined, failures: 0, nextAttemptAt: undefined });
    const back = await store.getCertificate('a.example.com');
    assert.equal(back?.keyPem, cert.keyPem);
    assert.deepEqual(back?.names, cert.names);
    assert.equal(back?.notAfter.getTime(), cert.notAfter.getTime());
    assert.equal((await store.getAccount('https://acme.test/dir'))?.url, 'https://acme.test/acct/1');
    assert.equal(await store.getAccount('https://other.test/dir'), undefined);
    assert.deepEqual(await store.listCertificates(), ['a.example.com']);
    assert.equal((await store.listStatus())[0]?.state, 'valid');
    for (const sub of await readdir(root)) {
      assert.equal((await stat(join(root, sub))).mode & 0o777, 0o700, `${sub}/ is private`);
      for (const f of await readdir(join(root, sub))) {
        assert.equal((await stat(join(root, sub, f))).mode & 0o777, 0o600, `${sub}/${f} is private`);
        assert.doesNotMatch(await readFile(join(root, sub, f), 'utf8'), /PRIVATE KEY/, `${sub}/${f} holds no plaintext key`);
      }
    }
    await store.deleteCertificate('a.example.com');
    assert.equal(await store.getCertificate('a.example.com'), undefined);
    assert.equal(await store.getStatus('a.example.com'), undefined);
  });
  test('names that could escape the directory are refused', async () => {
    const store = new FileCertStore(join(dir, 'store2'), aesGcmSealer(randomBytes(32)));
    for (const bad of ['../etc/passwd', 'a/b', '..', 'A.example.com', '']) {
      await assert.rejects(store.getCertificate(bad), RangeError, bad);
    }
  });
  test('a key sealed under another key does not open', async () => {
    const root = join(dir, 'store3');
    await new FileCertStore(root, aesGcmSealer(randomBytes(32))).putCertificate(await makeCert(['b.example.com']));
    await assert.rejects(new FileCertStore(root, aesGcmSealer(randomBytes(32))).getCertificate('b.example.com'), SealedValueError);
  });
});

describe('FileIssuanceLock', () => {
  test('one holder at a time; expired locks are taken over; release and refresh check ownership', async () => {
    let now = 1_000_000;
    const lockDir = join(dir, 'locks');
    const a = new FileIssuanceLock(lockDir, () => now);
    const b = new FileIssuanceLock(lockDir, () => now);
    const held = await a.tryAcquire('x.example.com', 60_000);
    assert.ok(held);
    assert.equal(await b.tryAcquire('x.example.com', 60_000), undefined, 'held by a');
    assert.ok(await b.tryAcquire('y.example.com', 60_000), 'other names are independent');
    now += 61_000;
    const taken = await b.tryAcquire('x.example.com', 60_000);
    assert.ok(taken, 'an expired lock is taken over');
    assert.equal(await held.refresh(), false, 'the old holder learns it lost the lock');
    await held.release();
    assert.equal(await a.tryAcquire('x.example.com', 60_000), undefined, "the old holder's release did not free b's lock");
    await taken.release();
    assert.ok(await a.tryAcquire('x.example.com', 60_000));
  });
  test('a lock file that does not parse counts as expired once old', async () => {
    const lockDir = join(dir, 'locks2');
    const l = new FileIssuanceLock(lockDir, () => Date.now() + 120_000);
    assert.ok(await l.tryAcquire('z.example.com', 1000));
    await writeFile(join(lockDir, 'z.example.com.lock'), '{garbage');
    assert.ok(await l.tryAcquire('z.example.com', 1000));
  });
});

describe('CertificateCache', () => {
  test('serves by every name, wildcards one label deep, never an expired certificate', async () => {
    const cache = new CertificateCache();
    const a = await makeCert(['a.example.com', 'alt.example.com']);
    const w = await makeCert(['*.apps.example.com']);
    const old = await makeCert(['old.example.com'], 10, 20);
    cache.set(a);
    cache.set(w);
    cache.set(old);
    assert.equal(cache.getCertificate('a.example.com')?.cert, a.certPem);
    assert.equal(cache.getCertificate('alt.example.com'), cache.getCertificate('a.example.com'), 'one object per certificate');
    assert.equal(cache.getCertificate('x.apps.example.com')?.cert, w.certPem);
    assert.equal(cache.getCertificate('y.x.apps.example.com'), undefined);
    assert.equal(cache.getCertificate('old.example.com'), undefined);
    assert.equal(cache.getCertificate('nothing.example.com'), undefined);
    cache.delete('a.example.com');
    assert.equal(cache.getCertificate('alt.example.com'), undefined);
  });
  test('storedFromPem reads names and dates from an uploaded certificate', async () => {
    const kc = await selfSignedCertificate({ names: ['up.example.com'] });
    const s = storedFromPem(kc.certPem, kc.keyPem, 'manual');
    assert.equal(s.name, 'up.example.com');
    assert.ok(s.notAfter > new Date());
    const nameless = await selfSignedCertificate();
    const invalid = (re: RegExp) => (e: unknown) => e instanceof UserError && e.code === 'certificate_invalid' && re.test(e.message);
    assert.throws(() => storedFromPem(nameless.certPem, nameless.keyPem, 'manual'), invalid(/names no DNS name/));
    assert.throws(() => storedFromPem(kc.certPem, nameless.keyPem, 'manual'), invalid(/does not belong/));
    assert.throws(() => storedFromPem('garbage', kc.keyPem, 'manual'), invalid(/not a PEM X.509/));
    assert.throws(() => storedFromPem(kc.certPem, 'garbage', 'manual'), invalid(/not an unencrypted PEM/));
    assert.throws(() => storedFromPem(kc.certPem, kc.keyPem, 'manual', new Date(Date.now() + 400 * 86_400_000)), invalid(/expired/));
  });
  test('the default certificate names no customer', async () => {
    const d = await selfSignedCertificate();
    assert.deepEqual(certificateFacts(d.certPem).names, []);
  });
});

describe('renewal and backoff', () => {
  test('renewal is at two thirds of the lifetime, minus up to a twentieth (at most a day) of jitter', () => {
    const nb = new Date(Date.UTC(2026, 0, 1));
    const na = new Date(nb.getTime() + 90 * 86_400_000);
    assert.equal(renewalTime(nb, na, () => 0), nb.getTime() + 60 * 86_400_000);
    assert.equal(renewalTime(nb, na, () => 0.999999) > nb.getTime() + 59 * 86_400_000, true);
    const short = new Date(nb.getTime() + 6 * 86_400_000);
    assert.equal(renewalTime(nb, short, () => 0.5), nb.getTime() + 4 * 86_400_000 - 0.5 * 0.3 * 86_400_000);
  });
  test('backoff doubles to its cap with at most 25 % jitter', () => {
    assert.equal(backoffDelay(1, 60_000, 3_600_000, () => 0), 60_000);
    assert.equal(backoffDelay(3, 60_000, 3_600_000, () => 0), 240_000);
    assert.equal(backoffDelay(30, 60_000, 3_600_000, () => 0), 3_600_000);
    assert.equal(backoffDelay(1, 60_000, 3_600_000, () => 0.999), 74_985);
  });
  test('rate-limit messages are recognized and their retry time honoured', () => {
    const e = toIssuanceError(new Error('Error creating new order :: too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2999-01-01 00:00:00 UTC: see https://letsencrypt.org/docs/rate-limits/'));
    assert.equal(e.rateLimited, true);
    assert.ok(e.retryAfterMs && e.retryAfterMs > 86_400_000);
    const v = toIssuanceError(new Error('Invalid response from http://x/.well-known/acme-challenge/t: 404'));
    assert.equal(v.rateLimited, false);
    assert.equal(v.retryAfterMs, undefined);
  });
});

/** FakeIssuer issues self-signed certificates, or fails as told, and counts calls and overlap. */
class FakeIssuer implements CertificateIssuer {
  calls: string[][] = [];
  failWith: IssuanceError | undefined;
  active = 0;
  maxActive = 0;
  delayMs = 0;
  async issue(names: readonly string[]): Promise<StoredCertificate> {
    this.calls.push([...names]);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.failWith) throw this.failWith;
      return await makeCert([...names]);
    } finally {
      this.active--;
    }
  }
}

describe('CertManager', () => {
  const setup = (name: string, now: () => number) => {
    const store = new FileCertStore(join(dir, name), aesGcmSealer(randomBytes(32)));
    const issuer = new FakeIssuer();
    const cache = new CertificateCache();
    const issued: string[] = [];
    const m = new CertManager({ store, issuer, cache, lock: new FileIssuanceLock(join(dir, name, 'locks')), now, random: () => 0, checkIntervalMs: 3_600_000, onIssued: (c) => issued.push(c.name) });
    return { store, issuer, cache, m, issued };
  };

  test('issues pending names, serves them, and renews only when due', async () => {
    let now = Date.now();
    const { issuer, cache, m, issued } = setup('mgr1', () => now);
    await m.add(['a.example.com', 'B.example.com']);
    await m.tick();
    assert.deepEqual(issuer.calls, [['a.example.com'], ['b.example.com']]);
    assert.deepEqual(issued, ['a.example.com', 'b.example.com']);
    assert.ok(cache.getCertificate('a.example.com'));
    const s = (await m.show('a.example.com'))!;
    assert.equal(s.state, 'valid');
    await m.tick();
    assert.equal(issuer.calls.length, 2, 'nothing is due yet');
    // The two certificates can straddle a second boundary (notBefore has whole seconds): wait for the later one.
    const sb = (await m.show('b.example.com'))!;
    now = Math.max(Date.parse(s.renewAt!), Date.parse(sb.renewAt!)) + 1;
    await m.tick();
    assert.equal(issuer.calls.length, 4, 'both are renewed at two thirds of their lifetime');
    assert.equal(await m.remove('a.example.com'), true);
    assert.equal(cache.getCertificate('a.example.com'), undefined);
    assert.deepEqual((await m.list()).map((x) => x.name), ['b.example.com']);
    await m.stop();
  });

  test('failures back off; a rate limit waits for the CA; the error is kept', async () => {
    let now = Date.now();
    const { issuer, m } = setup('mgr2', () => now);
    issuer.failWith = new IssuanceError('validation failed: 404');
    await m.add(['c.example.com']);
    await m.tick();
    let s = (await m.show('c.example.com'))!;
    assert.equal(s.state, 'failing');
    assert.equal(s.failures, 1);
    assert.equal(s.lastError, 'validation failed: 404');
    assert.equal(Date.parse(s.nextAttemptAt!), now + 60_000);
    await m.tick();
    assert.equal(issuer.calls.length, 1, 'no retry before the backoff');
    now += 60_001;
    issuer.failWith = new IssuanceError('too many new orders', { rateLimited: true, retryAfterMs: 5 * 3_600_000 });
    await m.tick();
    s = (await m.show('c.example.com'))!;
    assert.equal(s.failures, 2);
    assert.equal(Date.parse(s.nextAttemptAt!), now + 5 * 3_600_000, "the CA's Retry-After wins over the shorter backoff");
    now += 5 * 3_600_000 + 1;
    issuer.failWith = undefined;
    await m.tick();
    s = (await m.show('c.example.com'))!;
    assert.equal(s.state, 'valid');
    assert.equal(s.failures, 0);
    assert.equal(s.lastError, undefined);
    await m.stop();
  });

  test('two managers sharing a store never issue the same name at once', async () => {
    const root = 'mgr3';
    const store = new FileCertStore(join(dir, root), aesGcmSealer(randomBytes(32)));
    const issuer = new FakeIssuer();
    issuer.delayMs = 100;
    const make = () => new CertManager({ store, issuer, cache: new CertificateCache(), lock: new FileIssuanceLock(join(dir, root, 'locks')), checkIntervalMs: 3_600_000 });
    const m1 = make();
    const m2 = make();
    await m1.add(['d.example.com']);
    await Promise.all([m1.tick(), m2.tick()]);
    assert.equal(issuer.maxActive, 1);
    assert.equal(issuer.calls.length, 1, 'the second manager found the lock held, then the name valid');
    await Promise.all([m1.stop(), m2.stop()]);
  });
});

describe('StoreCertStore and StoreIssuanceLock (the Store, migration 11)', () => {
  test('keys are sealed before they reach the database: its files hold no private key', async () => {
    const dataDir = await mkdtemp(join(dir, 'db-'));
    const db = await SqliteStore.open({ dataDir });
    try {
      const store = new StoreCertStore(db.edgeCerts, aesGcmSealer(randomBytes(32)));
      const cert = await makeCert(['k.example.com']);
      const account = await makeCert(['account.invalid']);
      await store.putCertificate(cert);
      await store.putAccount({ directoryUrl: 'https://acme.test/dir', email: undefined, url: 'https://acme.test/acct/9', keyPem: account.keyPem });
      assert.equal((await store.getCertificate('k.example.com'))?.keyPem, cert.keyPem);
      assert.equal((await store.getAccount('https://acme.test/dir'))?.keyPem, account.keyPem);
      assert.equal((await store.getAccount('https://acme.test/dir'))?.email, undefined);
      // The key's base64 body, in any line of it, appears in neither the database nor its write-ahead log.
      const bodies = [cert.keyPem, account.keyPem].flatMap((k) => k.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')));
      assert.ok(bodies.length > 0);
      const certLine = cert.certPem.split('\n')[1]!;
      let sawCertificate = false;
      for (const f of (await readdir(dataDir)).filter((n) => n.startsWith(SQLITE_FILE))) {
        const bytes = (await readFile(join(dataDir, f))).toString('latin1');
        assert.doesNotMatch(bytes, /PRIVATE KEY/, `${f} holds no PEM key`);
        for (const line of bodies) assert.equal(bytes.includes(line), false, `${f} holds no line of a key`);
        sawCertificate ||= bytes.includes(certLine);
      }
      assert.ok(sawCertificate, 'the search looked where the rows are: the certificate itself is there in clear');
    } finally {
      await db.close();
    }
  });

  test('two edges on one database: one issues, the other serves what it issued; the lock spans both', async () => {
    const dataDir = await mkdtemp(join(dir, 'db-'));
    const [db1, db2] = [await SqliteStore.open({ dataDir }), await SqliteStore.open({ dataDir })];
    const sealer = aesGcmSealer(randomBytes(32));
    const issuer = new FakeIssuer();
    issuer.delayMs = 100;
    const make = (db: SqliteStore) => {
      const cache = new CertificateCache();
      const m = new CertManager({ store: new StoreCertStore(db.edgeCerts, sealer), issuer, cache, lock: new StoreIssuanceLock(db.edgeCerts), checkIntervalMs: 3_600_000 });
      return { cache, m };
    };
    const e1 = make(db1);
    const e2 = make(db2);
    try {
      await e1.m.add(['s.example.com']);
      await e2.m.add(['s.example.com']);
      await Promise.all([e1.m.tick(), e2.m.tick()]);
      assert.equal(issuer.maxActive, 1);
      assert.equal(issuer.calls.length, 1, 'one order for the name, across both edges');
      // Whichever edge issued it, the other picks it up from the store on its next tick.
      await Promise.all([e1.m.tick(), e2.m.tick()]);
      assert.ok(e1.cache.getCertificate('s.example.com'));
      assert.equal(e1.cache.getCertificate('s.example.com')?.cert, e2.cache.getCertificate('s.example.com')?.cert);
      assert.equal((await e2.m.show('s.example.com'))?.state, 'valid');
    } finally {
      await Promise.all([e1.m.stop(), e2.m.stop()]);
      await db1.close();
      await db2.close();
    }
  });

  test('copyCertStore moves a file store into the database once, keeping what the database has', async () => {
    const dataDir = await mkdtemp(join(dir, 'db-'));
    const db = await SqliteStore.open({ dataDir });
    try {
      const sealer = aesGcmSealer(randomBytes(32));
      const files = new FileCertStore(join(dir, 'import-src'), sealer);
      const to = new StoreCertStore(db.edgeCerts, sealer);
      const a = await makeCert(['imp.example.com']);
      await files.putCertificate(a);
      await files.putStatus({ name: 'imp.example.com', state: 'valid', notAfter: a.notAfter.toISOString(), renewAt: undefined, lastAttemptAt: undefined, lastError: undefined, failures: 0, nextAttemptAt: undefined });
      await files.putStatus({ name: 'pending.example.com', state: 'pending', notAfter: undefined, renewAt: undefined, lastAttemptAt: undefined, lastError: undefined, failures: 0, nextAttemptAt: undefined });
      await files.putAccount({ directoryUrl: 'https://acme.test/dir', email: 'ops@example.com', url: 'https://acme.test/acct/1', keyPem: a.keyPem });
      assert.equal(await copyCertStore(files, to, ['https://acme.test/dir']), 2);
      assert.equal((await to.getCertificate('imp.example.com'))?.keyPem, a.keyPem);
      assert.deepEqual((await to.listStatus()).map((s) => s.name), ['imp.example.com', 'pending.example.com']);
      assert.equal((await to.getAccount('https://acme.test/dir'))?.url, 'https://acme.test/acct/1');
      assert.equal(await copyCertStore(files, to, ['https://acme.test/dir']), 0, 'nothing twice');
    } finally {
      await db.close();
    }
  });
});
