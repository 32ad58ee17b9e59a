import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../core/index.ts';
import { ephemeralKeyProvider, keyProviderFromBytes, MASTER_KEY_BYTES, openLocalKeyProvider, seal, SealError, unseal } from './index.ts';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ward-secrets-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('the local master key file is created once, 0600, 32 bytes, and reused', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'sub', 'master.key');
    const a = await openLocalKeyProvider(file);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'sub'))).mode & 0o777, 0o700);
    assert.equal((await readFile(file)).length, MASTER_KEY_BYTES);
    const b = await openLocalKeyProvider(file);
    assert.equal(a.keyId, b.keyId);
    assert.deepEqual(await a.deriveKey('totp'), await b.deriveKey('totp'));
    assert.notDeepEqual(await a.deriveKey('totp'), await a.deriveKey('other'), 'purposes get independent keys');
    const sealed = await seal(a, 'totp', 'JBSWY3DPEHPK3PXP', 'usr_1');
    assert.equal((await unseal(b, 'totp', sealed, 'usr_1')).toString(), 'JBSWY3DPEHPK3PXP');
  });
});

test('concurrent first starts agree on one key', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'master.key');
    const keys = await Promise.all(Array.from({ length: 8 }, () => openLocalKeyProvider(file)));
    assert.equal(new Set(keys.map((k) => k.keyId)).size, 1);
  });
});

test('a key file others can read, or of the wrong size, is refused', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'master.key');
    await writeFile(file, Buffer.alloc(32, 1), { mode: 0o644 });
    await chmod(file, 0o644);
    await assert.rejects(openLocalKeyProvider(file), (e: unknown) => e instanceof UserError && e.code === 'invalid_config' && /chmod 600/.test(e.hint ?? ''));
    await chmod(file, 0o600);
    await openLocalKeyProvider(file);
    await writeFile(file, Buffer.alloc(31, 1));
    await assert.rejects(openLocalKeyProvider(file), (e: unknown) => e instanceof UserError && e.code === 'invalid_config' && /31 bytes/.test(e.message));
  });
});

test('sealed values are confidential, bound to their owner and purpose, and tamper-evident', async () => {
  const keys = ephemeralKeyProvider();
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const sealed = await seal(keys, 'totp', secret, 'usr_a');
  assert.ok(!sealed.includes(secret));
  assert.match(sealed, new RegExp(`^v1\\.${keys.keyId}\\.`));
  assert.notEqual(await seal(keys, 'totp', secret, 'usr_a'), sealed, 'a fresh IV every time');
  assert.equal((await unseal(keys, 'totp', sealed, 'usr_a')).toString(), secret);
  await assert.rejects(unseal(keys, 'totp', sealed, 'usr_b'), SealError, 'another owner');
  await assert.rejects(unseal(keys, 'other', sealed, 'usr_a'), SealError, 'another purpose');
  await assert.rejects(unseal(ephemeralKeyProvider(), 'totp', sealed, 'usr_a'), /another|master key/, 'another master key');
  const parts = sealed.split('.');
  for (const i of [2, 3, 4]) {
    const p = parts[i]!;
    const flipped = [...parts];
    flipped[i] = (p[0] === 'A' ? 'B' : 'A') + p.slice(1);
    await assert.rejects(unseal(keys, 'totp', flipped.join('.'), 'usr_a'), SealError, `part ${i} changed`);
  }
  await assert.rejects(unseal(keys, 'totp', 'garbage', 'usr_a'), SealError);
  assert.equal(keyProviderFromBytes(Buffer.alloc(32, 7)).keyId, keyProviderFromBytes(Buffer.alloc(32, 7)).keyId);
});
