import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../core/index.ts';
import {
  AppDataKey,
  DotenvError,
  ephemeralKeyProvider,
  ephemeralSealingKeys,
  keyProviderFromBytes,
  MASTER_KEY_BYTES,
  nextKeyFile,
  openLocalKeyProvider,
  parseDotenv,
  seal,
  SealError,
  sealingKeysFromRoot,
  SecretIntegrityError,
  secretNameProblem,
  secretValueProblem,
  unseal,
  wrappedKeyId,
} from './index.ts';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ward-secrets-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const flip = (s: string, i: number) => {
  const parts = s.split('.');
  const p = parts[i]!;
  parts[i] = (p[0] === 'A' ? 'B' : 'A') + p.slice(1);
  return parts.join('.');
};

test('the local master key file is created once, 0600, 32 bytes, and reused', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'sub', 'master.key');
    const a = await openLocalKeyProvider(file);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'sub'))).mode & 0o777, 0o700);
    assert.equal((await readFile(file)).length, MASTER_KEY_BYTES);
    const b = await openLocalKeyProvider(file);
    assert.equal(a.keyId, b.keyId);
    const dk = randomBytes(32);
    const wrapped = await a.wrap(dk, 'ctx');
    assert.deepEqual(await b.unwrap(wrapped, 'ctx'), dk, 'a restart unwraps what the first start wrapped');
    assert.equal(wrappedKeyId(wrapped), a.keyId);
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

test('a pending rotation key (<file>.next) is loaded for unwrapping only', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'master.key');
    const oldKey = Buffer.alloc(32, 1);
    const newKey = Buffer.alloc(32, 2);
    await writeFile(file, oldKey, { mode: 0o600 });
    await writeFile(nextKeyFile(file), newKey, { mode: 0o600 });
    const p = await openLocalKeyProvider(file);
    assert.equal(p.keyId, keyProviderFromBytes(oldKey).keyId, 'the current file still wraps');
    const underNew = await keyProviderFromBytes(newKey).wrap(Buffer.alloc(32, 9), 'c');
    assert.deepEqual(await p.unwrap(underNew, 'c'), Buffer.alloc(32, 9), 'and keys wrapped under the next one open');
    await chmod(nextKeyFile(file), 0o640);
    await assert.rejects(openLocalKeyProvider(file), /may be read by others/);
  });
});

test('wrapped data keys are bound to their context, their KEK, and tamper-evident', async () => {
  const kek = ephemeralKeyProvider();
  const dk = randomBytes(32);
  const w = await kek.wrap(dk, 'ward/data-key/app/org_a/app_a');
  assert.ok(!w.includes(dk.toString('base64url')));
  assert.notEqual(await kek.wrap(dk, 'ward/data-key/app/org_a/app_a'), w, 'a fresh IV every time');
  await assert.rejects(kek.unwrap(w, 'ward/data-key/app/org_a/app_b'), SealError, 'another app');
  await assert.rejects(ephemeralKeyProvider().unwrap(w, 'ward/data-key/app/org_a/app_a'), /wrapped under master key/, 'another KEK');
  for (const i of [2, 3, 4]) await assert.rejects(kek.unwrap(flip(w, i), 'ward/data-key/app/org_a/app_a'), SealError, `part ${i} changed`);
  await assert.rejects(kek.unwrap('garbage', 'x'), SealError);
  // A provider holding the old key besides a new one opens both, and wraps under the new one only.
  const oldBytes = randomBytes(32);
  const newBytes = randomBytes(32);
  const both = keyProviderFromBytes(newBytes, oldBytes);
  const underOld = await keyProviderFromBytes(oldBytes).wrap(dk, 'c');
  assert.deepEqual(await both.unwrap(underOld, 'c'), dk);
  assert.equal(wrappedKeyId(await both.wrap(dk, 'c')), keyProviderFromBytes(newBytes).keyId);
});

test('sealed values are confidential, bound to their owner and purpose, and tamper-evident', async () => {
  const keys = ephemeralSealingKeys();
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const sealed = await seal(keys, 'totp', secret, 'usr_a');
  assert.ok(!sealed.includes(secret));
  assert.match(sealed, new RegExp(`^v1\\.${keys.keyId}\\.`));
  assert.notEqual(await seal(keys, 'totp', secret, 'usr_a'), sealed, 'a fresh IV every time');
  assert.equal((await unseal(keys, 'totp', sealed, 'usr_a')).toString(), secret);
  await assert.rejects(unseal(keys, 'totp', sealed, 'usr_b'), SealError, 'another owner');
  await assert.rejects(unseal(keys, 'other', sealed, 'usr_a'), SealError, 'another purpose');
  await assert.rejects(unseal(ephemeralSealingKeys(), 'totp', sealed, 'usr_a'), /root key/, 'another root key');
  for (const i of [2, 3, 4]) await assert.rejects(unseal(keys, 'totp', flip(sealed, i), 'usr_a'), SealError, `part ${i} changed`);
  await assert.rejects(unseal(keys, 'totp', 'garbage', 'usr_a'), SealError);
  const root = randomBytes(32);
  assert.equal(sealingKeysFromRoot(root).keyId, sealingKeysFromRoot(Buffer.from(root)).keyId);
  assert.notDeepEqual(await keys.deriveKey('totp'), await keys.deriveKey('edge-certs'), 'purposes get independent keys');
});

