import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * TOTP (RFC 6238) over HMAC-SHA1 with 30-second steps and 6 digits: the parameters every authenticator
 * app (Google Authenticator, 1Password, Authy, FreeOTP) understands. Secrets are 160 bits (RFC 4226 §4
 * recommends at least that), shown to the user once as base32 (RFC 4648) inside an otpauth:// URI.
 */
export const TOTP_STEP_S = 30;
export const TOTP_DIGITS = 6;
/** A code from one step before or after now is accepted too, for clock drift (RFC 6238 §5.2). */
export const TOTP_WINDOW = 1;

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function base32Encode(buf: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of buf) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += B32[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
  return out;
}

export function base32Decode(s: string): Buffer {
  const clean = s.replace(/[\s=-]/g, '').toUpperCase();
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const c of clean) {
    const v = B32.indexOf(c);
    if (v < 0) throw new RangeError('not base32');
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 255);
    }
    acc &= (1 << bits) - 1;
  }
  return Buffer.from(out);
}

export function newTotpSecret(): string {
  return base32Encode(randomBytes(20));
}

/** hotp computes the RFC 4226 one-time code for a counter. */
export function hotp(secret: Buffer, counter: number, digits = TOTP_DIGITS): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', secret).update(msg).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const bin = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(bin % 10 ** digits).padStart(digits, '0');
}

export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_STEP_S);
}

export function totpCode(secretB32: string, nowMs: number): string {
  return hotp(base32Decode(secretB32), totpStep(nowMs));
}

/**
 * checkTotp returns the time step a code matches (within the window), or undefined. The caller must
 * refuse a step at or below the last one it accepted for that user, so a code cannot be replayed.
 */
export function checkTotp(secretB32: string, code: string, nowMs: number): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const secret = base32Decode(secretB32);
  const step = totpStep(nowMs);
  let matched: number | undefined;
  // Check every candidate (no early exit) so timing does not say which step matched.
  for (let d = -TOTP_WINDOW; d <= TOTP_WINDOW; d++) {
    if (timingSafeEqual(Buffer.from(hotp(secret, step + d)), Buffer.from(code))) matched ??= step + d;
  }
  return matched;
}

/** otpauthUri is the key URI authenticator apps scan (the Google Authenticator key URI format). */
export function otpauthUri(secretB32: string, account: string, issuer = 'Ward'): string {
  const label = encodeURIComponent(`${issuer}:${account}`);
  const q = new URLSearchParams({ secret: secretB32, issuer, algorithm: 'SHA1', digits: String(TOTP_DIGITS), period: String(TOTP_STEP_S) });
  return `otpauth://totp/${label}?${q}`;
}
