import { createHmac, hkdfSync } from 'node:crypto';
import { gcmOpen, gcmSeal, lengthPrefixed } from './keys.ts';

/**
 * SECRET_NAME_RE is what a secret's name may look like: an environment variable name as POSIX shells
 * accept it (letters, digits, underscore, not starting with a digit), up to 255 characters.
 */
export const SECRET_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;

/** RESERVED_PREFIX marks environment variables Ward sets itself; a secret may not use it. */
export const RESERVED_PREFIX = 'WARD_';

/**
 * MAX_SECRET_VALUE_BYTES caps one value (UTF-8). Linux refuses a single environment string over 128 KiB
 * (MAX_ARG_STRLEN) at exec, so a bigger one would only fail later, on the host, at start.
 */
export const MAX_SECRET_VALUE_BYTES = 64 * 1024;

/** MAX_SECRETS_PER_APP bounds how many names an app may have at once. */
export const MAX_SECRETS_PER_APP = 500;

/**
 * MAX_SECRETS_TOTAL_BYTES bounds the names and values of one app together: execve fails when the whole
 * environment and arguments exceed ARG_MAX (2 MiB with the usual 8 MiB stack), and the app's own
 * environment needs room too.
 */
export const MAX_SECRETS_TOTAL_BYTES = 1024 * 1024;

/** secretNameProblem says what is wrong with a name, or undefined when it is fine. The name is safe to echo. */
export function secretNameProblem(name: string): string | undefined {
  if (!SECRET_NAME_RE.test(name)) return 'a secret name is an environment variable name: letters, digits and "_", not starting with a digit, at most 255 characters';
  if (name.toUpperCase().startsWith(RESERVED_PREFIX)) return `names starting with ${RESERVED_PREFIX} are reserved for Ward`;
  return undefined;
}

/**
 * secretValueProblem says what is wrong with a value, or undefined when it is fine. The answer never
 * quotes the value: it ends up in an error message, and those are logged.
 */
export function secretValueProblem(value: string): string | undefined {
  if (value.includes('\0')) return 'the value contains a NUL byte, which an environment variable cannot hold';
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_SECRET_VALUE_BYTES) return `the value has ${bytes} bytes; at most ${MAX_SECRET_VALUE_BYTES} are allowed`;
  return undefined;
}

/** SecretRef names one stored value: its app (and org) and the name and version it was written under. */
export interface SecretRef {
  orgId: string;
  appId: string;
  name: string;
  version: number;
}

/**
 * SecretIntegrityError says a stored value or data key does not open: it was altered, moved to another
 * app, name or version, or the key is not the one that sealed it. It names what failed and never holds
 * a value. It is a bug or an attack, never a user mistake, so callers report it loudly (error log, audit
 * entry, a 500 answer) rather than skipping the value.
 */
export class SecretIntegrityError extends Error {
  readonly appId: string;
  readonly secretName: string | undefined;
  readonly version: number | undefined;
  constructor(message: string, where: { appId: string; name?: string; version?: number }) {
    super(message);
    this.name = 'SecretIntegrityError';
    this.appId = where.appId;
    this.secretName = where.name;
    this.version = where.version;
  }
}

// `s1.<iv>.<ciphertext>.<tag>`, base64url parts: one sealed secret value.
const VALUE_RE = /^s1\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]{22})$/;

/** valueAad binds a value to where it belongs: a ciphertext moved to another app, name or version fails to open. */
function valueAad(ref: SecretRef): Buffer {
  return lengthPrefixed(['ward/secret/v1', ref.orgId, ref.appId, ref.name, String(ref.version)]);
}

/**
 * AppDataKey is one app's unwrapped data key, held only in memory. Two independent keys come from it
 * (HKDF-SHA256): one encrypts values (AES-256-GCM), one keys the digests that `secrets list` shows
 * (HMAC-SHA256), so a digest reveals nothing even about a low-entropy value to someone without the key.
 */
export class AppDataKey {
  readonly appId: string;
  readonly #enc: Buffer;
  readonly #mac: Buffer;

  constructor(appId: string, dataKey: Buffer) {
    if (dataKey.length !== 32) throw new RangeError('a data key has 32 bytes');
    this.appId = appId;
    this.#enc = Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), 'ward/secret-values', 32));
    this.#mac = Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), 'ward/secret-digest', 32));
  }

  /** seal encrypts a value for ref (which must be this key's app). */
  seal(ref: SecretRef, value: string): string {
    if (ref.appId !== this.appId) throw new Error(`sealing a value of ${ref.appId} with the data key of ${this.appId}`);
    const { iv, ct, tag } = gcmSeal(this.#enc, Buffer.from(value, 'utf8'), valueAad(ref));
    return ['s1', iv.toString('base64url'), ct.toString('base64url'), tag.toString('base64url')].join('.');
  }

  /** open decrypts a stored value, or throws SecretIntegrityError naming ref (never the value). */
  open(ref: SecretRef, sealed: string): string {
    const fail = () =>
      new SecretIntegrityError(
        `the stored secret ${ref.name} (version ${ref.version}) of app ${ref.appId} does not decrypt: it was altered or moved from another app, name or version`,
        { appId: ref.appId, name: ref.name, version: ref.version },
      );
    if (ref.appId !== this.appId) throw fail();
    const m = VALUE_RE.exec(sealed);
    if (!m) throw fail();
    const plain = gcmOpen(this.#enc, Buffer.from(m[1]!, 'base64url'), Buffer.from(m[2]!, 'base64url'), Buffer.from(m[3]!, 'base64url'), valueAad(ref));
    if (!plain) throw fail();
    return plain.toString('utf8');
  }

  /**
   * digest is the keyed digest `secrets list` shows: the first 16 hex digits (64 bits) of
   * HMAC-SHA256(app digest key, value). Equal values of one app have equal digests, so a person can see
   * that a value changed or that two names share one; without the app's key nothing can be guessed.
   */
  digest(value: string): string {
    return createHmac('sha256', this.#mac).update(value, 'utf8').digest('hex').slice(0, 16);
  }
}
