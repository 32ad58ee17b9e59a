import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CgroupLayout } from './cgroups.ts';
import {
  HYBRID_SCRIPT,
  MONITOR_SCRIPT,
  crunDeleteArgv,
  crunExecArgv,
  crunKillArgv,
  crunListArgv,
  crunRunArgv,
  crunStateArgv,
  monitorArgv,
  overlayMountArgv,
  tmpfsMountArgv,
  umountArgv,
  type CrunContext,
} from './commands.ts';

const ID = 'ins_01m8k0tvw2wgc1tw50bhmd3s5c';
const v2: CgroupLayout = { mode: 'v2', root: '/sys/fs/cgroup' };
const hybrid: CgroupLayout = { mode: 'hybrid', controllers: { memory: '/sys/fs/cgroup/memory' }, hierarchies: ['/sys/fs/cgroup/memory'], unifiedMount: '/sys/fs/cgroup/unified' };
const ctx = (layout: CgroupLayout): CrunContext => ({ crun: 'crun', stateDir: '/run/ward/runtime/crun', layout, hybridScript: '/opt/ward/hybrid-cgroups.sh' });
const CRUN = ['crun', '--root', '/run/ward/runtime/crun', '--cgroup-manager=cgroupfs'];
const dir = `/run/ward/runtime/instances/${ID}`;

test('crun commands on a pure v1 or v2 host run crun directly', () => {
  assert.deepEqual(crunRunArgv(ctx(v2), { id: ID, bundle: dir, pidFile: `${dir}/pid`, logFile: `${dir}/crun.log` }), [
    ...CRUN, `--log=file:${dir}/crun.log`, 'run', '--bundle', dir, '--pid-file', `${dir}/pid`, '--no-new-keyring', ID,
  ]);
  assert.deepEqual(crunKillArgv(ctx(v2), ID, 'SIGTERM'), [...CRUN, 'kill', ID, 'TERM']);
  assert.deepEqual(crunKillArgv(ctx(v2), ID, 'KILL'), [...CRUN, 'kill', ID, 'KILL']);
  assert.deepEqual(crunDeleteArgv(ctx(v2), ID), [...CRUN, 'delete', '--force', ID]);
  assert.deepEqual(crunStateArgv(ctx(v2), ID), [...CRUN, 'state', ID]);
  assert.deepEqual(crunListArgv(ctx(v2)), [...CRUN, 'list', '--quiet']);
  assert.deepEqual(crunExecArgv(ctx(v2), ID, `${dir}/exec-1.json`), [...CRUN, 'exec', '--process', `${dir}/exec-1.json`, ID]);
});

test('on a hybrid host every crun command runs in a private mount namespace without the cgroup2 mount', () => {
  const wrap = ['unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '/opt/ward/hybrid-cgroups.sh', '/sys/fs/cgroup/unified'];
  assert.deepEqual(crunKillArgv(ctx(hybrid), ID, 'SIGINT'), [...wrap, ...CRUN, 'kill', ID, 'INT']);
  assert.deepEqual(crunRunArgv(ctx(hybrid), { id: ID, bundle: dir, pidFile: `${dir}/pid`, logFile: `${dir}/crun.log` }), [
    ...wrap, ...CRUN, `--log=file:${dir}/crun.log`, 'run', '--bundle', dir, '--pid-file', `${dir}/pid`, '--no-new-keyring', ID,
  ]);
  assert.equal(crunDeleteArgv({ ...ctx(hybrid), hybridScript: undefined }, ID)[6], HYBRID_SCRIPT);
});

test('the monitor wraps a command and records its exit status', () => {
  assert.deepEqual(monitorArgv(`${dir}/exit`, ['crun', 'run', ID]), ['/bin/sh', MONITOR_SCRIPT, `${dir}/exit`, 'crun', 'run', ID]);
  assert.match(MONITOR_SCRIPT, /\/src\/agent\/runtime\/monitor\.sh$/);
  assert.match(HYBRID_SCRIPT, /\/src\/agent\/runtime\/crun\/hybrid-cgroups\.sh$/);
});

test('mount commands', () => {
  assert.deepEqual(overlayMountArgv({ lower: '/img/snap', upper: `${dir}/upper`, work: `${dir}/work`, target: `${dir}/rootfs` }), [
    'mount', '-t', 'overlay', '-o', `lowerdir=/img/snap,upperdir=${dir}/upper,workdir=${dir}/work`, 'overlay', `${dir}/rootfs`,
  ]);
  // A comma or colon in a path would be read as another mount option or another lower layer.
  assert.throws(() => overlayMountArgv({ lower: '/img/a,upperdir=/etc', upper: '/u', work: '/w', target: '/t' }), /unusable/);
  assert.throws(() => overlayMountArgv({ lower: '/img/a:/etc', upper: '/u', work: '/w', target: '/t' }), /unusable/);
  assert.deepEqual(tmpfsMountArgv('/run/ward/runtime', '0711'), ['mount', '-t', 'tmpfs', '-o', 'mode=0711,nosuid,nodev', 'ward-run', '/run/ward/runtime']);
  assert.deepEqual(umountArgv('/x'), ['umount', '/x']);
  assert.deepEqual(umountArgv('/x', { lazy: true }), ['umount', '--lazy', '/x']);
});
