import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { StoreFactory } from './store.contract.ts';
import type { EdgeCertificateRecord, EdgeCertStatusRecord, Store } from './types.ts';

const T0 = '2026-03-01T10:00:00.000Z';
const T1 = '2026-03-01T10:05:00.123Z';
const T2 = '2026-05-30T10:00:00.000Z';

function aCert(name: string, over: Partial<EdgeCertificateRecord> = {}): EdgeCertificateRecord {
  return {
    name,
    names: [name, `www.${name}`],
    certPem: `-----BEGIN CERTIFICATE-----\n${name}\n-----END CERTIFICATE-----\n`,
    keySealed: `v1.iv.tag.${name}`,
    notBefore: T0,
    notAfter: T2,
    source: 'acme',
    updatedAt: T0,
    ...over,
  };
}

function aStatus(name: string, over: Partial<EdgeCertStatusRecord> = {}): EdgeCertStatusRecord {
  return { name, state: 'pending', notAfter: null, renewAt: null, lastAttemptAt: null, lastError: null, failures: 0, nextAttemptAt: null, ...over };
}

/**
 * runCertsContract runs the contract of the edge's certificate repo (issue "Edge", migration 11:
 * certificates with sealed keys, status, ACME accounts, owners, the per-name issuance lock) against one
 * Store implementation.
 */
