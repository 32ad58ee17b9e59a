/**
 * HealthChecker runs one instance's checks and reports its health whenever it changes.
 *
 * Semantics (docs/agent.md):
 * - Each check starts `unknown`. During its grace period it probes often (every FAST_PROBE_MS, or its
 *   interval if shorter) and a failure does not count: the app may still be starting. The first pass
 *   makes it `passing`.
 * - After the grace period, or once it has passed, it probes every interval; each probe sets it to
 *   `passing` or `failing`.
 * - The instance is `failing` when any check fails, `passing` when all pass, `unknown` otherwise. An
 *   instance without checks (an app with no port) is `passing` once it has run for NO_CHECKS_SETTLE_MS:
 *   a worker that crashes at once must not pass for healthy.
 */
import type { HealthState } from '../../core/index.ts';
import { describeCheck, probe, type CheckSpec, type ProbeResult } from './checks.ts';

/** FAST_PROBE_MS is how often a check probes during its grace period, until it first passes. */
export const FAST_PROBE_MS = 250;

/** NO_CHECKS_SETTLE_MS is how long an instance without checks must run before it counts as passing. */
export const NO_CHECKS_SETTLE_MS = 2000;

/** HealthReport is the instance's health and the probe results behind it. */
export interface HealthReport {
  health: HealthState;
  /** address is the one that answered the checks (for the edge's upstream list). */
  address: string | undefined;
  /** detail says why, for people: the failing check and its result. */
  detail: string;
}

export interface HealthCheckerOptions {
  checks: CheckSpec[];
  addresses: readonly string[];
  onChange: (r: HealthReport) => void;
  /** probe is replaceable in tests; default the real one. */
  probe?: (c: CheckSpec, addresses: readonly string[]) => Promise<ProbeResult>;
  now?: () => number;
  /** settleMs replaces NO_CHECKS_SETTLE_MS. */
  settleMs?: number;
}

interface CheckState {
  spec: CheckSpec;
  state: HealthState;
  last: ProbeResult | undefined;
}

export class HealthChecker {
  readonly #o: HealthCheckerOptions;
  readonly #states: CheckState[];
  #timers: NodeJS.Timeout[] = [];
  #stopped = true;
  #reported: HealthState | undefined;
  #started = 0;
  #settled = false;

  constructor(options: HealthCheckerOptions) {
    this.#o = options;
    this.#states = options.checks.map((spec) => ({ spec, state: 'unknown', last: undefined }));
  }

  /** health is the current aggregate. */
  get health(): HealthState {
    return this.#aggregate().health;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#started = (this.#o.now ?? Date.now)();
    this.#reported = undefined;
    if (this.#states.length === 0) {
      this.#settled = false;
      this.#emit();
      const t = setTimeout(() => {
        this.#settled = true;
        if (!this.#stopped) this.#emit();
      }, this.#o.settleMs ?? NO_CHECKS_SETTLE_MS);
      t.unref();
      this.#timers.push(t);
      return;
    }
    for (const s of this.#states) this.#schedule(s, 0);
    this.#emit();
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
    for (const s of this.#states) {
      s.state = 'unknown';
      s.last = undefined;
    }
  }

  #schedule(s: CheckState, delayMs: number): void {
    const t = setTimeout(() => {
      this.#timers = this.#timers.filter((x) => x !== t);
      void this.#run(s);
    }, delayMs);
    t.unref();
    this.#timers.push(t);
  }

  async #run(s: CheckState): Promise<void> {
    if (this.#stopped) return;
    const r = await (this.#o.probe ?? probe)(s.spec, this.#o.addresses);
    if (this.#stopped) return;
    s.last = r;
    const inGrace = (this.#o.now ?? Date.now)() - this.#started < s.spec.gracePeriodMs;
    if (r.ok) s.state = 'passing';
    else if (!inGrace || s.state === 'passing') s.state = 'failing';
    this.#emit();
    const fast = s.state === 'unknown' && inGrace;
    this.#schedule(s, fast ? Math.min(FAST_PROBE_MS, s.spec.intervalMs) : s.spec.intervalMs);
  }

  #aggregate(): HealthReport {
    if (this.#states.length === 0) {
      return this.#settled ? { health: 'passing', address: undefined, detail: 'no checks: running' } : { health: 'unknown', address: undefined, detail: 'no checks: waiting for it to keep running' };
    }
    const failing = this.#states.find((s) => s.state === 'failing');
    if (failing) return { health: 'failing', address: failing.last?.address, detail: `${describeCheck(failing.spec)}: ${failing.last?.detail ?? 'failing'}` };
    const pending = this.#states.find((s) => s.state === 'unknown');
    if (pending) return { health: 'unknown', address: undefined, detail: `${describeCheck(pending.spec)}: ${pending.last?.detail ?? 'not checked yet'}` };
    const answered = this.#states.find((s) => s.last?.address)?.last?.address;
    return { health: 'passing', address: answered, detail: this.#states.map((s) => describeCheck(s.spec)).join(', ') + ': passing' };
  }

  #emit(): void {
    const r = this.#aggregate();
    if (r.health === this.#reported) return;
    this.#reported = r.health;
    this.#o.onChange(r);
  }
}
