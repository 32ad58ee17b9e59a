import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyPassword, passwordProblem } from './password.ts';
import { hashSecret, newSecret, sameHash, secretKind } from './tokens.ts';
import { ACTIONS, authorize, can, ROLE_ACTIONS } from './authorize.ts';
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

test('authorize: the role table, table-driven', () => {
  const expected: Record<string, string[]> = {
    owner: [...ACTIONS],
    admin: [...ACTIONS],
    developer: ['org:read', 'app:read', 'app:create', 'app:deploy'],
    viewer: ['org:read', 'app:read'],
    auditor: ['org:read', 'app:read', 'audit:read'],
  };
  for (const role of ROLES) {
    assert.deepEqual([...ROLE_ACTIONS[role]].sort(), [...expected[role]!].sort(), role);
    for (const action of ACTIONS) {
      assert.equal(can(role, action), expected[role]!.includes(action), `${role} ${action}`);
      if (!can(role, action)) assert.throws(() => authorize(role, action, 'x'), (e: unknown) => e instanceof UserError && e.code === 'forbidden');
    }
  }
  // Non-members learn nothing: not_found, not forbidden.
  assert.throws(() => authorize(undefined, 'app:read', 'app "x"'), (e: unknown) => e instanceof UserError && e.code === 'not_found');
});
