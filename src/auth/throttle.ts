import { createHash } from 'node:crypto';
import { toTimestamp, UserError, type Clock } from '../core/index.ts';
import type { Store } from '../store/index.ts';

/** ThrottleRule says how many failures a key gets for free in a window, and what follows. */
export interface ThrottleRule {
  /** free failures cost nothing; after the next one the key waits baseDelayMs, doubling each time. */
  free: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** hardCap failures in one window block the key until the window ends; null for no cap. */
  hardCap: number | null;
}

/**
 * LOGIN_THROTTLE is the failed-login policy (OWASP ASVS 2.2.1). Per account: 5 failures free, then 1 s,
 * 2 s, 4 s … up to 30 s between attempts, and at most 100 failures per hour, after which the account
 * refuses every login, the right password too, until the hour is over. Per source address: 20 failures
 * free (an office behind one NAT address shares it), then 1 s doubling up to 60 s, which by itself caps a
 * password-spraying source at about 80 guesses an hour across all accounts. Windows are fixed hours
 * starting at a key's first failure. Unknown emails are counted exactly like known ones.
 */
export const LOGIN_THROTTLE = {
  windowMs: 3_600_000,
  account: { free: 5, baseDelayMs: 1000, maxDelayMs: 30_000, hardCap: 100 } satisfies ThrottleRule,
  source: { free: 20, baseDelayMs: 1000, maxDelayMs: 60_000, hardCap: null } satisfies ThrottleRule,
} as const;

const SWEEP_EVERY_MS = 10 * 60_000;

/**
 * delayAfter returns how long a key must wait after its n-th failure in a window: nothing while the
 * failures are free, then baseDelayMs doubling up to maxDelayMs.
 */
export function delayAfter(rule: ThrottleRule, failures: number): number {
  if (failures <= rule.free) return 0;
  const doublings = Math.min(failures - rule.free - 1, 30);
  return Math.min(rule.baseDelayMs * 2 ** doublings, rule.maxDelayMs);
}

/** accountKey is the throttle key of an email as typed (normalized if it is one): no raw email is stored. */
export function accountKey(email: string): string {
  return `account:${createHash('sha256').update(email.trim().toLowerCase().slice(0, 320)).digest('hex')}`;
}

export function sourceKey(ip: string): string {
  return `source:${ip}`;
}

/** Attempt is one admitted login attempt: the keys it was counted against and their counts. */
export interface Attempt {
  account: { key: string; failures: number };
  source: { key: string; failures: number } | null;
}

/** throttled is the 429 a refused attempt gets; the wait is also in details.retry_after_s (Retry-After). */
function throttled(retryAfterS: number): UserError {
  return new UserError('too_many_requests', `too many failed logins; try again in ${retryAfterS} s`, {
    hint: 'wait that long; if you forgot your password, ask an org owner or admin',
    details: { retry_after_s: retryAfterS },
  });
}

/**
 * LoginGuard applies LOGIN_THROTTLE with its state in the store, so every control plane on one database
 * shares it. Each attempt is counted before the password is checked ("pre-charged"), so a burst of
 * parallel guesses is counted too and cannot exceed the hard cap; a successful attempt then clears its
 * account's count and gives its source's count back. Delays are set after each failure; attempts made
 * while a key waits are refused without being counted, so waiting is never made longer by trying.
 */
export class LoginGuard {
  readonly #store: Store;
  readonly #clock: Clock;
  #lastSweepMs = 0;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /**
   * #sweep forgets keys whose window is over, at most every SWEEP_EVERY_MS per process, so the table
   * holds about an hour of failures however many emails and addresses attackers try.
   */
  async #sweep(nowMs: number): Promise<void> {
    if (nowMs - this.#lastSweepMs < SWEEP_EVERY_MS) return;
    this.#lastSweepMs = nowMs;
    await this.#store.throttle.deleteStale(toTimestamp(nowMs - LOGIN_THROTTLE.windowMs));
  }

  /** admit counts an attempt for the email and source, or throws too_many_requests with the wait. */
  async admit(email: string, sourceIp: string | null): Promise<Attempt> {
    const nowMs = this.#clock.now().getTime();
    const now = toTimestamp(nowMs);
    const aKey = accountKey(email);
    const sKey = sourceIp ? sourceKey(sourceIp) : null;
    const entries = await this.#store.throttle.get(sKey ? [aKey, sKey] : [aKey]);
    const blockedUntil = Math.max(0, ...entries.map((e) => (e.blockedUntil ? Date.parse(e.blockedUntil) : 0)));
    if (blockedUntil > nowMs) throw throttled(Math.ceil((blockedUntil - nowMs) / 1000));

    await this.#sweep(nowMs);
    const windowStart = toTimestamp(nowMs - LOGIN_THROTTLE.windowMs);
    const account = await this.#store.throttle.recordFailure(aKey, now, windowStart);
    const source = sKey ? await this.#store.throttle.recordFailure(sKey, now, windowStart) : null;
    const cap = LOGIN_THROTTLE.account.hardCap;
    if (account.failures > cap) {
      // Over the cap already (a parallel burst got here first): refused unverified until the window ends.
      const until = Date.parse(account.windowStartedAt) + LOGIN_THROTTLE.windowMs;
      await this.#store.throttle.blockUntil(aKey, toTimestamp(until));
      throw throttled(Math.max(1, Math.ceil((until - nowMs) / 1000)));
    }
    return { account: { key: aKey, failures: account.failures }, source: source && sKey ? { key: sKey, failures: source.failures } : null };
  }

  /** failed makes the keys of a failed attempt wait as the policy says. */
  async failed(a: Attempt): Promise<void> {
    const nowMs = this.#clock.now().getTime();
    const rule = LOGIN_THROTTLE.account;
    if (a.account.failures >= rule.hardCap) {
      const [entry] = await this.#store.throttle.get([a.account.key]);
      const start = entry ? Date.parse(entry.windowStartedAt) : nowMs;
      await this.#store.throttle.blockUntil(a.account.key, toTimestamp(start + LOGIN_THROTTLE.windowMs));
    } else {
      const wait = delayAfter(rule, a.account.failures);
      if (wait > 0) await this.#store.throttle.blockUntil(a.account.key, toTimestamp(nowMs + wait));
    }
    if (a.source) {
      const wait = delayAfter(LOGIN_THROTTLE.source, a.source.failures);
      if (wait > 0) await this.#store.throttle.blockUntil(a.source.key, toTimestamp(nowMs + wait));
    }
  }

  /** succeeded clears the account's failures and gives back the source's pre-charge. */
  async succeeded(a: Attempt): Promise<void> {
    await this.#store.throttle.clear(a.account.key);
    if (a.source) await this.#refund(a.source.key);
  }

  /**
   * release gives back both pre-charges of an attempt that neither failed nor succeeded: the right
   * password without the one-time code it also needs, the first half of a normal MFA login.
   */
  async release(a: Attempt): Promise<void> {
    await this.#refund(a.account.key);
    if (a.source) await this.#refund(a.source.key);
  }

  async #refund(key: string): Promise<void> {
    await this.#store.throttle.refund(key);
  }
}

