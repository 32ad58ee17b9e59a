import { createSecureContext, type SecureContext } from 'node:tls';

/**
 * ChallengeResponder answers ACME validation requests that arrive at the edge's own ports. Both methods
 * are called on the connection path (http01 per request to /.well-known/acme-challenge/, tlsAlpn01 per
 * handshake that offers acme-tls/1), so they must be memory lookups.
 */
export interface ChallengeResponder {
  /** http01 returns the key authorization for a token (RFC 8555 §8.3), or undefined. */
  http01(token: string): string | undefined;
  /** tlsAlpn01 returns the context holding the acme-tls/1 certificate for a name (RFC 8737 §3), or undefined. */
  tlsAlpn01(serverName: string): SecureContext | undefined;
}

/** ChallengeChange is what a ChallengeStore tells its subscribers (other edge workers) to mirror. */
export type ChallengeChange =
  | { kind: 'http-01'; token: string; keyAuthorization: string | undefined }
  | { kind: 'tls-alpn-01'; name: string; keyPem: string | undefined; certPem: string | undefined };

/**
 * ChallengeStore holds the challenges an issuer has pending, in memory. The issuer that created a
 * challenge removes it when the authorization is done, valid or not. apply mirrors a change made in
 * another process (a cluster worker's copy of the primary's store); subscribe is how the primary learns
 * of changes to send.
 */
export class ChallengeStore implements ChallengeResponder {
  readonly #http = new Map<string, string>();
  readonly #alpn = new Map<string, SecureContext>();
  readonly #listeners = new Set<(c: ChallengeChange) => void>();

  http01(token: string): string | undefined {
    return this.#http.get(token);
  }
  tlsAlpn01(serverName: string): SecureContext | undefined {
    return this.#alpn.get(serverName.toLowerCase());
  }
  /** hasTlsAlpn01 says whether any tls-alpn-01 challenge is pending (the fast path skips the lookup). */
  get pendingTlsAlpn01(): number {
    return this.#alpn.size;
  }

  apply(c: ChallengeChange): void {
    if (c.kind === 'http-01') {
      if (c.keyAuthorization === undefined) this.#http.delete(c.token);
      else this.#http.set(c.token, c.keyAuthorization);
    } else {
      const name = c.name.toLowerCase();
      if (c.keyPem === undefined || c.certPem === undefined) this.#alpn.delete(name);
      else this.#alpn.set(name, createSecureContext({ key: c.keyPem, cert: c.certPem, minVersion: 'TLSv1.2' }));
    }
    for (const l of this.#listeners) l(c);
  }

  subscribe(listener: (c: ChallengeChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** ACME_CHALLENGE_PREFIX is the http-01 path prefix (RFC 8555 §8.3). */
export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
