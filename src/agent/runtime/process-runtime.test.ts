// The process-level fake must behave like a runtime (real processes, exits, signals, recovery), since
// scheduler and supervisor tests rely on it. No root needed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId } from '../../core/index.ts';
import { ProcessRuntime } from './process-runtime.ts';
import type { InstanceSpec } from './types.ts';

const node = process.execPath;

describe('ProcessRuntime', () => {
  let dir: string;
  let rt: ProcessRuntime;
  const started: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-procrt-'));
    rt = new ProcessRuntime({ stateDir: join(dir, 'state') });
  });
  after(async () => {
    for (const id of started) await rt.destroy(id).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  function spec(script: string, env: Record<string, string> = {}): InstanceSpec {
    const id = newId('instance');
    started.push(id);
    return {
      id,
      rootfs: dir,
      process: { args: [node, '-e', script], env, cwd: '/', user: { uid: 0, gid: 0 } },
      resources: { memoryBytes: 64 * 1024 * 1024, cpus: 1, pids: 64 },
      mounts: [],
      stdout: { file: join(dir, `${id}.log`) },
      stderr: { file: join(dir, `${id}.log`) },
      labels: { app: 'web' },
    };
  }

  const log = (id: string) => readFile(join(dir, `${id}.log`), 'utf8');

  test('start, output, exit code', async () => {
    const s = spec('console.log("hello", process.env.GREETING); process.exit(3)', { GREETING: 'there' });
    const h = await rt.start(s);
    assert.ok(h.pid > 0);
    const exit = await rt.wait(s.id);
    assert.equal(exit.code, 3);
    assert.equal(exit.reason, 'exited');
    assert.equal(await log(s.id), 'hello there\n');
    const info = await rt.inspect(s.id);
    assert.equal(info?.state, 'exited');
    assert.deepEqual(info?.labels, { app: 'web' });
  });

  test('a run of a reused id is not ended by the reaping of the run before it', async () => {
    // The agent restarts an instance under the same id: run 1 ends, is destroyed, and run 2 starts while
    // run 1's monitor may still be waiting to be reaped. Its reaping must not settle run 2's watch.
    const first = spec('process.exit(3)');
    await rt.start(first);
    assert.equal((await rt.wait(first.id)).code, 3);
    await rt.destroy(first.id);
    await new Promise((r) => setTimeout(r, 150)); // run 1's monitor is reaped in here
    const second = { ...first, process: { ...first.process, args: [node, '-e', 'setInterval(() => {}, 1000)'] } };
    await rt.start(second);
    const settled = await Promise.race([rt.wait(first.id).then(() => 'ended', (e: Error) => e.message), new Promise((r) => setTimeout(() => r('running'), 300))]);
    assert.equal(settled, 'running');
    assert.equal((await rt.inspect(first.id))?.state, 'running');
    const exit = await rt.stop(first.id, { timeoutMs: 2000 });
    assert.equal(exit.reason, 'stopped');
  });

  test('stop: signal first, SIGKILL after the timeout', async () => {
    const graceful = spec('process.on("SIGTERM", () => { console.log("bye"); process.exit(0) }); console.log("up"); setInterval(() => {}, 1000)');
    await rt.start(graceful);
    await waitFor(async () => (await log(graceful.id)).includes('up'));
    assert.deepEqual((({ code, reason }) => ({ code, reason }))(await rt.stop(graceful.id, { timeoutMs: 5000 })), { code: 0, reason: 'stopped' });
    assert.match(await log(graceful.id), /bye/);

    const stubborn = spec('process.on("SIGTERM", () => console.log("no")); console.log("up"); setInterval(() => {}, 1000)');
    await rt.start(stubborn);
    await waitFor(async () => (await log(stubborn.id)).includes('up'));
    const t0 = performance.now();
    const exit = await rt.stop(stubborn.id, { signal: 'SIGTERM', timeoutMs: 300 });
    assert.ok(performance.now() - t0 >= 300);
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(exit.reason, 'stopped');
  });

  test('a killed process is reported; stats and exec work while it runs', async () => {
    const s = spec('setInterval(() => {}, 1000)', { X: 'y' });
    const h = await rt.start(s);
    const st = await rt.stats(s.id);
    assert.ok(st.memoryBytes > 0 && st.pids >= 1);
    assert.equal(st.memoryLimitBytes, 64 * 1024 * 1024);
    const r = await rt.exec(s.id, [node, '-e', 'console.log(process.env.X)']);
    assert.deepEqual(r, { code: 0, stdout: 'y\n', stderr: '' });
    process.kill(h.pid, 'SIGKILL');
    const exit = await rt.wait(s.id);
    assert.deepEqual([exit.code, exit.signal, exit.reason], [137, 'SIGKILL', 'signal']);
    await assert.rejects(rt.stats(s.id), /not running/);
  });

  test('recover() from a new object re-attaches without restarting', async () => {
    const s = spec('setInterval(() => {}, 1000)');
    const h = await rt.start(s);
    const again = new ProcessRuntime({ stateDir: join(dir, 'state') });
    const found = (await again.recover()).find((i) => i.id === s.id);
    assert.equal(found?.state, 'running');
    assert.equal(found?.pid, h.pid);
    const exit = await again.stop(s.id, { timeoutMs: 2000 });
    assert.equal(exit.reason, 'stopped');
    assert.deepEqual(await rt.wait(s.id), exit);
    await again.destroy(s.id);
    assert.equal(await rt.inspect(s.id), undefined);
  });

  test('a missing program exits 127; unknown ids are refused', async () => {
    const s = spec('');
    s.process.args = ['/no/such/program'];
    await rt.start(s);
    assert.equal((await rt.wait(s.id)).code, 127);
    await assert.rejects(rt.wait('ins_01m8k0tvw2wgc1tw50bhmd3s5c'), /no instance/);
    await assert.rejects(rt.start(s), /exists already/);
    await rt.destroy('ins_01m8k0tvw2wgc1tw50bhmd3s5c');
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
