import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { newId } from '../core/index.ts';
import type { ApiToken, AuthFactor } from '../core/index.ts';
import { aMembership, anApp, anOrg, aSession, aUser, rejectsConflict, type StoreFactory } from './store.contract.ts';
import type { Store } from './types.ts';

const T0 = '2026-03-01T10:00:00.000Z';
const T1 = '2026-03-01T10:05:00.123Z';
const T2 = '2026-03-01T11:00:00.456Z';
const T3 = '2026-03-02T10:00:00.789Z';

function aFactor(userId: string, over: Partial<AuthFactor> = {}): AuthFactor {
  return {
    id: newId('factor'),
    userId,
    type: 'totp',
    label: 'authenticator app',
    secretSealed: 'v1.0000000000000000.sealed',
    publicData: null,
    counter: null,
    createdAt: T0,
    confirmedAt: null,
    lastUsedAt: null,
    ...over,
  };
}

function aToken(orgId: string, createdBy: string, over: Partial<ApiToken> = {}): ApiToken {
  return {
    id: newId('token'),
    name: 'ci',
    tokenHash: newId('token').padEnd(64, '0'),
    orgId,
    appId: null,
    scope: 'read',
    createdBy,
    createdAt: T0,
    expiresAt: T3,
    lastUsedAt: null,
    revokedAt: null,
    ...over,
  };
}

/**
 * runIdentityContract runs the contract of the repos issue "Identity" added (factors, recovery codes,
 * API tokens, org policies, the login throttle, and the membership and session methods it needs) against
 * one Store implementation. The races here are the security properties: a code, a recovery code or a
 * token's first use is accepted exactly once, and no failed login is lost.
 */
