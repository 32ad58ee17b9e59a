import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyPassword, passwordProblem } from './password.ts';
import { hashSecret, newSecret, sameHash, secretKind } from './tokens.ts';
import { ACCOUNT_ACTIONS, ACTIONS, authorize, authorizeRoute, can, ORG_ACTIONS, ROLE_ACTIONS, SCOPE_ACTIONS, visibleTo, type SessionPrincipal, type TokenPrincipal } from './authorize.ts';
import { delayAfter, LOGIN_THROTTLE } from './throttle.ts';
import { newRecoveryCode, normalizeRecoveryCode } from './mfa.ts';
import { ROLES, UserError } from '../core/index.ts';

test('password hashes are salted scrypt at OWASP parameters and verify in constant time', async () => {
  const h1 = await hashPassword('correct horse battery');
  const h2 = await hashPassword('correct horse battery');
  assert.match(h1, /^\$scrypt\$ln=17,r=8,p=1\$/);
  assert.notEqual(h1, h2, 'salted');
  assert.equal(await verifyPassword('correct horse battery', h1), true);
  assert.equal(await verifyPassword('correct horse batterY', h1), false);
  // Corrupt or hostile stored hashes verify nothing and do not throw (nor burn huge memory).
  for (const bad of ['', 'plain', '$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$' + 'A'.repeat(43), h1.slice(0, -5)]) {
    assert.equal(await verifyPassword('x', bad), false, bad);
  }
  assert.ok(passwordProblem('short'));
  assert.ok(passwordProblem(undefined));
  assert.ok(passwordProblem('x'.repeat(1025)));
  assert.equal(passwordProblem('long enough passphrase'), undefined);
});

test('secrets are 256-bit, prefixed, and stored only as their hash', () => {
  const s = newSecret('session');
  assert.match(s, /^ward_ses_[A-Za-z0-9_-]{43}$/);
  assert.equal(secretKind(s), 'session');
  assert.equal(secretKind(newSecret('invite')), 'invite');
  for (const bad of ['', 'ward_ses_', 'ward_xxx_' + 'a'.repeat(43), s + 'a', ' ' + s]) assert.equal(secretKind(bad), undefined, bad);
  assert.match(hashSecret(s), /^[0-9a-f]{64}$/);
  assert.ok(sameHash(hashSecret(s), hashSecret(s)));
  assert.ok(!sameHash(hashSecret(s), hashSecret(newSecret('session'))));
});

const session = (over: Partial<SessionPrincipal> = {}): SessionPrincipal => ({ userId: 'usr_1', email: 'a@example.com', via: 'session', sessionId: 'ses_1', mfaRequiredBy: null, ...over });
const token = (over: Partial<TokenPrincipal> = {}): TokenPrincipal => ({
  userId: 'usr_1',
  email: 'a@example.com',
  via: 'token',
  tokenId: 'tok_1',
  tokenName: 'ci',
  scope: 'read',
  orgId: 'org_a',
  appId: null,
  mfaRequiredBy: null,
  ...over,
});
const code = (c: string) => (e: unknown) => e instanceof UserError && e.code === c;

test('authorize: the role table, table-driven', () => {
  const expected: Record<string, string[]> = {
    owner: [...ORG_ACTIONS],
    admin: ORG_ACTIONS.filter((a) => a !== 'org:owners'),
    developer: ['org:read', 'app:read', 'app:create', 'app:deploy', 'secret:write'],
    // Viewers and auditors may list secrets' names and digests (app:read) but never set one.
    viewer: ['org:read', 'app:read'],
    auditor: ['org:read', 'app:read', 'audit:read'],
  };
  for (const role of ROLES) {
    assert.deepEqual([...ROLE_ACTIONS[role]].sort(), [...expected[role]!].sort(), role);
    for (const action of ORG_ACTIONS) {
      assert.equal(can(role, action), expected[role]!.includes(action), `${role} ${action}`);
      const target = { orgId: 'org_a', role };
      if (can(role, action)) authorize(session(), target, action, 'x');
      else assert.throws(() => authorize(session(), target, action, 'x'), code('forbidden'));
    }
  }
  // Non-members learn nothing: not_found, not forbidden.
  assert.throws(() => authorize(session(), { orgId: 'org_a', role: undefined }, 'app:read', 'app "x"'), code('not_found'));
  assert.throws(() => authorize(session(), { orgId: undefined, role: undefined }, 'app:read', 'app "x"'), code('not_found'));
  assert.deepEqual(new Set(ACTIONS), new Set([...ORG_ACTIONS, ...ACCOUNT_ACTIONS]));
});

