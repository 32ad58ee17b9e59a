import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../core/index.ts';

/**
 * KeyProvider holds the key-encryption key (KEK) and wraps and unwraps data keys with it. Nothing else
 * ever touches the KEK: every key that protects data at rest (one per app for secrets, one for the
 * server's own sealed values) is a random data key stored only in wrapped form, so the KEK can be rotated
 * by re-wrapping a handful of data keys without touching any value (see rotate.ts).
 *
 * The shape is that of a KMS (AWS KMS Encrypt/Decrypt, Vault transit, a PKCS#11 HSM): the local key file
 * below is one implementation; a KMS-backed one only has to implement these three members.
 *
 * Contract, for every implementation:
 * - wrap binds the wrapped key to `context` (authenticated, not secret): unwrap with another context fails.
 * - A wrapped key names the KEK that wrapped it; unwrap opens keys wrapped under any KEK the provider
 *   still holds (the current one, and during a rotation the next one), and throws SealError otherwise.
 * - Methods are safe for concurrent use; wrap and unwrap never log or keep what they are given.
 */
export interface KeyProvider {
  /** keyId names the KEK that wrap uses, without revealing anything about it. */
  readonly keyId: string;
  /** wrap encrypts a data key under the current KEK, bound to context; the result is printable text. */
  wrap(dataKey: Buffer, context: string): Promise<string>;
  /** unwrap opens what wrap made with the same context, or throws SealError. */
  unwrap(wrapped: string, context: string): Promise<Buffer>;
}

/** MASTER_KEY_BYTES is the size of the master key (the KEK): 256 bits, for AES-256 and HKDF-SHA256. */
export const MASTER_KEY_BYTES = 32;

/** SealError says a sealed value or wrapped key cannot be opened: tampered, bound to other data, or under another key. */
export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}

function hkdf(key: Buffer, info: string, bytes = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), info, bytes));
}

/** keyIdOf names a 32-byte key by 8 bytes of HKDF output: stable, and says nothing about the key. */
function keyIdOf(key: Buffer): string {
  return hkdf(key, 'ward/key-id', 8).toString('hex');
}

/**
 * lengthPrefixed joins parts so that no two different lists encode the same: ("a", "bc") and ("ab", "c")
 * differ. Associated data is built with it everywhere in this folder.
 */
export function lengthPrefixed(parts: readonly string[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    const b = Buffer.from(p, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    out.push(len, b);
  }
  return Buffer.concat(out);
}

/** gcmSeal encrypts with AES-256-GCM and a fresh 96-bit IV; it returns iv, ciphertext and tag. */
export function gcmSeal(key: Buffer, plaintext: Buffer, aad: Buffer): { iv: Buffer; ct: Buffer; tag: Buffer } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, ct, tag: cipher.getAuthTag() };
}

/** gcmOpen opens what gcmSeal made, or returns undefined when the tag does not verify. */
export function gcmOpen(key: Buffer, iv: Buffer, ct: Buffer, tag: Buffer, aad: Buffer): Buffer | undefined {
  if (iv.length !== 12 || tag.length !== 16) return undefined;
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    return undefined;
  }
}

// `w1.<kek id>.<iv>.<ciphertext>.<tag>`, base64url parts: a wrapped data key.
const WRAPPED_RE = /^w1\.([0-9a-f]{16})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{1,400})\.([A-Za-z0-9_-]{22})$/;

/**
 * LocalKeys is the KeyProvider over master keys held in memory: the current one, which wraps, and others
 * (during a rotation) that only unwrap. The KEK itself never encrypts anything: a wrapping key is derived
 * from it (HKDF-SHA256, RFC 5869), so the same file could later feed other, independent purposes.
 */
class LocalKeys implements KeyProvider {
  readonly keyId: string;
  readonly #wrapKeys = new Map<string, Buffer>();

  constructor(current: Buffer, others: readonly Buffer[] = []) {
    for (const k of [current, ...others]) {
      if (k.length !== MASTER_KEY_BYTES) throw new RangeError(`a master key has ${MASTER_KEY_BYTES} bytes`);
      this.#wrapKeys.set(keyIdOf(k), hkdf(k, 'ward/kek-wrap'));
    }
    this.keyId = keyIdOf(current);
  }

  /** holds reports whether this provider can unwrap keys wrapped under the KEK keyId. */
  holds(keyId: string): boolean {
    return this.#wrapKeys.has(keyId);
  }

