import { IssuanceError, toIssuanceError, type CertificateIssuer } from './acme.ts';
import type { CertificateCache } from './source.ts';
import type { CertificateStatus, CertStore, IssuanceLock, StoredCertificate } from './store.ts';

/** CertManagerLog is where the manager reports; it never receives a key. */
export interface CertManagerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface CertManagerOptions {
  store: CertStore;
  lock: IssuanceLock;
  issuer: CertificateIssuer;
  /** cache is the CertificateSource the edge serves from; new certificates go there at once. */
  cache: CertificateCache;
  now?: () => number;
  /** random returns [0, 1) (tests pin it). */
  random?: () => number;
  log?: CertManagerLog;
  /** onIssued is told of each new certificate (the cache it fills tells its own subscribers, such as an EdgeCluster). */
  onIssued?: (cert: StoredCertificate) => void;
  /** onExpiry reports each certificate's expiry for metrics. */
  onExpiry?: (name: string, notAfter: Date) => void;
  /** onAttempt reports each issuance attempt's result for metrics. */
  onAttempt?: (result: 'ok' | 'failed' | 'rate_limited') => void;
  /** checkIntervalMs is how often due names are looked for; default one minute. */
  checkIntervalMs?: number;
  /** backoffMinMs and backoffMaxMs bound the wait after consecutive failures; default 1 min and 24 h. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** rateLimitBackoffMs is the least wait after a rate limit that said no Retry-After; default 1 h. */
  rateLimitBackoffMs?: number;
  /** lockTtlMs is how long an issuance lock lasts without refresh; default 10 min. */
  lockTtlMs?: number;
}

const HOUR = 3_600_000;

/**
 * renewalTime is when a certificate is renewed: at two thirds of its lifetime (Let's Encrypt's advice
 * for 90-day certificates: 30 days before expiry), minus a random share of up to a twentieth of the
 * lifetime (at most 24 h), so certificates issued together do not all renew in the same minute.
 */
export function renewalTime(notBefore: Date, notAfter: Date, random: () => number): number {
  const life = notAfter.getTime() - notBefore.getTime();
  const jitter = random() * Math.min(life / 20, 24 * HOUR);
  return notBefore.getTime() + (life * 2) / 3 - jitter;
}

/** backoffDelay is the wait after `failures` consecutive failures: doubling, capped, with 0–25 % jitter. */
export function backoffDelay(failures: number, minMs: number, maxMs: number, random: () => number): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (1 + random() * 0.25));
}

/**
 * CertManager keeps every managed name's certificate issued and renewed. A name is managed once
 * `add`ed (the route table's hostnames, or `ward certs add`); `tick` (on a timer after start) issues
 * what is due: names without a certificate, and certificates past their renewal time, one at a time,
 * each under the IssuanceLock so edges sharing a store never order the same name twice at once.
 * Failures back off exponentially; a CA rate limit waits at least as long as the CA asked.
 */
