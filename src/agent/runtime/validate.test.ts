import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUserError } from '../../core/errors.ts';
import { DEFAULT_ID_MAPPING, type InstanceSpec } from './types.ts';
import { validateSpec } from './validate.ts';
import { exitStatusFor, signalForCode } from './state.ts';

const MiB = 1024 * 1024;
const host = { memoryBytes: 1024 * MiB, cpus: 2 };

function spec(): InstanceSpec {
  return {
    id: 'ins_01m8k0tvw2wgc1tw50bhmd3s5c',
    rootfs: '/img/snap',
    process: { args: ['/app'], env: { A: '1' }, cwd: '/', user: { uid: 0, gid: 0 } },
    resources: { memoryBytes: 256 * MiB, cpus: 1, pids: 512 },
    mounts: [],
    stdout: { file: '/tmp/log' },
    stderr: { file: '/tmp/log' },
  };
}

test('validateSpec accepts a good spec', () => {
  assert.doesNotThrow(() => validateSpec(spec(), host, DEFAULT_ID_MAPPING));
});

test('validateSpec refuses malformed specs as bugs (TypeError)', () => {
  const cases: [string, (s: InstanceSpec) => void, RegExp][] = [
    ['an id of another kind', (s) => (s.id = 'app_01m8k0tvw2wgc1tw50bhmd3s5c'), /not an ins_ id/],
    ['a path as id', (s) => (s.id = '../../etc'), /not an ins_ id/],
    ['a relative rootfs', (s) => (s.rootfs = 'img'), /absolute/],
    ['no command', (s) => (s.process.args = []), /empty/],
    ['a NUL in an argument', (s) => (s.process.args = ['/app', 'a\0b']), /NUL/],
    ['a relative cwd', (s) => (s.process.cwd = 'app'), /absolute/],
    ['an env name with =', (s) => (s.process.env = { 'A=B': '1' }), /invalid/],
    ['an empty env name', (s) => (s.process.env = { '': '1' }), /invalid/],
    ['an unmapped uid', (s) => (s.process.user = { uid: 70000, gid: 0 }), /outside/],
    ['a negative gid', (s) => (s.process.user = { uid: 0, gid: -1 }), /outside/],
    ['too little memory', (s) => (s.resources.memoryBytes = 1024), /at least/],
    ['zero cpus', (s) => (s.resources.cpus = 0), /positive/],
    ['too few pids', (s) => (s.resources.pids = 2), /at least/],
    ['a mount over /proc', (s) => (s.mounts = [{ source: '/v', destination: '/proc/sys', readOnly: false }]), /reserved/],
    ['a mount over /', (s) => (s.mounts = [{ source: '/v', destination: '/', readOnly: false }]), /reserved/],
    ['a mount with ..', (s) => (s.mounts = [{ source: '/v', destination: '/data/../etc', readOnly: false }]), /\.\./],
    ['a relative netns path', (s) => (s.network = { netnsPath: 'netns', addresses: [] }), /absolute/],
  ];
  for (const [what, mutate, re] of cases) {
    const s = spec();
    mutate(s);
    assert.throws(() => validateSpec(s, host, DEFAULT_ID_MAPPING), (e) => e instanceof TypeError && re.test(e.message), what);
  }
});

test('validateSpec refuses limits beyond the host as a user error', () => {
  const s = spec();
  s.resources.memoryBytes = 2048 * MiB;
  assert.throws(() => validateSpec(s, host, DEFAULT_ID_MAPPING), (e) => isUserError(e) && e.code === 'resources_exceed_host' && /2GB of memory; this host has 1GB/.test(e.message));
  const c = spec();
  c.resources.cpus = 4;
  assert.throws(() => validateSpec(c, host, DEFAULT_ID_MAPPING), (e) => isUserError(e) && e.code === 'resources_exceed_host' && e.hint !== undefined);
});

test('exit codes are classified: stop wins, then OOM, then signal, then a plain exit', () => {
  const at = new Date(0);
  assert.equal(signalForCode(137), 'SIGKILL');
  assert.equal(signalForCode(143), 'SIGTERM');
  assert.equal(signalForCode(1), undefined);
  assert.equal(signalForCode(128), undefined);
  assert.deepEqual(exitStatusFor(0, { stopRequested: false, oomKilled: false, exitedAt: at }), { code: 0, signal: undefined, reason: 'exited', exitedAt: at });
  assert.deepEqual(exitStatusFor(137, { stopRequested: false, oomKilled: true, exitedAt: at }), { code: 137, signal: 'SIGKILL', reason: 'oom', exitedAt: at });
  assert.deepEqual(exitStatusFor(137, { stopRequested: false, oomKilled: false, exitedAt: at }), { code: 137, signal: 'SIGKILL', reason: 'signal', exitedAt: at });
  assert.deepEqual(exitStatusFor(137, { stopRequested: true, oomKilled: true, exitedAt: at }), { code: 137, signal: 'SIGKILL', reason: 'stopped', exitedAt: at });
  assert.deepEqual(exitStatusFor(-1, { stopRequested: false, oomKilled: false, exitedAt: at }), { code: -1, signal: undefined, reason: 'unknown', exitedAt: at });
  assert.equal(exitStatusFor(1, { stopRequested: false, oomKilled: true, exitedAt: at }).reason, 'exited', 'an OOM kill of a child does not explain a plain exit');
});
