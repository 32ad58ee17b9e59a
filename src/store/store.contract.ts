import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { newId } from '../core/index.ts';
import type { App, Invite, Membership, Org, Role, Session, User } from '../core/index.ts';
import { StoreConflictError } from './types.ts';
import type { Store } from './types.ts';
import { sealEntry, verifyAudit, type AuditRecord, type Checkpoint } from '../audit/index.ts';

/** StoreFactory makes a fresh, empty, migrated store, and a cleanup that closes and removes it. */
export type StoreFactory = () => Promise<{ store: Store; cleanup: () => Promise<void> }>;

const T0 = '2026-03-01T10:00:00.000Z';
const T1 = '2026-03-01T10:05:00.123Z';
const T2 = '2026-03-01T11:00:00.456Z';
const T3 = '2026-03-02T10:00:00.789Z';

let seq = 0;
function uniq(prefix: string): string {
  seq += 1;
  return `${prefix}${seq}-${Math.random().toString(36).slice(2, 8)}`;
}

export function aUser(over: Partial<User> = {}): User {
  return { id: newId('user'), email: `${uniq('u')}@example.com`, passwordHash: '$argon2id$v=19$x', createdAt: T0, updatedAt: T0, ...over };
}
export function anOrg(over: Partial<Org> = {}): Org {
  return { id: newId('org'), name: uniq('org-'), createdAt: T0, ...over };
}
export function aMembership(orgId: string, userId: string, role: Role = 'developer', over: Partial<Membership> = {}): Membership {
  return { id: newId('membership'), orgId, userId, role, createdAt: T0, ...over };
}
export function aSession(userId: string, over: Partial<Session> = {}): Session {
  return {
    id: newId('session'),
    userId,
    kind: 'cli',
    tokenHash: uniq('h').padEnd(64, '0'),
    createdAt: T0,
    lastUsedAt: T0,
    idleTimeoutMs: 3_600_000,
    expiresAt: T3,
    revokedAt: null,
    ...over,
  };
}
export function anInvite(orgId: string, createdBy: string, over: Partial<Invite> = {}): Invite {
  return {
    id: newId('invite'),
    orgId,
    role: 'viewer',
    codeHash: uniq('c').padEnd(64, '0'),
    createdBy,
    createdAt: T0,
    expiresAt: T3,
    usedAt: null,
    usedBy: null,
    ...over,
  };
}
export function anApp(orgId: string, over: Partial<App> = {}): App {
  return { id: newId('app'), orgId, name: uniq('app-'), createdAt: T0, updatedAt: T0, ...over };
}

/** rejectsConflict asserts that p fails with StoreConflictError naming `constraint`. */
export async function rejectsConflict(p: Promise<unknown>, constraint: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof StoreConflictError, `expected StoreConflictError, got ${String(e)}`);
    assert.equal(e.constraint, constraint);
    return true;
  });
}

/**
 * runStoreContract runs the Store contract (src/store/types.ts) against one implementation. Every test
 * gets a fresh store from makeStore, so tests neither see nor depend on each other's rows.
 */
