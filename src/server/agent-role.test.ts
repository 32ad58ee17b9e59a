import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../core/index.ts';
import { resolveServerConfig } from '../config/index.ts';
import { SqliteStore } from '../store/index.ts';
import { agentUnavailable, prepareRuntime } from './agent-role.ts';
import { newLogger } from './logger.ts';

test('the agent role needs root: without it, a clear error that says how to run without the agent', async () => {
  const real = process.getuid;
  const dir = await mkdtemp(join(tmpdir(), 'ward-agent-role-'));
  const store = await SqliteStore.open({ file: ':memory:' });
  try {
    process.getuid = () => 1000;
    const why = agentUnavailable();
    assert.ok(why instanceof UserError);
    assert.equal(why.code, 'unavailable');
    assert.match(why.message, /needs root/);
    assert.match(why.hint!, /--roles control/);
    const config = resolveServerConfig({ flags: { 'data-dir': dir, roles: 'control,agent' }, env: {}, cwd: dir });
    assert.throws(() => prepareRuntime(config, store, newLogger('silent')), (e: unknown) => e instanceof UserError && e.code === 'unavailable');
    // The control plane alone needs no root: deploys resolve images, the agent is elsewhere.
    const control = prepareRuntime(resolveServerConfig({ flags: { 'data-dir': dir, roles: 'control' }, env: {}, cwd: dir }), store, newLogger('silent'));
    assert.equal(control.agent, undefined);
    assert.equal(control.apiDeps.logs, undefined);
    await control.close();
  } finally {
    process.getuid = real;
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('an agent or edge without the control role needs the control plane\'s database', async () => {
  const { startServer } = await import('./index.ts');
  const dir = await mkdtemp(join(tmpdir(), 'ward-split-roles-'));
  try {
    for (const roles of ['agent,edge', 'agent', 'edge']) {
      const config = resolveServerConfig({ flags: { 'data-dir': dir, roles, 'log-level': 'silent' }, env: {}, cwd: dir });
      await assert.rejects(startServer(config), (e: unknown) => e instanceof UserError && e.code === 'invalid_config' && /--database-url/.test(e.hint ?? ''), roles);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
