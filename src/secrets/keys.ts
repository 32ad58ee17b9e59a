import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../core/index.ts';

/**
 * KeyProvider hands out keys derived from the server's master key (the key-encryption key). Code that
 * keeps something confidential at rest asks for a key by purpose ("totp", later "app-secrets") and never
 * sees the master key itself. This is the seam the Secrets issue grows (rotation, an external KMS): the
 * sealed form below names the key that sealed it, so a second key can be added without re-encrypting.
 */
export interface KeyProvider {
  /** keyId names the master key without revealing anything about it; sealed values carry it. */
  readonly keyId: string;
  /** deriveKey returns a 32-byte key for one purpose; the same purpose always gives the same key. */
  deriveKey(purpose: string): Promise<Buffer>;
}

/** MASTER_KEY_BYTES is the size of the master key: 256 bits, for AES-256 and HKDF-SHA256. */
export const MASTER_KEY_BYTES = 32;

// Purposes become HKDF "info" strings, so keys for different purposes are independent (RFC 5869 §3.2).
const PURPOSE_RE = /^[a-z][a-z0-9-]{0,62}$/;

class DerivedKeys implements KeyProvider {
  readonly keyId: string;
  readonly #master: Buffer;
  readonly #cache = new Map<string, Buffer>();

  constructor(master: Buffer) {
    if (master.length !== MASTER_KEY_BYTES) throw new RangeError(`a master key has ${MASTER_KEY_BYTES} bytes`);
    this.#master = Buffer.from(master);
    this.keyId = Buffer.from(hkdfSync('sha256', this.#master, Buffer.alloc(0), 'ward/key-id', 8)).toString('hex');
  }

  async deriveKey(purpose: string): Promise<Buffer> {
    if (!PURPOSE_RE.test(purpose)) throw new RangeError(`invalid key purpose ${JSON.stringify(purpose)}`);
    let key = this.#cache.get(purpose);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', this.#master, Buffer.alloc(0), `ward/${purpose}`, 32));
      this.#cache.set(purpose, key);
    }
    return key;
  }
}

/**
 * openLocalKeyProvider reads the master key from a file of exactly 32 random bytes, creating it (mode
 * 0600, its folder 0700) on first start. A key file that others may read, or of the wrong size, is
 * refused rather than used: a master key in the open protects nothing, and a truncated one would silently
 * make everything sealed before unreadable.
 */
export async function openLocalKeyProvider(file: string): Promise<KeyProvider> {
  let key: Buffer;
  try {
    key = await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw keyFileError(file, e);
    key = await createKeyFile(file);
  }
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new UserError('invalid_config', `the master key file ${file} may be read by others (mode ${mode.toString(8).padStart(4, '0')})`, {
      hint: `restrict it: chmod 600 ${file}`,
    });
  }
  if (key.length !== MASTER_KEY_BYTES) {
    throw new UserError('invalid_config', `the master key file ${file} has ${key.length} bytes; a master key has ${MASTER_KEY_BYTES}`, {
      hint: 'restore the original key file from your backup; without it, sealed data (MFA secrets) cannot be read',
    });
  }
  return new DerivedKeys(key);
}

async function createKeyFile(file: string): Promise<Buffer> {
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
 * tests and tools: whatever it seals is unreadable after the process ends.
 */
export function ephemeralKeyProvider(): KeyProvider {
  return new DerivedKeys(randomBytes(MASTER_KEY_BYTES));
}

/** keyProviderFromBytes makes a KeyProvider from a master key held by the caller (tests, key rotation tools). */
export function keyProviderFromBytes(master: Buffer): KeyProvider {
  return new DerivedKeys(master);
}

/** SealError says a sealed value cannot be opened: tampered, bound to other data, or sealed under another key. */
export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}

const SEALED_RE = /^v1\.([0-9a-f]{16})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]{22})$/;

function aadOf(purpose: string, boundTo: string): Buffer {
  // Purpose and binding both enter the AAD, length-prefixed so ("a", "bc") and ("ab", "c") differ.
  const p = Buffer.from(purpose, 'utf8');
  const b = Buffer.from(boundTo, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(p.length);
  return Buffer.concat([len, p, b]);
}

/**
 * seal encrypts plaintext with AES-256-GCM under the provider's key for `purpose`, binding it to
 * `boundTo` (for example the owning user's id) as associated data: a sealed value copied to another row
 * does not open there. The result is text: `v1.<key id>.<iv>.<ciphertext>.<tag>`, base64url parts.
 */
export async function seal(keys: KeyProvider, purpose: string, plaintext: string | Buffer, boundTo: string): Promise<string> {
  const key = await keys.deriveKey(purpose);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aadOf(purpose, boundTo));
  const ct = Buffer.concat([cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final()]);
  return ['v1', keys.keyId, iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

/** unseal opens what seal made with the same purpose and binding, or throws SealError. */
export async function unseal(keys: KeyProvider, purpose: string, sealed: string, boundTo: string): Promise<Buffer> {
  const m = SEALED_RE.exec(sealed);
  if (!m) throw new SealError('not a sealed value');
  if (m[1] !== keys.keyId) {
    throw new SealError(`sealed under master key ${m[1]}, but this server's master key is ${keys.keyId}; every control plane needs the same --master-key-file`);
  }
  const key = await keys.deriveKey(purpose);
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(m[2]!, 'base64url'));
  decipher.setAAD(aadOf(purpose, boundTo));
  decipher.setAuthTag(Buffer.from(m[4]!, 'base64url'));
  try {
    return Buffer.concat([decipher.update(Buffer.from(m[3]!, 'base64url')), decipher.final()]);
  } catch {
    throw new SealError('the sealed value was altered, or belongs to other data');
  }
}