export function runStoreContract(name: string, makeStore: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
    });
    afterEach(async () => {
      await cleanup();
    });

    /** seed creates a user, an org and the user's membership in it. */
    async function seed(role: Role = 'owner') {
      const user = aUser();
      const org = anOrg();
      await store.users.create(user);
      await store.orgs.create(org);
      const membership = aMembership(org.id, user.id, role);
      await store.memberships.create(membership);
      return { user, org, membership };
    }

    test('ping answers', async () => {
      await store.ping();
    });

    describe('users', () => {
      test('create, get, findByEmail round-trip every field', async () => {
        const u = aUser({ createdAt: T1, updatedAt: T2 });
        await store.users.create(u);
        assert.deepEqual(await store.users.get(u.id), u);
        assert.deepEqual(await store.users.findByEmail(u.email), u);
      });

      test('get and findByEmail return undefined when nothing matches', async () => {
        assert.equal(await store.users.get(newId('user')), undefined);
        assert.equal(await store.users.findByEmail('nobody@example.com'), undefined);
      });

      test('count counts', async () => {
        assert.equal(await store.users.count(), 0);
        await store.users.create(aUser());
        await store.users.create(aUser());
        const n = await store.users.count();
        assert.equal(n, 2);
        assert.equal(typeof n, 'number');
      });

      test('updatePassword sets hash and updatedAt only', async () => {
        const u = aUser();
        const other = aUser();
        await store.users.create(u);
        await store.users.create(other);
        await store.users.updatePassword(u.id, '$argon2id$new', T2);
        assert.deepEqual(await store.users.get(u.id), { ...u, passwordHash: '$argon2id$new', updatedAt: T2 });
        assert.deepEqual(await store.users.get(other.id), other);
      });

      test('a duplicate email is a conflict and writes nothing', async () => {
        const u = aUser();
        await store.users.create(u);
        const dup = aUser({ email: u.email, passwordHash: 'other' });
        await rejectsConflict(store.users.create(dup), 'users.email');
        assert.equal(await store.users.get(dup.id), undefined);
        assert.deepEqual(await store.users.findByEmail(u.email), u);
        assert.equal(await store.users.count(), 1);
      });

      test('a duplicate id is a conflict', async () => {
        const u = aUser();
        await store.users.create(u);
        await rejectsConflict(store.users.create(aUser({ id: u.id })), 'users.id');
        assert.equal(await store.users.count(), 1);
      });
    });

    describe('orgs', () => {
      test('create, get, findByName', async () => {
        const o = anOrg({ createdAt: T1 });
        await store.orgs.create(o);
        assert.deepEqual(await store.orgs.get(o.id), o);
        assert.deepEqual(await store.orgs.findByName(o.name), o);
        assert.equal(await store.orgs.get(newId('org')), undefined);
        assert.equal(await store.orgs.findByName('no-such-org'), undefined);
      });

      test('a duplicate name is a conflict and writes nothing', async () => {
        const o = anOrg();
        await store.orgs.create(o);
        const dup = anOrg({ name: o.name });
        await rejectsConflict(store.orgs.create(dup), 'orgs.name');
        assert.equal(await store.orgs.get(dup.id), undefined);
      });

      test('listForUser returns the member orgs with the role, oldest first', async () => {
        const u = aUser();
        const stranger = aUser();
        await store.users.create(u);
        await store.users.create(stranger);
        const newer = anOrg({ createdAt: T2 });
        const older = anOrg({ createdAt: T1 });
        const notMine = anOrg({ createdAt: T0 });
        for (const o of [newer, older, notMine]) await store.orgs.create(o);
        await store.memberships.create(aMembership(newer.id, u.id, 'viewer'));
        await store.memberships.create(aMembership(older.id, u.id, 'owner'));
        await store.memberships.create(aMembership(notMine.id, stranger.id, 'owner'));
        assert.deepEqual(await store.orgs.listForUser(u.id), [
          { ...older, role: 'owner' },
          { ...newer, role: 'viewer' },
        ]);
        assert.deepEqual(await store.orgs.listForUser(newId('user')), []);
      });
    });

    describe('memberships', () => {
      test('create, find, listForOrg with email', async () => {
        const { user, org, membership } = await seed('owner');
        const other = aUser();
        await store.users.create(other);
        const m2 = aMembership(org.id, other.id, 'auditor', { createdAt: T1 });
        await store.memberships.create(m2);
        assert.deepEqual(await store.memberships.find(org.id, user.id), membership);
        assert.deepEqual(await store.memberships.find(org.id, other.id), m2);
        assert.equal(await store.memberships.find(org.id, newId('user')), undefined);
        assert.deepEqual(await store.memberships.listForOrg(org.id), [
          { ...membership, email: user.email },
          { ...m2, email: other.email },
        ]);
        assert.deepEqual(await store.memberships.listForOrg(newId('org')), []);
      });

      test('a second membership of a user in an org is a conflict and writes nothing', async () => {
        const { user, org, membership } = await seed('owner');
        const dup = aMembership(org.id, user.id, 'viewer');
        await rejectsConflict(store.memberships.create(dup), 'memberships.org_user');
        assert.deepEqual(await store.memberships.find(org.id, user.id), membership);
        assert.equal((await store.memberships.listForOrg(org.id)).length, 1);
      });

      test('the same user in two orgs is fine', async () => {
        const { user } = await seed();
        const o2 = anOrg();
        await store.orgs.create(o2);
        await store.memberships.create(aMembership(o2.id, user.id));
        assert.equal((await store.orgs.listForUser(user.id)).length, 2);
      });

      test('setRole and remove', async () => {
        const { user, org, membership } = await seed('developer');
        await store.memberships.setRole(membership.id, 'admin');
        assert.deepEqual(await store.memberships.find(org.id, user.id), { ...membership, role: 'admin' });
        await store.memberships.remove(membership.id);
        assert.equal(await store.memberships.find(org.id, user.id), undefined);
        assert.deepEqual(await store.orgs.listForUser(user.id), []);
        // Removing again, or something that never existed, is not an error.
        await store.memberships.remove(membership.id);
        await store.memberships.setRole(newId('membership'), 'viewer');
      });
    });

    describe('sessions', () => {
      test('create and findByTokenHash round-trip every field, including a timeout above 2^31 ms', async () => {
        const { user } = await seed();
        const s = aSession(user.id, { kind: 'web', createdAt: T0, lastUsedAt: T1, idleTimeoutMs: 30 * 86_400_000, expiresAt: T3 });
        await store.sessions.create(s);
        const got = await store.sessions.findByTokenHash(s.tokenHash);
        assert.deepEqual(got, s);
        assert.equal(typeof got!.idleTimeoutMs, 'number');
        assert.equal(await store.sessions.findByTokenHash('0'.repeat(64)), undefined);
      });

      test('a duplicate token hash is a conflict and writes nothing', async () => {
        const { user } = await seed();
        const s = aSession(user.id);
        await store.sessions.create(s);
        const dup = aSession(user.id, { tokenHash: s.tokenHash, kind: 'web' });
        await rejectsConflict(store.sessions.create(dup), 'sessions.token_hash');
        assert.deepEqual(await store.sessions.findByTokenHash(s.tokenHash), s);
      });

      test('touch moves lastUsedAt forward, never back', async () => {
        const { user } = await seed();
        const s = aSession(user.id, { lastUsedAt: T0 });
        await store.sessions.create(s);
        await store.sessions.touch(s.id, T2);
        assert.equal((await store.sessions.findByTokenHash(s.tokenHash))!.lastUsedAt, T2);
        await store.sessions.touch(s.id, T1);
        assert.equal((await store.sessions.findByTokenHash(s.tokenHash))!.lastUsedAt, T2);
      });

      test('revoke sets revokedAt once; the first time stands', async () => {
        const { user } = await seed();
        const s = aSession(user.id);
        const other = aSession(user.id);
        await store.sessions.create(s);
        await store.sessions.create(other);
        await store.sessions.revoke(s.id, T1);
        await store.sessions.revoke(s.id, T2);
        assert.equal((await store.sessions.findByTokenHash(s.tokenHash))!.revokedAt, T1);
        assert.equal((await store.sessions.findByTokenHash(other.tokenHash))!.revokedAt, null);
      });

      test('revokeAllForUser revokes that user\'s unrevoked sessions and counts them', async () => {
        const { user } = await seed();
        const other = aUser();
        await store.users.create(other);
        const a = aSession(user.id);
        const b = aSession(user.id, { kind: 'web' });
        const already = aSession(user.id, { revokedAt: T0 });
        const theirs = aSession(other.id);
        for (const s of [a, b, already, theirs]) await store.sessions.create(s);
        assert.equal(await store.sessions.revokeAllForUser(user.id, T2), 2);
        assert.equal((await store.sessions.findByTokenHash(a.tokenHash))!.revokedAt, T2);
        assert.equal((await store.sessions.findByTokenHash(b.tokenHash))!.revokedAt, T2);
        assert.equal((await store.sessions.findByTokenHash(already.tokenHash))!.revokedAt, T0);
        assert.equal((await store.sessions.findByTokenHash(theirs.tokenHash))!.revokedAt, null);
        assert.equal(await store.sessions.revokeAllForUser(user.id, T3), 0);
      });

      test('deleteExpired removes sessions that ended (expired, idle or revoked) before the time', async () => {
        const { user } = await seed();
        const now = '2026-03-10T12:00:00.000Z';
        const live = aSession(user.id, { lastUsedAt: '2026-03-10T11:30:00.000Z', idleTimeoutMs: 3_600_000, expiresAt: '2026-03-11T00:00:00.000Z' });
        const expired = aSession(user.id, { lastUsedAt: '2026-03-10T11:59:00.000Z', expiresAt: '2026-03-10T11:59:59.999Z' });
        const idle = aSession(user.id, { lastUsedAt: '2026-03-10T10:59:59.000Z', idleTimeoutMs: 3_600_000, expiresAt: '2026-03-11T00:00:00.000Z' });
        const revoked = aSession(user.id, { lastUsedAt: '2026-03-10T11:50:00.000Z', revokedAt: '2026-03-10T11:55:00.000Z', expiresAt: '2026-03-11T00:00:00.000Z' });
        const revokedLater = aSession(user.id, { lastUsedAt: '2026-03-10T11:50:00.000Z', revokedAt: '2026-03-10T12:30:00.000Z', expiresAt: '2026-03-11T00:00:00.000Z' });
        const longIdle = aSession(user.id, { lastUsedAt: '2026-02-01T00:00:00.000Z', idleTimeoutMs: 40 * 86_400_000, expiresAt: '2026-04-01T00:00:00.000Z' });
        for (const s of [live, expired, idle, revoked, revokedLater, longIdle]) await store.sessions.create(s);
        assert.equal(await store.sessions.deleteExpired(now), 3);
        for (const s of [live, revokedLater, longIdle]) assert.ok(await store.sessions.findByTokenHash(s.tokenHash), `${s.id} kept`);
        for (const s of [expired, idle, revoked]) assert.equal(await store.sessions.findByTokenHash(s.tokenHash), undefined);
        assert.equal(await store.sessions.deleteExpired(now), 0);
      });
    });

    describe('invites', () => {
      test('create, findByCodeHash, markUsed exactly once', async () => {
        const { user, org } = await seed();
        const joiner = aUser();
        const late = aUser();
        await store.users.create(joiner);
        await store.users.create(late);
        const inv = anInvite(org.id, user.id, { role: 'developer', createdAt: T1 });
        await store.invites.create(inv);
        assert.deepEqual(await store.invites.findByCodeHash(inv.codeHash), inv);
        assert.equal(await store.invites.findByCodeHash('f'.repeat(64)), undefined);
        assert.equal(await store.invites.markUsed(inv.id, joiner.id, T2), true);
        assert.equal(await store.invites.markUsed(inv.id, late.id, T3), false);
        assert.deepEqual(await store.invites.findByCodeHash(inv.codeHash), { ...inv, usedAt: T2, usedBy: joiner.id });
        assert.equal(await store.invites.markUsed(newId('invite'), joiner.id, T2), false);
      });

      test('markUsed races: exactly one of many concurrent callers wins', async () => {
        const { user, org } = await seed();
        const inv = anInvite(org.id, user.id);
        await store.invites.create(inv);
        const users = Array.from({ length: 10 }, () => aUser());
        for (const u of users) await store.users.create(u);
        const results = await Promise.all(users.map((u) => store.invites.markUsed(inv.id, u.id, T1)));
        assert.equal(results.filter(Boolean).length, 1);
      });

      test('a duplicate code hash is a conflict and writes nothing', async () => {
        const { user, org } = await seed();
        const inv = anInvite(org.id, user.id);
        await store.invites.create(inv);
        const dup = anInvite(org.id, user.id, { codeHash: inv.codeHash, role: 'owner' });
        await rejectsConflict(store.invites.create(dup), 'invites.code_hash');
        assert.deepEqual(await store.invites.findByCodeHash(inv.codeHash), inv);
      });
    });

    describe('apps', () => {
      test('create, get, findByName, delete', async () => {
        const { org } = await seed();
        const a = anApp(org.id, { createdAt: T1, updatedAt: T2 });
        await store.apps.create(a);
        assert.deepEqual(await store.apps.get(a.id), a);
        assert.deepEqual(await store.apps.findByName(a.name), a);
        assert.equal(await store.apps.get(newId('app')), undefined);
        assert.equal(await store.apps.findByName('no-such-app'), undefined);
        await store.apps.delete(a.id);
        assert.equal(await store.apps.get(a.id), undefined);
        assert.equal(await store.apps.findByName(a.name), undefined);
        await store.apps.delete(a.id);
      });

      test('names are unique across orgs; a conflict writes nothing', async () => {
        const { org } = await seed();
        const o2 = anOrg();
        await store.orgs.create(o2);
        const a = anApp(org.id);
        await store.apps.create(a);
        const dup = anApp(o2.id, { name: a.name });
        await rejectsConflict(store.apps.create(dup), 'apps.name');
        assert.equal(await store.apps.get(dup.id), undefined);
        assert.deepEqual(await store.apps.listForOrg(o2.id), []);
      });

      test('a deleted app\'s name can be used again', async () => {
        const { org } = await seed();
        const a = anApp(org.id);
        await store.apps.create(a);
        await store.apps.delete(a.id);
        const again = anApp(org.id, { name: a.name });
        await store.apps.create(again);
        assert.deepEqual(await store.apps.findByName(a.name), again);
      });

      test('listForOrg and listForUser order by name in byte order', async () => {
        const { user, org } = await seed();
        const o2 = anOrg();
        const o3 = anOrg();
        await store.orgs.create(o2);
        await store.orgs.create(o3);
        await store.memberships.create(aMembership(o2.id, user.id, 'viewer'));
        const suffix = uniq('');
        // "a-c" before "ab" is byte order; a locale collation (en_US) would ignore "-" and flip them.
        const ab = anApp(org.id, { name: `ab${suffix}` });
        const ac = anApp(org.id, { name: `a-c${suffix}` });
        const b = anApp(o2.id, { name: `b${suffix}` });
        const hidden = anApp(o3.id, { name: `aa${suffix}` });
        for (const a of [ab, b, hidden, ac]) await store.apps.create(a);
        assert.deepEqual(await store.apps.listForOrg(org.id), [ac, ab]);
        assert.deepEqual(await store.apps.listForOrg(o3.id), [hidden]);
        assert.deepEqual(await store.apps.listForUser(user.id), [ac, ab, b]);
        assert.deepEqual(await store.apps.listForUser(newId('user')), []);
      });
    });

    describe('audit', () => {
      /** entry makes the next sealed entry of a chain after prev. */
      function entry(chain: string, prev: AuditRecord | undefined, over: Partial<AuditRecord> = {}): AuditRecord {
        const n = (prev?.seq ?? 0) + 1;
        return sealEntry(
          {
            chain,
            id: newId('audit'),
            at: new Date(Date.parse(T0) + n * 1000).toISOString(),
            org_id: chain === '_server' ? null : chain,
            actor_type: 'user',
            actor_id: newId('user'),
            actor_label: 'ann@example.com',
            action: 'app.create',
            target: `app:${newId('app')}`,
            outcome: 'success',
            source_ip: '192.0.2.7',
            request_id: `req_${n}`,
            details: { name: `app-${n}`, nested: { list: [1, 'two', null, true] } },
            ...over,
          },
          prev,
        );
      }
      function chainOf(chain: string, n: number): AuditRecord[] {
        const out: AuditRecord[] = [];
        for (let i = 0; i < n; i++) out.push(entry(chain, out.at(-1)));
        return out;
      }

      test('append, head and entries round-trip every field', async () => {
        const chain = newId('org');
        assert.equal(await store.audit.head(chain), undefined);
        assert.deepEqual(await store.audit.entries(chain), []);
        const [a, b] = chainOf(chain, 2);
        const c = entry(chain, b, { actor_type: 'anonymous', actor_id: null, actor_label: null, target: null, source_ip: null, request_id: null, outcome: 'denied', details: {} });
        for (const e of [a!, b!, c]) await store.audit.append(e);
        assert.deepEqual(await store.audit.head(chain), c);
        assert.deepEqual(await store.audit.entries(chain), [a, b, c]);
        assert.equal(typeof (await store.audit.head(chain))!.seq, 'number');
        assert.ok(verifyAudit(await store.audit.entries(chain), [], []).ok, 'what comes back hashes as it went in');
      });

      test('a second entry at the same (chain, seq) is a fork: a conflict, and the first stays', async () => {
        const chain = newId('org');
        const [a] = chainOf(chain, 1);
        await store.audit.append(a!);
        const fork = entry(chain, undefined, { action: 'forged' });
        await rejectsConflict(store.audit.append(fork), 'audit_entries.chain_seq');
        assert.deepEqual(await store.audit.entries(chain), [a]);
        // The same seq in another chain is no conflict.
        await store.audit.append(entry(newId('org'), undefined));
      });

      test('list filters by org, chain, since, afterSeq and limit', async () => {
        const o1 = newId('org');
        const o2 = newId('org');
        const c1 = chainOf(o1, 5);
        const c2 = chainOf(o2, 3);
        const srv = chainOf('_server', 2);
        for (const e of [...c1, ...c2, ...srv]) await store.audit.append(e);
        assert.deepEqual(await store.audit.list({ orgId: o1 }), c1);
        assert.deepEqual(await store.audit.list({ chain: '_server' }), srv);
        assert.deepEqual(await store.audit.list({ orgId: o1, since: c1[2]!.at }), c1.slice(2));
        assert.deepEqual(await store.audit.list({ orgId: o1, afterSeq: 3 }), c1.slice(3));
        assert.deepEqual(await store.audit.list({ orgId: o1, limit: 2 }), c1.slice(0, 2));
        assert.deepEqual(await store.audit.list({ orgId: o1, afterSeq: 2, limit: 2 }), c1.slice(2, 4));
        const all = await store.audit.list({});
        assert.equal(all.length, 10);
        for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.at <= all[i]!.at, 'all chains: by time');
        assert.deepEqual(await store.audit.list({ orgId: newId('org') }), []);
        assert.deepEqual(await store.audit.chains(), [o1, o2, '_server'].sort());
      });

      test('checkpoints: add, list by chain, and a duplicate is a conflict', async () => {
        const o1 = newId('org');
        const o2 = newId('org');
        const cp = (chain: string, seq: number): Checkpoint => ({ chain, seq, hash: 'ab'.repeat(32), at: T1, key_id: '0123456789abcdef', signature: 'c2ln' });
        await store.audit.addCheckpoint(cp(o1, 100));
        await store.audit.addCheckpoint(cp(o1, 7));
        await store.audit.addCheckpoint(cp(o2, 3));
        await rejectsConflict(store.audit.addCheckpoint({ ...cp(o1, 7), signature: 'other' }), 'audit_checkpoints.chain_seq');
        assert.deepEqual(await store.audit.checkpoints(o1), [cp(o1, 7), cp(o1, 100)]);
        assert.equal((await store.audit.checkpoints()).length, 3);
        assert.deepEqual(await store.audit.checkpoints(newId('org')), []);
        assert.ok((await store.audit.chains()).includes(o2), 'a chain with only checkpoints is still listed');
      });

      test('keys: addKey is idempotent per key_id; keys lists them oldest first', async () => {
        assert.deepEqual(await store.audit.keys(), []);
        const k1 = { keyId: '1111111111111111', publicKeyPem: '-----BEGIN PUBLIC KEY-----\nAAA\n-----END PUBLIC KEY-----\n', createdAt: T1 };
        const k2 = { keyId: '2222222222222222', publicKeyPem: '-----BEGIN PUBLIC KEY-----\nBBB\n-----END PUBLIC KEY-----\n', createdAt: T0 };
        await store.audit.addKey(k1);
        await store.audit.addKey(k2);
        await store.audit.addKey({ ...k1, createdAt: T3 });
        assert.deepEqual(await store.audit.keys(), [k2, k1]);
        await store.transaction(async (tx) => tx.audit.addKey(k1));
      });

      test('an entry appended in a transaction that rolls back is not written', async () => {
        const chain = newId('org');
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.audit.append(entry(chain, await tx.audit.head(chain)));
            throw new Error('the change failed');
          }),
          /the change failed/,
        );
        assert.deepEqual(await store.audit.entries(chain), []);
      });

      test('20 concurrent appends to one chain take seq 1..20 and form a valid chain', async () => {
        const chain = newId('org');
        await Promise.all(
          Array.from({ length: 20 }, () =>
            store.transaction(async (tx) => {
              const head = await tx.audit.head(chain);
              // Yield between reading the head and appending, as a real service does, to invite a race.
              await new Promise((r) => setTimeout(r, 1));
              await tx.audit.append(entry(chain, head));
            }),
          ),
        );
        const got = await store.audit.entries(chain);
        assert.deepEqual(got.map((e) => e.seq), Array.from({ length: 20 }, (_, i) => i + 1));
        const r = verifyAudit(got, [], []);
        assert.ok(r.ok, JSON.stringify(r.problems));
      });
    });

    describe('transactions', () => {
      test('commit: all writes are visible after fn resolves, and its value is returned', async () => {
        const u = aUser();
        const o = anOrg();
        const result = await store.transaction(async (tx) => {
          assert.equal(tx.kind, store.kind);
          await tx.users.create(u);
          await tx.orgs.create(o);
          await tx.memberships.create(aMembership(o.id, u.id, 'owner'));
          // A transaction reads its own writes.
          assert.deepEqual(await tx.users.get(u.id), u);
          return 42;
        });
        assert.equal(result, 42);
        assert.deepEqual(await store.users.get(u.id), u);
        assert.deepEqual(await store.orgs.listForUser(u.id), [{ ...o, role: 'owner' }]);
      });

      test('rollback: when fn throws, nothing is written and the same error is rethrown', async () => {
        const u = aUser();
        const o = anOrg();
        const boom = new Error('boom');
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.users.create(u);
            await tx.orgs.create(o);
            throw boom;
          }),
          (e) => e === boom,
        );
        assert.equal(await store.users.get(u.id), undefined);
        assert.equal(await store.orgs.get(o.id), undefined);
        assert.equal(await store.users.count(), 0);
      });

      test('rollback undoes updates and deletes too', async () => {
        const { user, org, membership } = await seed('developer');
        const a = anApp(org.id);
        await store.apps.create(a);
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.users.updatePassword(user.id, 'changed', T3);
            await tx.memberships.setRole(membership.id, 'owner');
            await tx.apps.delete(a.id);
            throw new Error('abort');
          }),
          /abort/,
        );
        assert.deepEqual(await store.users.get(user.id), user);
        assert.deepEqual(await store.memberships.find(org.id, user.id), membership);
        assert.deepEqual(await store.apps.get(a.id), a);
      });

      test('a conflict inside a transaction rolls it back when it propagates', async () => {
        const existing = aUser();
        await store.users.create(existing);
        const o = anOrg();
        await rejectsConflict(
          store.transaction(async (tx) => {
            await tx.orgs.create(o);
            await tx.users.create(aUser({ email: existing.email }));
          }),
          'users.email',
        );
        assert.equal(await store.orgs.get(o.id), undefined);
      });

      test('a conflict caught inside a transaction writes nothing, and the transaction goes on', async () => {
        const existing = anOrg();
        await store.orgs.create(existing);
        const u = aUser();
        const o = anOrg();
        await store.transaction(async (tx) => {
          await tx.users.create(u);
          const dup = anOrg({ name: existing.name });
          await rejectsConflict(tx.orgs.create(dup), 'orgs.name');
          assert.equal(await tx.orgs.get(dup.id), undefined);
          await tx.orgs.create(o);
        });
        assert.deepEqual(await store.users.get(u.id), u);
        assert.deepEqual(await store.orgs.get(o.id), o);
      });

      test('nested transaction() joins the outer one: commits with it', async () => {
        const u = aUser();
        const o = anOrg();
        await store.transaction(async (tx) => {
          await tx.users.create(u);
          const inner = await tx.transaction(async (tx2) => {
            await tx2.orgs.create(o);
            return 'inner';
          });
          assert.equal(inner, 'inner');
          // The inner writes are not committed on their own: they are part of this transaction.
          assert.deepEqual(await tx.orgs.get(o.id), o);
        });
        assert.deepEqual(await store.users.get(u.id), u);
        assert.deepEqual(await store.orgs.get(o.id), o);
      });

      test('nested transaction() joins the outer one: rolls back with it', async () => {
        const u = aUser();
        const o = anOrg();
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.users.create(u);
            await tx.transaction(async (tx2) => {
              await tx2.orgs.create(o);
            });
            throw new Error('outer fails after inner succeeded');
          }),
          /outer fails/,
        );
        assert.equal(await store.users.get(u.id), undefined);
        assert.equal(await store.orgs.get(o.id), undefined);
      });

      test('an error in a nested transaction rolls back the whole transaction', async () => {
        const u = aUser();
        const o = anOrg();
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.users.create(u);
            await tx.transaction(async (tx2) => {
              await tx2.orgs.create(o);
              throw new Error('inner');
            });
          }),
          /inner/,
        );
        assert.equal(await store.users.get(u.id), undefined);
        assert.equal(await store.orgs.get(o.id), undefined);
      });

      test('20 concurrent transactions all commit', async () => {
        const made = await Promise.all(
          Array.from({ length: 20 }, () =>
            store.transaction(async (tx) => {
              const u = aUser();
              const o = anOrg();
              await tx.users.create(u);
              await tx.orgs.create(o);
              await tx.memberships.create(aMembership(o.id, u.id, 'owner'));
              await tx.apps.create(anApp(o.id));
              return { u, o };
            }),
          ),
        );
        assert.equal(await store.users.count(), 20);
        for (const { u, o } of made) {
          assert.deepEqual(await store.orgs.listForUser(u.id), [{ ...o, role: 'owner' }]);
          assert.equal((await store.apps.listForUser(u.id)).length, 1);
        }
      });

      test('20 concurrent creates of one name: exactly one wins, the rest conflict', async () => {
        const { org } = await seed();
        const name = uniq('race-');
        const results = await Promise.allSettled(Array.from({ length: 20 }, () => store.apps.create(anApp(org.id, { name }))));
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        for (const r of results) {
          if (r.status === 'rejected') {
            assert.ok(r.reason instanceof StoreConflictError, String(r.reason));
            assert.equal(r.reason.constraint, 'apps.name');
          }
        }
        assert.equal((await store.apps.listForOrg(org.id)).length, 1);
      });

      test('20 concurrent transactions racing for one email: one commits, the others roll back whole', async () => {
        const email = `${uniq('race')}@example.com`;
        const orgs = Array.from({ length: 20 }, () => anOrg());
        const results = await Promise.allSettled(
          orgs.map((o) =>
            store.transaction(async (tx) => {
              await tx.orgs.create(o);
              await tx.users.create(aUser({ email }));
            }),
          ),
        );
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [orgs[i]!] : []));
        assert.equal(won.length, 1);
        for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof StoreConflictError, String(r.reason));
        for (const o of orgs) assert.equal(Boolean(await store.orgs.get(o.id)), o === won[0]);
      });
    });

    test('timestamps come back exactly as written, as ISO-8601 UTC strings', async () => {
      const stamps = ['2026-01-01T00:00:00.000Z', '1999-12-31T23:59:59.999Z', new Date().toISOString(), '2100-02-28T12:34:56.001Z'];
      for (const t of stamps) {
        const u = aUser({ createdAt: t, updatedAt: t });
        await store.users.create(u);
        const got = await store.users.get(u.id);
        assert.equal(got!.createdAt, t);
        assert.equal(got!.updatedAt, t);
        assert.equal(new Date(got!.createdAt).toISOString(), t);
      }
    });
  });
}
