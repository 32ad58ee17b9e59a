import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Passwords are hashed with scrypt at the OWASP Password Storage Cheat Sheet's parameters: N=2^17
 * (128 MiB), r=8, p=1, a 16-byte random salt and a 32-byte key. scrypt comes with Node (OpenSSL), so no
 * native addon is needed; argon2id would need one. The stored form is PHC-like and self-describing, so the
 * parameters can be raised later and old hashes still verify (and can be rehashed on login):
 *
 *   $scrypt$ln=17,r=8,p=1$<salt, base64 no padding>$<key, base64 no padding>
 */
export const SCRYPT_PARAMS = { ln: 17, r: 8, p: 1, keyLength: 32, saltLength: 16 } as const;

/** Passwords shorter than this are refused (NIST SP 800-63B asks for at least 8; we ask for 12). */
export const MIN_PASSWORD_LENGTH = 12;
/** Longer inputs are refused so a multi-megabyte "password" cannot be used to burn CPU. */
export const MAX_PASSWORD_LENGTH = 1024;

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

function options(ln: number, r: number, p: number): ScryptOptions {
  const N = 2 ** ln;
  // OpenSSL needs 128·N·r bytes plus slack; Node's default maxmem (32 MiB) is too small for N=2^17.
  return { N, r, p, maxmem: 128 * N * r * p + 16 * 1024 * 1024 };
}

/** hashPassword returns the PHC-style hash of a password. */
export async function hashPassword(password: string): Promise<string> {
  const { ln, r, p, keyLength, saltLength } = SCRYPT_PARAMS;
  const salt = randomBytes(saltLength);
  const key = await scryptAsync(password.normalize('NFKC'), salt, keyLength, options(ln, r, p));
  return `$scrypt$ln=${ln},r=${r},p=${p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

const PHC_RE = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{32,})$/;

/**
 * verifyPassword reports whether password matches hash, comparing in constant time. A malformed hash
 * verifies nothing (false), it never throws, so a corrupt row cannot be used to log in.
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = PHC_RE.exec(hash);
  if (!m) return false;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 10 || ln > 22 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const salt = Buffer.from(m[4]!, 'base64url');
  const expected = Buffer.from(m[5]!, 'base64url');
  const key = await scryptAsync(password.normalize('NFKC'), salt, expected.length, options(ln, r, p));
  return timingSafeEqual(key, expected);
}

/** needsRehash reports whether a stored hash uses weaker parameters than today's. */
export function needsRehash(hash: string): boolean {
  const m = PHC_RE.exec(hash);
  if (!m) return true;
  return Number(m[1]) < SCRYPT_PARAMS.ln || Number(m[2]) < SCRYPT_PARAMS.r || Number(m[3]) < SCRYPT_PARAMS.p;
}

/** passwordProblem returns why a new password is not acceptable, or undefined. */
export function passwordProblem(password: unknown): string | undefined {
  if (typeof password !== 'string') return 'a password is required';
  if (password.length < MIN_PASSWORD_LENGTH) return `passwords need at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > MAX_PASSWORD_LENGTH) return `passwords have at most ${MAX_PASSWORD_LENGTH} characters`;
  return undefined;
}

let dummy: Promise<string> | undefined;

/**
 * burnPasswordCheck spends the same work as a real verification, against a throwaway hash. Login calls it
 * for unknown emails so that "no such user" and "wrong password" take the same time (OWASP ASVS 2.2).
 */
export async function burnPasswordCheck(password: string): Promise<void> {
  dummy ??= hashPassword(randomBytes(18).toString('base64url'));
  await verifyPassword(password, await dummy);
}
