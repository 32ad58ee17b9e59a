// Secret files in a real crun instance: the secrets hook writes them on its own tmpfs and bind-mounts
// them read-only at /run/secrets; inside, the app's user (uid 1000) reads them, cannot change them, and a
// neighbour instance does not see them; the values are in the instance's environment (from the OCI
// config on the runtime's tmpfs) and on no disk. Needs root and crun, as CI has; everything is removed
// afterwards (RuntimeHarness.cleanup sweeps the mounts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { newId } from '../../src/core/index.ts';
import type { AppConfig } from '../../src/config/index.ts';
import { secretsHook, type HookContext } from '../../src/agent/index.ts';
import type { Image } from '../../src/agent/runtime/index.ts';
import { RuntimeHarness, cannotRunContainers } from './runtime-harness.ts';
import { scanFiles, SYSTEM_SCAN_ROOTS, SYSTEM_SCAN_SKIP } from './canary-scan.ts';

const skip = cannotRunContainers();
const CHECKOUT = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');

describe('secret files and environment in a crun instance', { skip, timeout: 120_000 }, () => {
  const h = new RuntimeHarness();
  const CANARY = `wardcanaryenv${randomBytes(12).toString('hex')}`;
  const CFILE = `wardcanaryfile${randomBytes(12).toString('hex')}`;

  before(async () => {
    await h.setUp();
  });
  after(async () => {
    await h.cleanup();
  });

  function context(id: string): HookContext {
    return {
      instanceId: id,
      assignment: {
        instance: { id, hostId: 'hst_test' } as HookContext['assignment']['instance'],
        release: { id: 'rel_test', version: 1, imageRef: 'x', imageDigest: 'sha256:x', config: {} as AppConfig, secretsVersion: 1 },
        app: { id: 'app_test', name: 'portal', orgId: 'org_test' },
      },
      config: { secrets: { files: ['TLS_KEY'] } } as AppConfig,
      host: { id: 'hst_test', name: 'test', region: 'local' },
      note() {},
      report() {},
      image: { config: { User: '1000:1000' }, rootfs: h.rootfs } as unknown as Image,
      mounts: [],
      secretEnv: {},
      health: 'unknown',
    };
  }

  test('the app reads its files at /run/secrets and its values in its environment; nothing on disk', async () => {
    const filesRoot = join(h.runDir, 'secrets');
    const hook = secretsHook({ env: async () => ({ CANARY, TLS_KEY: CFILE }) }, { filesRoot });
    const id = newId('instance');
    const ctx = context(id);
    await hook.prestart!(ctx);
    assert.deepEqual(ctx.mounts, [{ source: join(filesRoot, id), destination: '/run/secrets', readOnly: true }]);
    const spec = h.spec({ uid: 1000, env: ctx.secretEnv, network: false }, undefined, id);
    spec.mounts = ctx.mounts;
    h.ids.add(id);
    await h.runtime.start(spec);

    const cat = await h.runtime.exec(id, ['cat', '/run/secrets/TLS_KEY']);
    assert.deepEqual([cat.code, cat.stdout], [0, CFILE], cat.stderr);
    const ls = await h.runtime.exec(id, ['ls', '-ln', '/run/secrets']);
    assert.match(ls.stdout, /^-r-------- +1 1000 +1000 .* TLS_KEY$/m, ls.stdout);
    const write = await h.runtime.exec(id, ['sh', '-c', 'echo x > /run/secrets/TLS_KEY || echo refused; touch /run/secrets/new || echo refused']);
    assert.equal(write.stdout.trim().split('\n').filter((l) => l === 'refused').length, 2, `read-only: ${write.stdout}${write.stderr}`);
    const env = await h.runtime.exec(id, ['env']);
    assert.ok(env.stdout.split('\n').includes(`CANARY=${CANARY}`), 'the value is in the environment');

    // A neighbour has its own /run: no /run/secrets there.
    const other = await h.start({ network: false });
    const peek = await h.runtime.exec(other.id, ['ls', '/run/secrets']);
    assert.notEqual(peek.code, 0, 'the neighbour sees no secrets');

    // On disk: nowhere. The runtime's bundle (config.json with the env) and the files are on tmpfs.
    const needles = [Buffer.from(CANARY), Buffer.from(CFILE)];
    const scan = await scanFiles([h.runDir, h.logDir, ...SYSTEM_SCAN_ROOTS, CHECKOUT], needles, { skip: [...SYSTEM_SCAN_SKIP, join(CHECKOUT, 'node_modules'), join(CHECKOUT, '.git')] });
    assert.deepEqual(scan.hits, [[], []], 'a canary is on disk');
    assert.ok(scan.skippedMemoryFs.includes(filesRoot), `secret files on a tmpfs: ${scan.skippedMemoryFs}`);
    assert.ok(scan.skippedMemoryFs.includes(join(h.runDir, 'runtime')), `bundles on a tmpfs: ${scan.skippedMemoryFs}`);

    // After the run: the files go with it.
    await h.runtime.stop(id, { timeoutMs: 2000 });
    await hook.exited!(ctx, undefined);
    assert.deepEqual(ctx.secretEnv, {});
    assert.deepEqual(await readdir(filesRoot), []);
  });

  test('a name in [secrets] files that the app has no secret for fails the start, naming it', async () => {
    const hook = secretsHook({ env: async () => ({ OTHER: 'x' }) }, { filesRoot: join(h.runDir, 'secrets') });
    const ctx = context(newId('instance'));
    await assert.rejects(hook.prestart!(ctx), (e: any) => e.code === 'invalid_secret' && /TLS_KEY/.test(e.message));
    assert.deepEqual(ctx.secretEnv, {}, 'nothing kept');
  });
});
