import { Agent } from 'node:https';
import * as acme from 'acme-client';
import type { ChallengeStore } from './challenges.ts';
import { certificateFacts } from './self-signed.ts';
import type { CertStore, StoredCertificate } from './store.ts';

/** ChallengeType is an ACME challenge the edge can answer on its own ports. */
export type ChallengeType = 'http-01' | 'tls-alpn-01';

/**
 * CertificateIssuer obtains a certificate for a set of names (the first is the managed name). It throws
 * IssuanceError when the CA or the validation says no; retryAfterMs, when set, is the earliest time the
 * CA will accept another try (its rate limit), which the caller must respect.
 */
export interface CertificateIssuer {
  issue(names: readonly string[]): Promise<StoredCertificate>;
}

/** IssuanceError is a failed issuance, with the CA's message and whether it was a rate limit. */
export class IssuanceError extends Error {
  readonly rateLimited: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: { rateLimited?: boolean; retryAfterMs?: number | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IssuanceError';
    this.rateLimited = options.rateLimited ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export interface AcmeIssuerOptions {
  directoryUrl: string;
  email?: string | undefined;
  /** caPem is extra trust for the ACME directory's TLS (a test CA like Pebble's), from --acme-ca-file. */
  caPem?: string | undefined;
  store: CertStore;
  challenges: ChallengeStore;
  /** challengeTypes are tried in this order, among those the CA offers; default http-01 then tls-alpn-01. */
  challengeTypes?: readonly ChallengeType[];
  /** pollMinMs and pollMaxMs bound the wait between status polls (RFC 8555 §7.5.1). */
  pollMinMs?: number;
  pollMaxMs?: number;
}

let configured = false;

/**
 * configureAcmeHttp sets acme-client's HTTP client once per process: its built-in retry would sleep
 * inside a request for as long as a rate limit's Retry-After says (hours, for Let's Encrypt), holding
 * the issuance lock all that time; Ward backs off between attempts instead (CertManager).
 */
function configureAcmeHttp(caPem: string | undefined): void {
  const defaults = acme.axios.defaults as typeof acme.axios.defaults & { acmeSettings: { retryMaxAttempts: number } };
  if (!configured) {
    defaults.acmeSettings.retryMaxAttempts = 0;
    defaults.timeout = 30_000;
    configured = true;
  }
  // The CA's trust is process-wide in acme-client (one HTTP client); one edge talks to one CA.
  if (caPem) defaults.httpsAgent = new Agent({ ca: caPem, keepAlive: true });
}

/**
 * AcmeIssuer is a CertificateIssuer for an RFC 8555 CA (Let's Encrypt, or Pebble in tests): http-01 and
 * tls-alpn-01 answered by the edge itself through a ChallengeStore, an ECDSA P-256 account key and
 * certificate key (fast handshakes), the account key kept sealed in the CertStore.
 */
export class AcmeIssuer implements CertificateIssuer {
  readonly #o: AcmeIssuerOptions;
  #client: acme.Client | undefined;

  constructor(options: AcmeIssuerOptions) {
    this.#o = options;
    configureAcmeHttp(options.caPem);
  }

  async #account(): Promise<acme.Client> {
    if (this.#client) return this.#client;
    const o = this.#o;
    const stored = await o.store.getAccount(o.directoryUrl);
    const keyPem = stored?.keyPem ?? (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    const client = new acme.Client({
      directoryUrl: o.directoryUrl,
      accountKey: keyPem,
      ...(stored?.url ? { accountUrl: stored.url } : {}),
      backoffAttempts: 30,
      backoffMin: o.pollMinMs ?? 1000,
      backoffMax: o.pollMaxMs ?? 10_000,
    });
    if (!stored?.url) {
      await client.createAccount({ termsOfServiceAgreed: true, ...(o.email ? { contact: [`mailto:${o.email}`] } : {}) });
      await o.store.putAccount({ directoryUrl: o.directoryUrl, email: o.email, url: client.getAccountUrl(), keyPem });
    }
    this.#client = client;
    return client;
  }

  async issue(names: readonly string[]): Promise<StoredCertificate> {
    if (names.length === 0) throw new RangeError('issue needs at least one name');
    try {
      return await this.#issue(names);
    } catch (e) {
      throw toIssuanceError(e);
    }
  }

  async #issue(names: readonly string[]): Promise<StoredCertificate> {
    const client = await this.#account();
    const order = await client.createOrder({ identifiers: names.map((value) => ({ type: 'dns', value })) });
    const authorizations = await client.getAuthorizations(order);
    for (const authz of authorizations) {
      if (authz.status === 'valid') continue; // The CA reused an earlier validation (RFC 8555 §7.1.4).
      await this.#solve(client, authz);
    }
    const keyPem = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    const [, csr] = await acme.crypto.createCsr({ commonName: names[0]!, altNames: [...names] }, keyPem);
    const finalized = await client.finalizeOrder(order, csr);
    const certPem = await client.getCertificate(finalized);
    const facts = certificateFacts(certPem);
    return { name: names[0]!, names: facts.names.length > 0 ? facts.names : [...names], certPem, keyPem, notBefore: facts.notBefore, notAfter: facts.notAfter, source: 'acme' };
  }

  async #solve(client: acme.Client, authz: acme.Authorization): Promise<void> {
    const o = this.#o;
    const order = o.challengeTypes ?? ['http-01', 'tls-alpn-01'];
    const challenge = order.map((t) => authz.challenges.find((c) => c.type === t)).find((c) => c !== undefined);
    if (!challenge) {
      throw new IssuanceError(`the CA offers no challenge the edge can answer for ${authz.identifier.value} (it offers ${authz.challenges.map((c) => c.type).join(', ')})`);
    }
    const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
    const name = authz.identifier.value.toLowerCase();
    if (challenge.type === 'http-01') {
      o.challenges.apply({ kind: 'http-01', token: challenge.token, keyAuthorization });
    } else {
      const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
      o.challenges.apply({ kind: 'tls-alpn-01', name, keyPem: key.toString(), certPem: cert.toString() });
    }
    try {
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(challenge);
    } finally {
      if (challenge.type === 'http-01') o.challenges.apply({ kind: 'http-01', token: challenge.token, keyAuthorization: undefined });
      else o.challenges.apply({ kind: 'tls-alpn-01', name, keyPem: undefined, certPem: undefined });
    }
  }
}

/**
 * toIssuanceError classifies a failure. The CA's problem document reaches us only as acme-client's
 * message, so a rate limit is recognized by its type or wording, and Let's Encrypt's "retry after
 * <time>" is honoured when the message carries it.
 */
export function toIssuanceError(e: unknown): IssuanceError {
  if (e instanceof IssuanceError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const rateLimited = /rateLimited|rate.?limit|too many/i.test(message);
  let retryAfterMs: number | undefined;
  const m = /retry after (\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?)(?: ?UTC|Z)?/i.exec(message);
  if (m) {
    const t = Date.parse(`${m[1]!.replace(' ', 'T')}Z`);
    if (Number.isFinite(t)) retryAfterMs = Math.max(0, t - Date.now());
  }
  return new IssuanceError(message || 'ACME issuance failed', { rateLimited, retryAfterMs, cause: e });
}
