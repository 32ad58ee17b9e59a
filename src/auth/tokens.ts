import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Bearer secrets (session tokens, invite codes, later API tokens) are 256 random bits, base64url, behind a
 * prefix that says what they are (`ward_ses_…`) — which also lets secret scanners (GitHub's, gitleaks)
 * recognise a leaked one. Only their SHA-256 is stored: a stolen database holds no usable credential,
 * and because the secret has 256 bits of entropy a fast hash is enough (no salt or KDF needed).
 */
export const TOKEN_PREFIXES = { session: 'ward_ses_', invite: 'ward_inv_', api: 'ward_tok_' } as const;
export type TokenKind = keyof typeof TOKEN_PREFIXES;

export function newSecret(kind: TokenKind): string {
  return TOKEN_PREFIXES[kind] + randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

const SECRET_RE = /^ward_(ses|inv|tok)_[A-Za-z0-9_-]{43}$/;

/** secretKind returns the kind of a well-formed secret, or undefined for anything else. */
export function secretKind(secret: string): TokenKind | undefined {
  const m = SECRET_RE.exec(secret);
  if (!m) return undefined;
  return ({ ses: 'session', inv: 'invite', tok: 'api' } as const)[m[1] as 'ses' | 'inv' | 'tok'];
}

/** sameHash compares two hex digests in constant time. */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}
