import { createHash, randomBytes } from 'node:crypto';
import { ERROR_CODES, UserError, type ErrorCode } from '../core/index.ts';

/**
 * Delivery tokens (`ward_dlv_…`) and host credentials (`ward_hst_…`) are bearer secrets of 256 random
 * bits, like the session and API tokens of src/auth, behind prefixes secret scanners can match. Only
 * their SHA-256 is stored.
 *
 * A delivery token is minted by the control plane when an instance is placed on a host. It is bound to
 * that placement (instance, host, app, secrets version), single-use and short-lived: the host's agent
 * trades it, with its own host credential, for exactly that instance's values.
 */
export const DELIVERY_TOKEN_PREFIX = 'ward_dlv_';
export const HOST_CREDENTIAL_PREFIX = 'ward_hst_';

/** DELIVERY_TOKEN_TTL_MS is how long a delivery token stays valid: long enough to pull an image and start. */
export const DELIVERY_TOKEN_TTL_MS = 10 * 60 * 1000;

const DELIVERY_RE = /^ward_dlv_[A-Za-z0-9_-]{43}$/;
const HOST_RE = /^ward_hst_[A-Za-z0-9_-]{43}$/;

export function newDeliveryToken(): string {
  return DELIVERY_TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function newHostCredential(): string {
  return HOST_CREDENTIAL_PREFIX + randomBytes(32).toString('base64url');
}

export const isDeliveryToken = (s: unknown): s is string => typeof s === 'string' && DELIVERY_RE.test(s);
export const isHostCredential = (s: unknown): s is string => typeof s === 'string' && HOST_RE.test(s);

/** bearerHash is the stored form of a bearer secret: SHA-256, hex. 256 random bits need no slow hash. */
export function bearerHash(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/**
 * InstanceSecrets is what a delivery hands an agent for one instance: the values as of the version its
 * release pins, as environment variables. It exists only in memory on the way into the instance's OCI
 * config on Ward's tmpfs; never log it, never write it to a disk.
 */
export interface InstanceSecrets {
  instanceId: string;
  appId: string;
  /** version is the secrets version the values are from (0: the app had none). */
  version: number;
  env: Record<string, string>;
}

/**
 * SecretsFetcher trades a delivery token for an instance's secrets. The runner's secrets hook calls it;
 * in a single-node server it is served in-process, on other hosts over the API with the host's credential.
 * It throws UserError `delivery_refused` when the control plane refuses, and never puts a value in an error.
 */
export interface SecretsFetcher {
  fetch(deliveryToken: string): Promise<InstanceSecrets>;
}

export interface HttpFetcherOptions {
  /** apiUrl is the control plane's API, e.g. `https://ward.internal:4280`. */
  apiUrl: string;
  /** hostCredential is this host's `ward_hst_…` secret. */
  hostCredential: string;
  /** fetchImpl replaces globalThis.fetch (tests). */
  fetchImpl?: typeof fetch;
  timeoutMs?: number;
}

/**
 * httpSecretsFetcher is the SecretsFetcher of an agent on its own host: `POST /v1/agent/secrets` with
 * the host credential as bearer token and the delivery token in the body (never in a URL, which proxies
 * and access logs keep).
 */
export function httpSecretsFetcher(opts: HttpFetcherOptions): SecretsFetcher {
  const doFetch = opts.fetchImpl ?? fetch;
  return {
    async fetch(deliveryToken) {
      let res: Response;
      try {
        res = await doFetch(new URL('/v1/agent/secrets', opts.apiUrl), {
          method: 'POST',
          headers: { authorization: `Bearer ${opts.hostCredential}`, 'content-type': 'application/json' },
          body: JSON.stringify({ token: deliveryToken }),
          signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
        });
      } catch (e) {
        throw new UserError('unavailable', `cannot reach the control plane for secrets: ${(e as Error).message}`, { cause: e });
      }
      let body: unknown;
      try {
        body = await res.json();
      } catch {
        // The body is not quoted: on a success it would hold values.
        throw new UserError('unavailable', `the control plane answered ${res.status} with a body that is not JSON`);
      }
      if (!res.ok) {
        const err = (body as { error?: { code?: string; message?: string } }).error;
        const code = err?.code && err.code in ERROR_CODES ? (err.code as ErrorCode) : 'unavailable';
        throw new UserError(code, `the control plane refused the secrets delivery: ${err?.message ?? res.status}`);
      }
      const b = body as { instance_id?: unknown; app_id?: unknown; version?: unknown; env?: unknown };
      if (typeof b.instance_id !== 'string' || typeof b.app_id !== 'string' || typeof b.version !== 'number' || !isStringRecord(b.env)) {
        throw new UserError('unavailable', 'the control plane answered the secrets delivery in an unexpected form');
      }
      return { instanceId: b.instance_id, appId: b.app_id, version: b.version, env: b.env };
    },
  };
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}