test('authorize: a token may do its scope\'s actions intersected with its creator\'s current role', () => {
  for (const scope of ['read', 'deploy', 'admin'] as const) {
    for (const role of ROLES) {
      for (const action of ORG_ACTIONS) {
        const allowed = SCOPE_ACTIONS[scope].has(action) && can(role, action);
        const run = () => authorize(token({ scope }), { orgId: 'org_a', role }, action, 'x');
        if (allowed) run();
        else assert.throws(run, code('forbidden'), `${scope} token of a ${role}: ${action}`);
      }
    }
  }
  // Outside its org, or its app, a token sees nothing.
  assert.throws(() => authorize(token({ scope: 'admin' }), { orgId: 'org_b', role: 'owner' }, 'app:read', 'x'), code('not_found'));
  const appToken = token({ scope: 'deploy', appId: 'app_1' });
  authorize(appToken, { orgId: 'org_a', appId: 'app_1', role: 'owner' }, 'app:deploy', 'x');
  assert.throws(() => authorize(appToken, { orgId: 'org_a', appId: 'app_2', role: 'owner' }, 'app:deploy', 'x'), code('not_found'));
  assert.throws(() => authorize(appToken, { orgId: 'org_a', role: 'owner' }, 'app:create', 'x'), code('forbidden'), 'no org-level writes');
  authorize(appToken, { orgId: 'org_a', role: 'owner' }, 'app:read', 'x');
  assert.equal(visibleTo(appToken, 'org_a', 'app_1'), true);
  assert.equal(visibleTo(appToken, 'org_a', 'app_2'), false);
  assert.equal(visibleTo(token(), 'org_b'), false);
  assert.equal(visibleTo(session(), 'org_b', 'app_9'), true);
});

test('authorizeRoute: tokens never manage accounts; MFA policy leaves only enrolment', () => {
  for (const action of ACTIONS) {
    authorizeRoute(session(), action);
    const blocked = () => authorizeRoute(session({ mfaRequiredBy: 'acme' }), action);
    if (action === 'account:enrol') blocked();
    else assert.throws(blocked, (e: unknown) => e instanceof UserError && e.code === 'mfa_required' && /ward auth mfa enable/.test(e.hint ?? ''), action);
  }
  for (const action of ['account:enrol', 'account:manage'] as const) {
    assert.throws(() => authorizeRoute(token({ scope: 'admin' }), action), code('forbidden'), action);
  }
  authorizeRoute(token(), 'account:read');
  authorizeRoute(token(), 'app:read');
  assert.throws(() => authorizeRoute(token(), 'app:deploy'), code('forbidden'));
  authorizeRoute(token({ scope: 'deploy' }), 'app:deploy');
  assert.throws(() => authorizeRoute(token({ scope: 'deploy' }), 'app:destroy'), code('forbidden'));
  authorizeRoute(token({ scope: 'admin' }), 'app:destroy');
  assert.throws(() => authorizeRoute(token({ mfaRequiredBy: 'acme' }), 'app:read'), code('mfa_required'));
});

test('login throttle: delays double after the free failures and stop at the cap', () => {
  const a = LOGIN_THROTTLE.account;
  assert.deepEqual([1, 5, 6, 7, 8, 9, 10, 11, 12, 50].map((n) => delayAfter(a, n)), [0, 0, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  const s = LOGIN_THROTTLE.source;
  assert.deepEqual([20, 21, 22, 26, 27, 1000].map((n) => delayAfter(s, n)), [0, 1000, 2000, 32000, 60000, 60000]);
  assert.equal(a.hardCap, 100);
});

test('recovery codes: 80 random bits, read back leniently', () => {
  const c = newRecoveryCode();
  assert.match(c, /^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/);
  assert.equal(normalizeRecoveryCode(c.toUpperCase().replaceAll('-', ' ')), c.replaceAll('-', ''));
  assert.equal(normalizeRecoveryCode('abcd-efgh-jkmn-pqrO'), 'abcdefghjkmnpqr0');
  assert.equal(normalizeRecoveryCode('123456'), undefined);
  assert.equal(normalizeRecoveryCode('abcd-efgh-jkmn-pqru'), undefined);
  assert.notEqual(newRecoveryCode(), newRecoveryCode());
});