export class CertManager {
  readonly #o: CertManagerOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(options: CertManagerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  /** start loads stored certificates into the cache and begins checking for due names. */
  async start(): Promise<void> {
    await this.#o.cache.load(this.#o.store);
    for (const e of this.#o.cache.entries()) this.#o.onExpiry?.(e.name, e.material.notAfter);
    const every = this.#o.checkIntervalMs ?? 60_000;
    this.#timer = setInterval(() => void this.tick(), every);
    this.#timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#running;
  }

  /** add makes names managed (pending until issued); names already managed are left as they are. */
  async add(names: readonly string[]): Promise<void> {
    const store = this.#o.store;
    for (const raw of names) {
      const name = raw.toLowerCase();
      if (store.addStatus) {
        await store.addStatus(emptyStatus(name));
        continue;
      }
      if (await store.getStatus(name)) continue;
      await store.putStatus(emptyStatus(name));
    }
  }

  /** remove stops managing a name and deletes its certificate. */
  async remove(name: string): Promise<boolean> {
    const n = name.toLowerCase();
    const had = (await this.#o.store.getStatus(n)) !== undefined || (await this.#o.store.getCertificate(n)) !== undefined;
    await this.#o.store.deleteCertificate(n);
    this.#o.cache.delete(n);
    return had;
  }

  list(): Promise<CertificateStatus[]> {
    return this.#o.store.listStatus();
  }

  show(name: string): Promise<CertificateStatus | undefined> {
    return this.#o.store.getStatus(name.toLowerCase());
  }

  /** tick issues every due name once; concurrent calls share one run. */
  tick(): Promise<void> {
    if (this.#running) return this.#running;
    this.#running = this.#tick().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #tick(): Promise<void> {
    for (const status of await this.#o.store.listStatus()) {
      if (this.#stopped) return;
      if (!this.#due(status)) {
        await this.#follow(status);
        continue;
      }
      await this.#issue(status);
    }
  }

  /**
   * #follow serves a certificate another edge sharing the store issued or renewed: its status says
   * valid until a time the certificate in this edge's cache does not have.
   */
  async #follow(status: CertificateStatus): Promise<void> {
    if (status.state !== 'valid' || !status.notAfter) return;
    const cached = this.#o.cache.managed(status.name);
    if (cached && cached.notAfter.getTime() === Date.parse(status.notAfter)) return;
    try {
      const cert = await this.#o.store.getCertificate(status.name);
      if (!cert || cert.notAfter.getTime() === cached?.notAfter.getTime()) return;
      this.#o.cache.set(cert);
      this.#o.onIssued?.(cert);
      this.#o.onExpiry?.(cert.name, cert.notAfter);
    } catch (e) {
      this.#o.log?.warn({ name: status.name, error: (e as Error).message }, 'certificate not loaded from the store');
    }
  }

  #due(s: CertificateStatus): boolean {
    const now = this.#now();
    if (s.nextAttemptAt && Date.parse(s.nextAttemptAt) > now) return false;
    if (s.state === 'pending' || s.state === 'failing' || s.state === 'expired') return true;
    return s.renewAt !== undefined && Date.parse(s.renewAt) <= now;
  }

  async #issue(status: CertificateStatus): Promise<void> {
    const o = this.#o;
    const ttl = o.lockTtlMs ?? 10 * 60_000;
    const lock = await o.lock.tryAcquire(status.name, ttl);
    if (!lock) return; // Another edge is on it; its result arrives through the store.
    const refresh = setInterval(() => void lock.refresh(), Math.max(1000, ttl / 3));
    refresh.unref();
    const attemptAt = new Date(this.#now()).toISOString();
    try {
      // Re-read under the lock: another edge may have renewed it since we listed.
      const fresh = (await o.store.getStatus(status.name)) ?? status;
      if (!this.#due(fresh)) return;
      const cert = await o.issuer.issue([status.name]);
      await o.store.putCertificate(cert);
      o.cache.set(cert);
      await o.store.putStatus({
        name: status.name,
        state: 'valid',
        notAfter: cert.notAfter.toISOString(),
        renewAt: new Date(renewalTime(cert.notBefore, cert.notAfter, this.#random)).toISOString(),
        lastAttemptAt: attemptAt,
        lastError: undefined,
        failures: 0,
        nextAttemptAt: undefined,
      });
      o.onIssued?.(cert);
      o.onExpiry?.(cert.name, cert.notAfter);
      o.onAttempt?.('ok');
      o.log?.info({ name: status.name, notAfter: cert.notAfter.toISOString() }, 'certificate issued');
    } catch (e) {
      const err = e instanceof IssuanceError ? e : toIssuanceError(e);
      const failures = status.failures + 1;
      let wait = backoffDelay(failures, o.backoffMinMs ?? 60_000, o.backoffMaxMs ?? 24 * HOUR, this.#random);
      if (err.rateLimited) wait = Math.max(wait, err.retryAfterMs ?? o.rateLimitBackoffMs ?? HOUR);
      const notAfter = status.notAfter ? Date.parse(status.notAfter) : undefined;
      await o.store.putStatus({
        ...status,
        state: notAfter !== undefined && notAfter > this.#now() ? 'valid' : notAfter !== undefined ? 'expired' : 'failing',
        lastAttemptAt: attemptAt,
        lastError: err.message.slice(0, 1000),
        failures,
        nextAttemptAt: new Date(this.#now() + wait).toISOString(),
      });
      o.onAttempt?.(err.rateLimited ? 'rate_limited' : 'failed');
      o.log?.warn({ name: status.name, failures, retryInMs: wait, error: err.message }, 'certificate issuance failed');
    } finally {
      clearInterval(refresh);
      await lock.release().catch(() => {});
    }
  }
}

function emptyStatus(name: string): CertificateStatus {
  return { name, state: 'pending', notAfter: undefined, renewAt: undefined, lastAttemptAt: undefined, lastError: undefined, failures: 0, nextAttemptAt: undefined };
}