  async wrap(dataKey: Buffer, context: string): Promise<string> {
    const { iv, ct, tag } = gcmSeal(this.#wrapKeys.get(this.keyId)!, dataKey, lengthPrefixed(['ward/wrap', context]));
    return ['w1', this.keyId, iv.toString('base64url'), ct.toString('base64url'), tag.toString('base64url')].join('.');
  }

  async unwrap(wrapped: string, context: string): Promise<Buffer> {
    const m = WRAPPED_RE.exec(wrapped);
    if (!m) throw new SealError('not a wrapped key');
    const key = this.#wrapKeys.get(m[1]!);
    if (!key) {
      throw new SealError(
        `the data key is wrapped under master key ${m[1]}, but this server holds master key ${this.keyId}; every control plane needs the same --master-key-file`,
      );
    }
    const plain = gcmOpen(key, Buffer.from(m[2]!, 'base64url'), Buffer.from(m[3]!, 'base64url'), Buffer.from(m[4]!, 'base64url'), lengthPrefixed(['ward/wrap', context]));
    if (!plain) throw new SealError('the wrapped data key was altered, or belongs to other data');
    return plain;
  }
}

/** wrappedKeyId returns the id of the KEK a wrapped key names, or undefined for anything malformed. */
export function wrappedKeyId(wrapped: string): string | undefined {
  return WRAPPED_RE.exec(wrapped)?.[1];
}

/**
 * nextKeyFile is where a KEK rotation keeps the new master key until it has re-wrapped every data key
 * (rotate.ts). A server that finds it at start can unwrap under both keys, so a rotation interrupted at
 * any point leaves a server that starts and reads everything.
 */
export function nextKeyFile(file: string): string {
  return `${file}.next`;
}

/**
 * openLocalKeyProvider reads the master key from a file of exactly 32 random bytes, creating it (mode
 * 0600, its folder 0700) on first start, plus the key of an unfinished rotation (`<file>.next`) when there
 * is one. A key file that others may read, or of the wrong size, is refused rather than used: a master key
 * in the open protects nothing, and a truncated one would silently make everything sealed unreadable.
 */
export async function openLocalKeyProvider(file: string): Promise<KeyProvider> {
  let key: Buffer;
  try {
    key = await readKeyFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e instanceof UserError ? e : keyFileError(file, e);
    await createKeyFile(file);
    // Read back through the same checks: a concurrent first start may have made the file instead.
    key = await readKeyFile(file);
  }
  const others: Buffer[] = [];
  try {
    others.push(await readKeyFile(nextKeyFile(file)));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e instanceof UserError ? e : keyFileError(nextKeyFile(file), e);
  }
  return new LocalKeys(key, others);
}

/** readKeyFile reads a master key file and checks its mode and size. */
export async function readKeyFile(file: string): Promise<Buffer> {
  const key = await readFile(file);
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new UserError('invalid_config', `the master key file ${file} may be read by others (mode ${mode.toString(8).padStart(4, '0')})`, {
      hint: `restrict it: chmod 600 ${file}`,
    });
  }
  if (key.length !== MASTER_KEY_BYTES) {
    throw new UserError('invalid_config', `the master key file ${file} has ${key.length} bytes; a master key has ${MASTER_KEY_BYTES}`, {
      hint: 'restore the original key file from your backup; without it, sealed data (app secrets, MFA secrets) cannot be read',
    });
  }
  return key;
}

/**
 * createKeyFile writes 32 fresh random bytes to file (0600, folder 0700) and returns them; when another
 * process made the file first, its key is returned instead, so concurrent first starts agree.
 */
export async function createKeyFile(file: string): Promise<Buffer> {
  const key = randomBytes(MASTER_KEY_BYTES);
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(key);
      await fh.sync();
    } finally {
      await fh.close();
    }
    // The umask may have taken bits away, never added them; set the mode explicitly all the same.
    await chmod(tmp, 0o600);
    // link() publishes the complete file atomically and fails if another process got there first, in
    // which case its key is the one to use; a reader never sees a half-written key.
    await link(tmp, file);
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return readFile(file);
    throw keyFileError(file, e);
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

function keyFileError(file: string, cause: unknown): UserError {
  return new UserError('data_dir', `cannot read or create the master key file ${file}: ${(cause as Error).message}`, {
    hint: 'give --master-key-file a path Ward may create and read, or fix the permissions',
    cause,
  });
}

