import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LogJournal } from '../logs/index.ts';
import { ProcessRuntime } from '../runtime/index.ts';
import { appConfig, freePort, LoopbackNetwork, MemoryImages, testContext, waitFor } from '../testing.ts';
import { buildSpec, startHook } from './start.ts';

describe('start hook', () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ward-hook-start-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  test('buildSpec: command, env layers, user, limits, network, output files, labels', async () => {
    const images = new MemoryImages();
    const img = await images.add(root, { Entrypoint: ['/bin/app'], Cmd: ['--serve'], Env: ['A=image'], WorkingDir: '/srv' });
    const ctx = testContext({ config: appConfig({ env: { B: 'toml' }, resources: { memory: '128MB', cpus: 0.5 } }) });
    ctx.image = img;
    ctx.attachment = await new LoopbackNetwork().attach({ instanceId: ctx.instanceId, orgId: 'org_1' });
    ctx.secretEnv = { S: 'secret' };
    const journal = new LogJournal({ dir: join(root, 'logs') });
    const spec = await buildSpec(ctx, journal, 64);
    assert.deepEqual(spec.process.args, ['/bin/app', '--serve']);
    assert.equal(spec.process.cwd, '/srv');
    assert.deepEqual(spec.process.user, { uid: 0, gid: 0 });
    assert.deepEqual({ A: spec.process.env.A, B: spec.process.env.B, S: spec.process.env.S, app: spec.process.env.WARD_APP_NAME, v: spec.process.env.WARD_RELEASE_VERSION, ip: spec.process.env.WARD_PRIVATE_IPV4 }, { A: 'image', B: 'toml', S: 'secret', app: 'web', v: '4', ip: '127.0.0.1' });
    assert.deepEqual(spec.resources, { memoryBytes: 128 * 1024 * 1024, cpus: 0.5, pids: 64 });
    assert.deepEqual(spec.network, { netnsPath: '/proc/self/ns/net', addresses: ['::1', '127.0.0.1'] });
    assert.deepEqual(spec.stdout, { file: join(root, 'logs', ctx.instanceId, 'stdout') });
    assert.deepEqual(spec.stderr, { file: join(root, 'logs', ctx.instanceId, 'stderr') });
    assert.deepEqual(spec.labels, { 'ward.app': 'app_1', 'ward.release': 'rel_1', 'ward.version': '4', 'ward.org': 'org_1' });
  });

  test('prestart runs the process with its output captured; prestop stops it with the kill signal; exited frees the id', async () => {
    const images = new MemoryImages();
    const img = await images.add(root);
    const runtime = new ProcessRuntime({ stateDir: join(root, 'rt') });
    const journal = new LogJournal({ dir: join(root, 'logs2') });
    const port = await freePort();
    const ctx = testContext({ config: appConfig({ env: { PORT: String(port) }, kill_signal: 'SIGTERM', kill_timeout: '2s' }) });
    ctx.image = img;
    const hook = startHook({ runtime, journal, capture: { pollMs: 20 } });
    try {
      await hook.prestart!(ctx);
      assert.ok(ctx.handle!.pid > 0);
      await waitFor('listening', async () => (await journal.read([ctx.instanceId])).some((e) => e.message === `listening on ${port}`));
      await hook.prestop!(ctx);
      const exit = await runtime.wait(ctx.instanceId);
      assert.equal(exit.reason, 'stopped');
      await hook.exited!(ctx, exit);
      assert.equal(await runtime.inspect(ctx.instanceId), undefined);
      assert.ok((await journal.read([ctx.instanceId])).some((e) => e.message === 'SIGTERM'), 'the app saw SIGTERM and its last words were read');
      // The id runs again (a restart), appending to the same journal.
      await hook.prestart!(ctx);
      await waitFor('listening again', async () => (await journal.read([ctx.instanceId])).filter((e) => e.message === `listening on ${port}`).length === 2);
    } finally {
      await hook.poststop!(ctx);
    }
    assert.equal(await runtime.inspect(ctx.instanceId), undefined);
    await hook.poststop!(ctx);
  });
});
