/**
 * The restart policy, as a pure function: given `[restart]`, what happened in the runs before, and how
 * the last run ended, decide whether to restart (after how long), stop, or give up. The supervisor
 * (supervisor.ts) acts on the decision; nothing here has a clock or does I/O, so every rule is tested by
 * equality in restart-policy.test.ts. docs/agent.md states the numbers.
 */
import type { RestartConfig } from '../config/index.ts';
import type { ExitStatus } from './runtime/index.ts';

/** RestartSettings are the platform's restart numbers; the defaults are DEFAULT_RESTART. */
export interface RestartSettings {
  /** initialDelayMs is the backoff before the first restart after a failure. */
  initialDelayMs: number;
  /** maxDelayMs caps the backoff: each further failure doubles it up to this. */
  maxDelayMs: number;
  /** stableAfterMs: a run at least this long was healthy enough; it resets the backoff and the counts. */
  stableAfterMs: number;
  /**
   * crashLoopLimit: this many runs in a row, each shorter than stableAfterMs, is a crash loop, and the
   * instance is marked failed instead of restarted again (whatever the policy).
   */
  crashLoopLimit: number;
}

/** DEFAULT_RESTART: 1 s, 2 s, 4 s, … up to 30 s; a 30 s run is stable; 5 short runs in a row are a crash loop. */
export const DEFAULT_RESTART: RestartSettings = {
  initialDelayMs: 1000,
  maxDelayMs: 30_000,
  stableAfterMs: 30_000,
  crashLoopLimit: 5,
};

/** RunHistory is what the supervisor remembers between runs of one instance (persisted across agent restarts). */
export interface RunHistory {
  /** failures counts the runs in a row that ended and were followed by a restart (or a give-up). */
  failures: number;
}

/** RestartDecision says what to do after a run ended. `history` is what to remember from now on. */
export type RestartDecision =
  | { action: 'restart'; delayMs: number; history: RunHistory; reason: string }
  | { action: 'stop'; history: RunHistory; reason: string }
  | { action: 'fail'; history: RunHistory; reason: string };

/** describeExit says how a run ended, for people: "exit code 3", "signal SIGKILL (137)", "out of memory". */
export function describeExit(exit: Pick<ExitStatus, 'code' | 'signal' | 'reason'>): string {
  if (exit.reason === 'oom') return `killed out of memory (exit code ${exit.code})`;
  if (exit.reason === 'unknown') return 'ended for an unknown reason (its monitor was lost)';
  if (exit.signal) return `killed by ${exit.signal} (exit code ${exit.code})`;
  return `exit code ${exit.code}`;
}

/** backoffMs is the delay before restart number `failures` (1-based): initial × 2^(failures−1), capped. */
export function backoffMs(failures: number, s: RestartSettings): number {
  const n = Math.max(1, failures);
  // Computed in steps so large counts never overflow to Infinity before the cap applies.
  let d = s.initialDelayMs;
  for (let i = 1; i < n && d < s.maxDelayMs; i++) d *= 2;
  return Math.min(d, s.maxDelayMs);
}

/**
 * decideRestart applies `[restart]` to a run that ended by itself (a stop the agent asked for never
 * comes here). Rules, in order:
 * - a run of at least stableAfterMs forgets earlier failures;
 * - `never`: stop, whatever the exit;
 * - `on-failure` and exit code 0: stop (it finished);
 * - crashLoopLimit short runs in a row: fail (a crash loop), for every policy;
 * - `on-failure` after max_retries restarts in a row: fail;
 * - otherwise restart after backoffMs(failures).
 */
export function decideRestart(policy: RestartConfig, history: RunHistory, exit: Pick<ExitStatus, 'code' | 'signal' | 'reason'>, ranMs: number, s: RestartSettings = DEFAULT_RESTART): RestartDecision {
  const stable = ranMs >= s.stableAfterMs;
  const before = stable ? 0 : history.failures;
  const how = describeExit(exit);
  if (policy.policy === 'never') return { action: 'stop', history: { failures: 0 }, reason: `${how}; restart policy is "never"` };
  const succeeded = exit.reason === 'exited' && exit.code === 0;
  if (policy.policy === 'on-failure' && succeeded) return { action: 'stop', history: { failures: 0 }, reason: `${how}; restart policy "on-failure" does not restart a clean exit` };
  const failures = before + 1;
  if (!stable && failures >= s.crashLoopLimit) {
    return { action: 'fail', history: { failures }, reason: `crash loop: ${how}, ${failures} times in a row within ${Math.round(s.stableAfterMs / 1000)}s of starting` };
  }
  if (policy.policy === 'on-failure' && failures > policy.maxRetries) {
    return { action: 'fail', history: { failures }, reason: `${how}; gave up after ${policy.maxRetries} restart${policy.maxRetries === 1 ? '' : 's'} (restart.max_retries)` };
  }
  const delayMs = backoffMs(failures, s);
  return { action: 'restart', delayMs, history: { failures }, reason: `${how}; restarting in ${formatMs(delayMs)}` };
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`;
}