test('secret values: AES-256-GCM bound to org, app, name and version; a moved ciphertext fails loudly', () => {
  const dk = randomBytes(32);
  const a = new AppDataKey('app_a', dk);
  const ref = { orgId: 'org_1', appId: 'app_a', name: 'DATABASE_URL', version: 3 };
  const value = 'postgres://u:p4ss@db/x — ünïcode';
  const sealed = a.seal(ref, value);
  assert.ok(!sealed.includes('p4ss') && !Buffer.from(sealed).includes(Buffer.from(value)));
  assert.equal(a.open(ref, sealed), value);
  const moved = [
    { ...ref, appId: 'app_b' },
    { ...ref, orgId: 'org_2' },
    { ...ref, name: 'OTHER' },
    { ...ref, version: 4 },
  ];
  for (const r of moved) {
    const key = r.appId === 'app_b' ? new AppDataKey('app_b', dk) : a;
    assert.throws(() => key.open(r, sealed), (e: unknown) => e instanceof SecretIntegrityError && !e.message.includes(value), JSON.stringify(r));
  }
  assert.throws(() => new AppDataKey('app_b', randomBytes(32)).open({ ...ref, appId: 'app_b' }, sealed), SecretIntegrityError, 'another app\'s key');
  for (const i of [1, 2, 3]) assert.throws(() => a.open(ref, flip(sealed, i)), SecretIntegrityError);
  assert.throws(() => a.seal({ ...ref, appId: 'app_b' }, value), /data key of app_a/);
});

test('digests are keyed per app: equal values match within an app, and reveal nothing without the key', () => {
  const a = new AppDataKey('app_a', randomBytes(32));
  const b = new AppDataKey('app_b', randomBytes(32));
  assert.match(a.digest('hunter2'), /^[0-9a-f]{16}$/);
  assert.equal(a.digest('hunter2'), a.digest('hunter2'));
  assert.notEqual(a.digest('hunter2'), a.digest('hunter3'));
  assert.notEqual(a.digest('hunter2'), b.digest('hunter2'), 'another app, another key');
});

test('secret names and values are checked without quoting the value', () => {
  for (const ok of ['A', 'DATABASE_URL', '_x', 'a1']) assert.equal(secretNameProblem(ok), undefined, ok);
  for (const bad of ['', '1A', 'A-B', 'A B', 'WARD_TOKEN', 'ward_x', 'x'.repeat(256), 'A=B']) assert.ok(secretNameProblem(bad), bad);
  assert.equal(secretValueProblem(''), undefined, 'an empty value is a value');
  const nul = 'sk_live_canary\0';
  assert.ok(!secretValueProblem(nul)!.includes('canary'));
  assert.match(secretValueProblem('x'.repeat(64 * 1024 + 1))!, /65537 bytes/);
});

test('parseDotenv reads what docker compose and dotenv write', () => {
  const text = [
    '# comment',
    '',
    'PLAIN=value',
    'export EXPORTED=yes',
    'SPACED = padded value   ',
    'INLINE=abc # a comment',
    'HASH=abc#not-a-comment',
    "SINGLE='literal \\n $X # kept'",
    'DOUBLE="line1\\nline2 \\"q\\" \\\\"',
    'MULTI="first',
    'second"',
    'EMPTY=',
    'EQUALS=a=b=c',
    'DUP=1',
    'DUP=2',
    'CRLF=x\r',
  ].join('\n');
  const env = parseDotenv('\uFEFF' + text);
  assert.deepEqual(Object.fromEntries(env), {
    PLAIN: 'value',
    EXPORTED: 'yes',
    SPACED: 'padded value',
    INLINE: 'abc',
    HASH: 'abc#not-a-comment',
    SINGLE: 'literal \\n $X # kept',
    DOUBLE: 'line1\nline2 "q" \\',
    MULTI: 'first\nsecond',
    EMPTY: '',
    EQUALS: 'a=b=c',
    DUP: '2',
    CRLF: 'x',
  });
});

test('parseDotenv errors name the line, never its text', () => {
  const cases: Array<[string, number]> = [
    ['A=1\nsk_live_canary_no_equals', 2],
    ['A=1\n=sk_live_canary', 2],
    ['A="sk_live_canary', 1],
    ["A='sk_live_canary\nB=2'", 1],
    ['A="x" sk_live_canary', 1],
    ['1BAD=sk_live_canary', 1],
  ];
  for (const [text, line] of cases) {
    assert.throws(() => parseDotenv(text), (e: unknown) => e instanceof DotenvError && e.line === line && !e.message.includes('canary'), text);
  }
});