export function runIdentityContract(name: string, makeStore: StoreFactory): void {
  describe(`Store contract (identity): ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
    });
    afterEach(async () => {
      await cleanup();
    });

    async function seed() {
      const user = aUser();
      const org = anOrg();
      await store.users.create(user);
      await store.orgs.create(org);
      await store.memberships.create(aMembership(org.id, user.id, 'owner'));
      return { user, org };
    }

    describe('factors', () => {
      test('create, get, listForUser round-trip every field', async () => {
        const { user } = await seed();
        const f = aFactor(user.id, { counter: 59_000_000, confirmedAt: T1, lastUsedAt: T2 });
        const w = aFactor(user.id, { type: 'webauthn', secretSealed: null, publicData: '{"credentialId":"abc"}', createdAt: T1 });
        await store.factors.create(f);
        await store.factors.create(w);
        assert.deepEqual(await store.factors.get(f.id), f);
        assert.deepEqual(await store.factors.listForUser(user.id), [f, w]);
        assert.equal(await store.factors.get(newId('factor')), undefined);
        assert.deepEqual(await store.factors.listForUser(newId('user')), []);
      });

      test('one TOTP factor per user; other types may repeat', async () => {
        const { user } = await seed();
        const f = aFactor(user.id);
        await store.factors.create(f);
        const dup = aFactor(user.id);
        await rejectsConflict(store.factors.create(dup), 'auth_factors.user_totp');
        assert.equal(await store.factors.get(dup.id), undefined);
        await store.factors.create(aFactor(user.id, { type: 'webauthn' }));
        await store.factors.create(aFactor(user.id, { type: 'webauthn' }));
        const other = aUser();
        await store.users.create(other);
        await store.factors.create(aFactor(other.id));
        assert.equal((await store.factors.listForUser(user.id)).length, 3);
      });

      test('confirm happens once; delete removes', async () => {
        const { user } = await seed();
        const f = aFactor(user.id);
        await store.factors.create(f);
        assert.equal(await store.factors.confirm(f.id, T1), true);
        assert.equal(await store.factors.confirm(f.id, T2), false);
        assert.equal((await store.factors.get(f.id))!.confirmedAt, T1);
        await store.factors.delete(f.id);
        assert.equal(await store.factors.get(f.id), undefined);
        assert.equal(await store.factors.confirm(f.id, T2), false);
      });

      test('advanceCounter only moves forward, and of racing equal values exactly one wins', async () => {
        const { user } = await seed();
        const f = aFactor(user.id);
        await store.factors.create(f);
        assert.equal(await store.factors.advanceCounter(f.id, 100, T1), true);
        assert.equal(await store.factors.advanceCounter(f.id, 100, T1), false, 'the same step again');
        assert.equal(await store.factors.advanceCounter(f.id, 99, T1), false, 'an older step');
        const results = await Promise.all(Array.from({ length: 10 }, () => store.factors.advanceCounter(f.id, 101, T2)));
        assert.equal(results.filter(Boolean).length, 1);
        const got = (await store.factors.get(f.id))!;
        assert.equal(got.counter, 101);
        assert.equal(got.lastUsedAt, T2);
      });
    });

    describe('recovery codes', () => {
      test('replace, use once, count, delete', async () => {
        const { user } = await seed();
        const hashes = Array.from({ length: 10 }, (_, i) => String(i).padStart(64, 'a'));
        await store.recoveryCodes.replaceForUser(user.id, hashes, T0);
        assert.equal(await store.recoveryCodes.countUnused(user.id), 10);
        assert.equal(await store.recoveryCodes.use(user.id, hashes[3]!, T1), true);
        assert.equal(await store.recoveryCodes.use(user.id, hashes[3]!, T1), false, 'used already');
        assert.equal(await store.recoveryCodes.use(user.id, 'f'.repeat(64), T1), false, 'unknown');
        const other = aUser();
        await store.users.create(other);
        assert.equal(await store.recoveryCodes.use(other.id, hashes[4]!, T1), false, "another user's code");
        assert.equal(await store.recoveryCodes.countUnused(user.id), 9);
        const racing = await Promise.all(Array.from({ length: 10 }, () => store.recoveryCodes.use(user.id, hashes[5]!, T2)));
        assert.equal(racing.filter(Boolean).length, 1);
        await store.recoveryCodes.replaceForUser(user.id, ['b'.repeat(64)], T2);
        assert.equal(await store.recoveryCodes.countUnused(user.id), 1);
        assert.equal(await store.recoveryCodes.use(user.id, hashes[0]!, T2), false, 'old codes are gone');
        await store.recoveryCodes.deleteForUser(user.id);
        assert.equal(await store.recoveryCodes.countUnused(user.id), 0);
      });
    });

    describe('api tokens', () => {
      test('create, get, findByTokenHash, listForUser round-trip every field', async () => {
        const { user, org } = await seed();
        const app = anApp(org.id);
        await store.apps.create(app);
        const a = aToken(org.id, user.id, { createdAt: T0 });
        const b = aToken(org.id, user.id, { appId: app.id, scope: 'deploy', createdAt: T1, lastUsedAt: T2, revokedAt: T2 });
        await store.tokens.create(a);
        await store.tokens.create(b);
        assert.deepEqual(await store.tokens.get(a.id), a);
        assert.deepEqual(await store.tokens.findByTokenHash(b.tokenHash), b);
        assert.deepEqual(await store.tokens.listForUser(user.id), [b, a], 'newest first');
        assert.equal(await store.tokens.findByTokenHash('0'.repeat(64)), undefined);
        assert.deepEqual(await store.tokens.listForUser(newId('user')), []);
      });

      test('a duplicate token hash is a conflict and writes nothing', async () => {
        const { user, org } = await seed();
        const a = aToken(org.id, user.id);
        await store.tokens.create(a);
        const dup = aToken(org.id, user.id, { tokenHash: a.tokenHash });
        await rejectsConflict(store.tokens.create(dup), 'api_tokens.token_hash');
        assert.equal(await store.tokens.get(dup.id), undefined);
      });

      test('revoke and first use happen once; touch moves forward only', async () => {
        const { user, org } = await seed();
        const t = aToken(org.id, user.id);
        await store.tokens.create(t);
        const first = await Promise.all(Array.from({ length: 10 }, () => store.tokens.markFirstUse(t.id, T1)));
        assert.equal(first.filter(Boolean).length, 1);
        await store.tokens.touch(t.id, T0);
        assert.equal((await store.tokens.get(t.id))!.lastUsedAt, T1);
        await store.tokens.touch(t.id, T2);
        assert.equal((await store.tokens.get(t.id))!.lastUsedAt, T2);
        assert.equal(await store.tokens.revoke(t.id, T2), true);
        assert.equal(await store.tokens.revoke(t.id, T3), false);
        assert.equal((await store.tokens.get(t.id))!.revokedAt, T2);
      });

      test('destroying the app a token is limited to removes the token', async () => {
        const { user, org } = await seed();
        const app = anApp(org.id);
        await store.apps.create(app);
        const t = aToken(org.id, user.id, { appId: app.id });
        await store.tokens.create(t);
        await store.apps.delete(app.id);
        assert.equal(await store.tokens.get(t.id), undefined);
      });
    });

    describe('org policies', () => {
      test('put creates and replaces; forUser lists the member orgs that have one', async () => {
        const { user, org } = await seed();
        const other = anOrg();
        const notMine = anOrg();
        await store.orgs.create(other);
        await store.orgs.create(notMine);
        await store.memberships.create(aMembership(other.id, user.id, 'viewer'));
        assert.equal(await store.policies.get(org.id), undefined);
        const p = { orgId: org.id, requireMfa: true, sessionIdleMs: 30 * 86_400_000, updatedAt: T1, updatedBy: user.id };
        await store.policies.put(p);
        assert.deepEqual(await store.policies.get(org.id), p);
        const p2 = { ...p, requireMfa: false, sessionIdleMs: null, updatedAt: T2 };
        await store.policies.put(p2);
        assert.deepEqual(await store.policies.get(org.id), p2);
        await store.policies.put({ orgId: notMine.id, requireMfa: true, sessionIdleMs: null, updatedAt: T1, updatedBy: null });
        assert.deepEqual(await store.policies.forUser(user.id), [{ ...p2, orgName: org.name }]);
      });
    });

    describe('login throttle', () => {
      test('counts failures in a window and restarts a window that is over', async () => {
        const e1 = await store.throttle.recordFailure('account:x', T1, T0);
        assert.deepEqual(e1, { key: 'account:x', failures: 1, windowStartedAt: T1, blockedUntil: null });
        const e2 = await store.throttle.recordFailure('account:x', T2, T0);
        assert.equal(e2.failures, 2);
        assert.equal(e2.windowStartedAt, T1);
        const e3 = await store.throttle.recordFailure('account:x', T3, T1);
        assert.deepEqual(e3, { key: 'account:x', failures: 1, windowStartedAt: T3, blockedUntil: null }, 'window over: restarted');
        assert.deepEqual(await store.throttle.get(['account:x', 'source:nope']), [e3]);
        assert.deepEqual(await store.throttle.get([]), []);
      });

      test('concurrent failures are all counted', async () => {
        await Promise.all(Array.from({ length: 20 }, () => store.throttle.recordFailure('source:10.0.0.1', T1, T0)));
        assert.equal((await store.throttle.get(['source:10.0.0.1']))[0]!.failures, 20);
      });

      test('refund takes one failure back, never below zero', async () => {
        await store.throttle.recordFailure('r', T1, T0);
        await store.throttle.recordFailure('r', T1, T0);
        await Promise.all([store.throttle.refund('r'), store.throttle.refund('r'), store.throttle.refund('r')]);
        assert.equal((await store.throttle.get(['r']))[0]!.failures, 0);
        await store.throttle.refund('missing');
        assert.deepEqual(await store.throttle.get(['missing']), []);
      });

      test('blockUntil only raises; clear and deleteStale forget', async () => {
        await store.throttle.recordFailure('k', T1, T0);
        await store.throttle.blockUntil('k', T2);
        await store.throttle.blockUntil('k', T1);
        assert.equal((await store.throttle.get(['k']))[0]!.blockedUntil, T2);
        await store.throttle.blockUntil('k', T3);
        assert.equal((await store.throttle.get(['k']))[0]!.blockedUntil, T3);
        await store.throttle.recordFailure('stale', T0, '2000-01-01T00:00:00.000Z');
        await store.throttle.recordFailure('fresh', T2, T0);
        assert.equal(await store.throttle.deleteStale(T2), 1, 'k is still blocked; fresh is recent');
        assert.deepEqual((await store.throttle.get(['k', 'stale', 'fresh'])).map((e) => e.key).sort(), ['fresh', 'k']);
        await store.throttle.clear('k');
        assert.deepEqual((await store.throttle.get(['k'])), []);
      });
    });

    describe('memberships and sessions (identity additions)', () => {
      test('countWithRole counts one org and one role', async () => {
        const { org } = await seed();
        const u2 = aUser();
        await store.users.create(u2);
        await store.memberships.create(aMembership(org.id, u2.id, 'viewer'));
        assert.equal(await store.memberships.countWithRole(org.id, 'owner'), 1);
        assert.equal(await store.memberships.countWithRole(org.id, 'viewer'), 1);
        assert.equal(await store.memberships.countWithRole(org.id, 'admin'), 0);
        assert.equal(await store.memberships.countWithRole(newId('org'), 'owner'), 0);
      });

      test('orgs.lock serializes transactions on one org', async () => {
        const { org } = await seed();
        const order: string[] = [];
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        const first = store.transaction(async (tx) => {
          await tx.orgs.lock(org.id);
          order.push('first locked');
          await held;
          order.push('first done');
        });
        await new Promise((r) => setTimeout(r, 50));
        const second = store.transaction(async (tx) => {
          await tx.orgs.lock(org.id);
          order.push('second locked');
        });
        await new Promise((r) => setTimeout(r, 50));
        release();
        await Promise.all([first, second]);
        assert.deepEqual(order, ['first locked', 'first done', 'second locked']);
        await store.orgs.lock(org.id); // outside a transaction: harmless
      });

      test('revokeAllForUser can spare one session', async () => {
        const { user } = await seed();
        const keep = aSession(user.id);
        const drop = aSession(user.id);
        await store.sessions.create(keep);
        await store.sessions.create(drop);
        assert.equal(await store.sessions.revokeAllForUser(user.id, T2, keep.id), 1);
        assert.equal((await store.sessions.findByTokenHash(keep.tokenHash))!.revokedAt, null);
        assert.equal((await store.sessions.findByTokenHash(drop.tokenHash))!.revokedAt, T2);
      });
    });
  });
}
