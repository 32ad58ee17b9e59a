import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Sealer encrypts small secrets (ACME account keys, certificate private keys) before they are written
 * anywhere. `context` names what is sealed ("cert-key:app.example.com") and is bound to the ciphertext,
 * so a sealed value copied to another record does not open. The Secrets issue's KeyProvider supplies
 * the key later (keyProvider.deriveKey('edge-certs')); the data path only sees this interface.
 */
export interface Sealer {
  seal(plain: Buffer, context: string): Promise<string>;
  open(sealed: string, context: string): Promise<Buffer>;
}

/** SealedValueError is a sealed value that does not open: wrong key, wrong context or tampered. */
export class SealedValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealedValueError';
  }
}

const VERSION = 'v1';

/**
 * aesGcmSealer seals with AES-256-GCM under a 32-byte key: `v1.<iv>.<tag>.<ciphertext>` in base64url,
 * a fresh 96-bit IV per value (NIST SP 800-38D §8.2.2, random IVs are safe far beyond the number of
 * keys an edge stores) and the context as additional authenticated data.
 */
export function aesGcmSealer(key: Buffer): Sealer {
  if (key.length !== 32) throw new RangeError('an AES-256-GCM key has 32 bytes');
  const k = Buffer.from(key);
  return {
    async seal(plain, context) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', k, iv);
      c.setAAD(Buffer.from(context, 'utf8'));
      const ct = Buffer.concat([c.update(plain), c.final()]);
      return [VERSION, iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
    },
    async open(sealed, context) {
      const parts = sealed.split('.');
      if (parts.length !== 4 || parts[0] !== VERSION) throw new SealedValueError('not a sealed value of a known version');
      try {
        const d = createDecipheriv('aes-256-gcm', k, Buffer.from(parts[1]!, 'base64url'));
        d.setAAD(Buffer.from(context, 'utf8'));
        d.setAuthTag(Buffer.from(parts[2]!, 'base64url'));
        return Buffer.concat([d.update(Buffer.from(parts[3]!, 'base64url')), d.final()]);
      } catch {
        throw new SealedValueError(`the sealed value for ${context} does not open with this key`);
      }
    },
  };
}
