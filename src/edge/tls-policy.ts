import { constants } from 'node:crypto';
import type { TlsOptions } from 'node:tls';

/**
 * TLS_CIPHERS is Mozilla's "intermediate" profile (v5.7) without the DHE suites: the three TLS 1.3
 * suites, then ECDHE with AES-GCM or ChaCha20-Poly1305 for TLS 1.2. Everything here is AEAD with forward
 * secrecy, which is what promise 9 asks for; finite-field DHE is left out because it is slow, rarely
 * needed by clients that support TLS 1.2, and a classic source of weak-parameter findings.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** TLS_GROUPS are the key-exchange groups offered, in the profile's order. */
export const TLS_GROUPS = 'X25519:P-256:P-384';

/** ALPN_H2 and ALPN_HTTP1 are the application protocols the HTTPS listener speaks (RFC 7301). */
export const ALPN_H2 = 'h2';
export const ALPN_HTTP1 = 'http/1.1';
/** ALPN_ACME is the protocol of the tls-alpn-01 challenge (RFC 8737 §6). */
export const ALPN_ACME = 'acme-tls/1';

/**
 * tlsPolicyOptions are the TLS settings of every public listener: TLS 1.2 and 1.3 only, the ciphers and
 * groups above, the client's cipher preference (the profile's choice: every suite offered is strong, and
 * clients know whether they have AES hardware), no renegotiation (a CPU-exhaustion vector that nothing
 * legitimate needs with HTTP) and no TLS compression (CRIME).
 */
export function tlsPolicyOptions(): TlsOptions {
  return {
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: TLS_CIPHERS,
    ecdhCurve: TLS_GROUPS,
    honorCipherOrder: false,
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_NO_COMPRESSION,
  };
}