export function runCertsContract(name: string, makeStore: StoreFactory): void {
  describe(`Edge certificates store contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
    });
    afterEach(async () => {
      await cleanup();
    });

    test('certificates: put replaces, list is by name, delete takes the status with it', async () => {
      assert.equal(await store.edgeCerts.getCertificate('a.example.com'), undefined);
      await store.edgeCerts.putCertificate(aCert('b.example.com'));
      await store.edgeCerts.putCertificate(aCert('a.example.com', { source: 'manual' }));
      assert.deepEqual(await store.edgeCerts.getCertificate('a.example.com'), aCert('a.example.com', { source: 'manual' }));
      const renewed = aCert('a.example.com', { keySealed: 'v1.iv.tag.renewed', notAfter: '2026-08-28T10:00:00.000Z', updatedAt: T1 });
      await store.edgeCerts.putCertificate(renewed);
      assert.deepEqual(await store.edgeCerts.getCertificate('a.example.com'), renewed);
      assert.deepEqual(await store.edgeCerts.listCertificateNames(), ['a.example.com', 'b.example.com']);
      await store.edgeCerts.putStatus(aStatus('a.example.com', { state: 'valid' }));
      assert.equal(await store.edgeCerts.deleteCertificate('a.example.com'), true);
      assert.equal(await store.edgeCerts.getCertificate('a.example.com'), undefined);
      assert.equal(await store.edgeCerts.getStatus('a.example.com'), undefined);
      assert.equal(await store.edgeCerts.deleteCertificate('a.example.com'), false);
      // A name with only a status (pending, never issued) is deleted too.
      await store.edgeCerts.putStatus(aStatus('p.example.com'));
      assert.equal(await store.edgeCerts.deleteCertificate('p.example.com'), true);
      assert.deepEqual(await store.edgeCerts.listStatus(), []);
    });

    test('status: every field round-trips, put replaces, add does not, list is by name', async () => {
      const full = aStatus('z.example.com', {
        state: 'failing',
        notAfter: T2,
        renewAt: T1,
        lastAttemptAt: T1,
        lastError: 'urn:ietf:params:acme:error:rateLimited: too many certificates',
        failures: 3,
        nextAttemptAt: T2,
      });
      assert.equal(await store.edgeCerts.addStatus(full), true);
      assert.deepEqual(await store.edgeCerts.getStatus('z.example.com'), full);
      assert.equal(await store.edgeCerts.addStatus(aStatus('z.example.com')), false, 'add keeps an existing status');
      assert.deepEqual(await store.edgeCerts.getStatus('z.example.com'), full);
      await store.edgeCerts.putStatus(aStatus('z.example.com', { state: 'valid', notAfter: T2 }));
      assert.equal((await store.edgeCerts.getStatus('z.example.com'))?.state, 'valid');
      assert.equal((await store.edgeCerts.getStatus('z.example.com'))?.lastError, null);
      await store.edgeCerts.putStatus(aStatus('m.example.com'));
      assert.deepEqual((await store.edgeCerts.listStatus()).map((s) => s.name), ['m.example.com', 'z.example.com']);
      assert.equal(await store.edgeCerts.getStatus('nope.example.com'), undefined);
    });

    test('ACME accounts: one per directory, replaced in place', async () => {
      const dir = 'https://acme.test/dir';
      assert.equal(await store.edgeCerts.getAccount(dir), undefined);
      await store.edgeCerts.putAccount({ directoryUrl: dir, email: null, url: null, keySealed: 'v1.a' });
      await store.edgeCerts.putAccount({ directoryUrl: dir, email: 'ops@example.com', url: 'https://acme.test/acct/1', keySealed: 'v1.a' });
      await store.edgeCerts.putAccount({ directoryUrl: 'https://other.test/dir', email: null, url: null, keySealed: 'v1.b' });
      assert.deepEqual(await store.edgeCerts.getAccount(dir), { directoryUrl: dir, email: 'ops@example.com', url: 'https://acme.test/acct/1', keySealed: 'v1.a' });
    });

    test('owners: set replaces, list is by name, delete', async () => {
      await store.edgeCerts.setOwner('shop.example.com', 'shop');
      await store.edgeCerts.setOwner('api.example.com', 'api');
      await store.edgeCerts.setOwner('shop.example.com', 'shop2');
      assert.equal(await store.edgeCerts.getOwner('shop.example.com'), 'shop2');
      assert.deepEqual(await store.edgeCerts.listOwners(), [
        { name: 'api.example.com', app: 'api' },
        { name: 'shop.example.com', app: 'shop2' },
      ]);
      await store.edgeCerts.deleteOwner('shop.example.com');
      await store.edgeCerts.deleteOwner('shop.example.com');
      assert.equal(await store.edgeCerts.getOwner('shop.example.com'), undefined);
    });

    test('issuance lock: one holder per name; expired locks are taken over; refresh and release check the owner', async () => {
      const now = 1_800_000_000_000; // past 2^31 in milliseconds: the column must be 64-bit
      const l = store.edgeCerts;
      assert.equal(await l.tryLock('x.example.com', 'edge-a', now, 60_000), true);
      assert.equal(await l.tryLock('x.example.com', 'edge-b', now + 59_999, 60_000), false, 'held by edge-a');
      assert.equal(await l.tryLock('y.example.com', 'edge-b', now, 60_000), true, 'other names are independent');
      assert.equal(await l.refreshLock('x.example.com', 'edge-a', now + 30_000, 60_000), true);
      assert.equal(await l.tryLock('x.example.com', 'edge-b', now + 60_000, 60_000), false, 'refresh moved the expiry');
      assert.equal(await l.tryLock('x.example.com', 'edge-b', now + 90_000, 60_000), true, 'an expired lock is taken over');
      assert.equal(await l.refreshLock('x.example.com', 'edge-a', now + 90_001, 60_000), false, 'the old holder learns it lost the lock');
      await l.releaseLock('x.example.com', 'edge-a');
      assert.equal(await l.tryLock('x.example.com', 'edge-a', now + 90_002, 60_000), false, "the old holder's release did not free edge-b's lock");
      await l.releaseLock('x.example.com', 'edge-b');
      assert.equal(await l.tryLock('x.example.com', 'edge-a', now + 90_003, 60_000), true, 'released');
    });

    test('issuance lock: of many concurrent takers exactly one wins', async () => {
      const now = Date.now();
      const fresh = await Promise.all(Array.from({ length: 8 }, (_, i) => store.edgeCerts.tryLock('race.example.com', `edge-${i}`, now, 60_000)));
      assert.equal(fresh.filter(Boolean).length, 1, 'a free lock');
      const expired = await Promise.all(Array.from({ length: 8 }, (_, i) => store.edgeCerts.tryLock('race.example.com', `late-${i}`, now + 60_000, 60_000)));
      assert.equal(expired.filter(Boolean).length, 1, 'an expired lock');
    });
  });
}
