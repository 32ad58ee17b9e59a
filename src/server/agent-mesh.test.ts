// The agent role's mesh wiring: at start the host registers with the control plane's store (its
// WireGuard public key, the configured endpoint) before the agent runs, keeps the same slice index and
// key across restarts, and is the gateway people's configs name. A given (loopback) network keeps the
// WireGuard interface down: nothing here touches the machine's network.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { wireGuardPublicKey } from '../core/index.ts';
import { resolveServerConfig } from '../config/index.ts';
import { SqliteStore } from '../store/index.ts';
import { LoopbackNetwork } from '../agent/testing.ts';
import { ProcessRuntime } from '../agent/runtime/index.ts';
import { prepareRuntime } from './agent-role.ts';
import { newLogger } from './logger.ts';

test('the agent registers its key and --wireguard-endpoint before it starts, and keeps its index', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ward-agent-mesh-'));
  const store = await SqliteStore.open({ file: ':memory:' });
  try {
    const config = resolveServerConfig({ flags: { 'data-dir': dir, roles: 'control,agent', 'wireguard-endpoint': '192.0.2.10' }, env: {}, cwd: dir });
    const boot = async () => {
      const role = prepareRuntime(config, store, newLogger('silent'), { runtime: new ProcessRuntime({ stateDir: join(dir, 'rt') }), network: new LoopbackNetwork(), agent: { reconcileIntervalMs: 60_000 } });
      assert.equal(await role.gateway!(), undefined, 'no gateway before the host registered');
      await role.start(() => {});
      return role;
    };
    const first = await boot();
    const hostId = first.agent!.hostId;
    const rows = await store.hostMesh.list();
    assert.equal(rows.length, 1);
    const privateKey = (await readFile(join(dir, 'agent', 'wireguard', 'ward-wg.key'), 'utf8')).trim();
    assert.deepEqual(rows.map((r) => [r.hostId, r.index, r.publicKey, r.endpoint]), [[hostId, 1, wireGuardPublicKey(privateKey), '192.0.2.10:51820']]);
    assert.deepEqual(await first.gateway!(), { hostIndex: 1, publicKey: wireGuardPublicKey(privateKey), endpoint: '192.0.2.10:51820' });
    await first.close();
    // A restart: the same host id, key and index.
    const second = await boot();
    assert.equal(second.agent!.hostId, hostId);
    assert.deepEqual((await store.hostMesh.list()).map((r) => [r.hostId, r.index, r.publicKey]), [[hostId, 1, wireGuardPublicKey(privateKey)]]);
    await second.close();
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
