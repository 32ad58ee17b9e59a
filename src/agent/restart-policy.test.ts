import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffMs, decideRestart, DEFAULT_RESTART, describeExit } from './restart-policy.ts';

const crash = { code: 3, signal: undefined, reason: 'exited' } as const;
const clean = { code: 0, signal: undefined, reason: 'exited' } as const;
const killed = { code: 137, signal: 'SIGKILL', reason: 'signal' } as const;
const oom = { code: 137, signal: 'SIGKILL', reason: 'oom' } as const;
const short = 1000;
const long = DEFAULT_RESTART.stableAfterMs;

describe('backoffMs', () => {
  test('doubles from the initial delay up to the cap', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 50, 10_000].map((n) => backoffMs(n, DEFAULT_RESTART)), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000]);
    assert.equal(backoffMs(0, DEFAULT_RESTART), 1000);
  });
});

describe('decideRestart', () => {
  const cases: Array<{ name: string; policy: 'always' | 'on-failure' | 'never'; maxRetries?: number; failures: number; exit: typeof crash | typeof clean | typeof killed | typeof oom; ran: number; want: string; delay?: number; failuresAfter: number }> = [
    { name: 'never stops after a crash', policy: 'never', failures: 0, exit: crash, ran: short, want: 'stop', failuresAfter: 0 },
    { name: 'never stops after kill -9', policy: 'never', failures: 0, exit: killed, ran: long, want: 'stop', failuresAfter: 0 },
    { name: 'on-failure stops after a clean exit', policy: 'on-failure', failures: 2, exit: clean, ran: short, want: 'stop', failuresAfter: 0 },
    { name: 'on-failure restarts a crash after 1s', policy: 'on-failure', failures: 0, exit: crash, ran: short, want: 'restart', delay: 1000, failuresAfter: 1 },
    { name: 'on-failure restarts kill -9', policy: 'on-failure', failures: 0, exit: killed, ran: long, want: 'restart', delay: 1000, failuresAfter: 1 },
    { name: 'on-failure restarts an OOM kill', policy: 'on-failure', failures: 1, exit: oom, ran: short, want: 'restart', delay: 2000, failuresAfter: 2 },
    { name: 'always restarts a clean exit', policy: 'always', failures: 0, exit: clean, ran: long, want: 'restart', delay: 1000, failuresAfter: 1 },
    { name: 'backoff grows with short runs', policy: 'always', failures: 3, exit: crash, ran: short, want: 'restart', delay: 8000, failuresAfter: 4 },
    { name: 'a stable run forgets earlier failures', policy: 'always', failures: 4, exit: crash, ran: long, want: 'restart', delay: 1000, failuresAfter: 1 },
    { name: 'five short runs in a row are a crash loop', policy: 'always', failures: 4, exit: crash, ran: short, want: 'fail', failuresAfter: 5 },
    { name: 'a crash loop also fails on-failure', policy: 'on-failure', maxRetries: 100, failures: 4, exit: crash, ran: short, want: 'fail', failuresAfter: 5 },
    { name: 'on-failure gives up after max_retries', policy: 'on-failure', maxRetries: 2, failures: 2, exit: crash, ran: short, want: 'fail', failuresAfter: 3 },
    { name: 'max_retries 0 never restarts a failure', policy: 'on-failure', maxRetries: 0, failures: 0, exit: crash, ran: long, want: 'fail', failuresAfter: 1 },
    { name: 'long runs never make a crash loop', policy: 'always', failures: 0, exit: crash, ran: long * 2, want: 'restart', delay: 1000, failuresAfter: 1 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = decideRestart({ policy: c.policy, maxRetries: c.maxRetries ?? 10 }, { failures: c.failures }, c.exit, c.ran);
      assert.equal(d.action, c.want, d.reason);
      assert.equal(d.history.failures, c.failuresAfter);
      if (c.delay !== undefined) assert.equal((d as { delayMs: number }).delayMs, c.delay);
    });
  }

  test('reasons say what happened and why', () => {
    assert.match(decideRestart({ policy: 'always', maxRetries: 10 }, { failures: 4 }, crash, 10).reason, /^crash loop: exit code 3, 5 times in a row within 30s of starting$/);
    assert.match(decideRestart({ policy: 'on-failure', maxRetries: 1 }, { failures: 1 }, killed, 10).reason, /killed by SIGKILL \(exit code 137\); gave up after 1 restart \(restart.max_retries\)/);
    assert.match(decideRestart({ policy: 'always', maxRetries: 1 }, { failures: 0 }, crash, 10).reason, /restarting in 1s/);
    assert.equal(describeExit(oom), 'killed out of memory (exit code 137)');
    assert.match(describeExit({ code: -1, signal: undefined, reason: 'unknown' }), /unknown/);
  });
});