/**
 * ephemeralKeyProvider makes a KeyProvider with a random master key that lives only in memory. It is for
 * tests and tools: whatever it wraps is unreadable after the process ends.
 */
export function ephemeralKeyProvider(): KeyProvider {
  return new LocalKeys(randomBytes(MASTER_KEY_BYTES));
}

/**
 * keyProviderFromBytes makes a KeyProvider from master keys held by the caller: the first wraps, the
 * others only unwrap (tests, the rotation procedure).
 */
export function keyProviderFromBytes(master: Buffer, ...others: Buffer[]): KeyProvider {
  return new LocalKeys(master, others);
}

/** providerHolds reports whether a provider made here can unwrap under keyId (a KMS provider may not say). */
export function providerHolds(keys: KeyProvider, keyId: string): boolean | undefined {
  return keys instanceof LocalKeys ? keys.holds(keyId) : undefined;
}

/**
 * SealingKeys derives keys per purpose ("totp", "edge-certs") from one root data key, for values the
 * server seals for itself. The root key is a data key like an app's (wrapped by the KEK, kept in the
 * store: see openSealingKeys in data-keys.ts), so a KEK rotation re-wraps it and nothing it sealed.
 */
export interface SealingKeys {
  /** keyId names the root key; sealed values carry it. */
  readonly keyId: string;
  /** deriveKey returns a 32-byte key for one purpose; the same purpose always gives the same key. */
  deriveKey(purpose: string): Promise<Buffer>;
}

// Purposes become HKDF "info" strings, so keys for different purposes are independent (RFC 5869 §3.2).
const PURPOSE_RE = /^[a-z][a-z0-9-]{0,62}$/;

class DerivedKeys implements SealingKeys {
  readonly keyId: string;
  readonly #root: Buffer;
  readonly #cache = new Map<string, Buffer>();

  constructor(root: Buffer) {
    if (root.length !== 32) throw new RangeError('a root key has 32 bytes');
    this.#root = Buffer.from(root);
    this.keyId = keyIdOf(this.#root);
  }

  async deriveKey(purpose: string): Promise<Buffer> {
    if (!PURPOSE_RE.test(purpose)) throw new RangeError(`invalid key purpose ${JSON.stringify(purpose)}`);
    let key = this.#cache.get(purpose);
    if (!key) {
      key = hkdf(this.#root, `ward/${purpose}`);
      this.#cache.set(purpose, key);
    }
    return key;
  }
}

/** sealingKeysFromRoot makes SealingKeys from a 32-byte root key. */
export function sealingKeysFromRoot(root: Buffer): SealingKeys {
  return new DerivedKeys(root);
}

/** ephemeralSealingKeys makes SealingKeys with a random root that lives only in memory (tests, tools). */
export function ephemeralSealingKeys(): SealingKeys {
  return new DerivedKeys(randomBytes(32));
}

const SEALED_RE = /^v1\.([0-9a-f]{16})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]{22})$/;

/**
 * seal encrypts plaintext with AES-256-GCM under the key for `purpose`, binding it to `boundTo` (for
 * example the owning user's id) as associated data: a sealed value copied to another row does not open
 * there. The result is text: `v1.<key id>.<iv>.<ciphertext>.<tag>`, base64url parts.
 */
export async function seal(keys: SealingKeys, purpose: string, plaintext: string | Buffer, boundTo: string): Promise<string> {
  const key = await keys.deriveKey(purpose);
  const { iv, ct, tag } = gcmSeal(key, typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext, lengthPrefixed([purpose, boundTo]));
  return ['v1', keys.keyId, iv.toString('base64url'), ct.toString('base64url'), tag.toString('base64url')].join('.');
}

/** unseal opens what seal made with the same purpose and binding, or throws SealError. */
export async function unseal(keys: SealingKeys, purpose: string, sealed: string, boundTo: string): Promise<Buffer> {
  const m = SEALED_RE.exec(sealed);
  if (!m) throw new SealError('not a sealed value');
  if (m[1] !== keys.keyId) throw new SealError(`sealed under root key ${m[1]}, but this server's root key is ${keys.keyId}`);
  const key = await keys.deriveKey(purpose);
  const plain = gcmOpen(key, Buffer.from(m[2]!, 'base64url'), Buffer.from(m[3]!, 'base64url'), Buffer.from(m[4]!, 'base64url'), lengthPrefixed([purpose, boundTo]));
  if (!plain) throw new SealError('the sealed value was altered, or belongs to other data');
  return plain;
}
