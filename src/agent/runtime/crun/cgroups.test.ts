import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupDirs, cgroupFiles, detectCgroupLayout, isMountPoint, isTmpfsMount, mountsUnder, parseKeyedCounter, parseLimit, parseMountinfo } from './cgroups.ts';

// This machine's kind: systemd-style hybrid (v1 controllers, a named systemd hierarchy, cgroup2 at unified).
const HYBRID = `22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 27 0:39 / /run/ward/runtime rw,relatime - tmpfs ward-run rw,mode=711
43 42 0:40 / /run/ward/runtime/instances/ins_a/rootfs rw,relatime - overlay overlay rw,lowerdir=/img
44 27 0:41 / /run/my\\040dir rw,relatime - tmpfs tmpfs rw
`;
const V2 = `30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;
// Older distributions: v1 only, cpu and cpuacct co-mounted.
const V1 = `32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
`;

test('detectCgroupLayout tells hybrid, v2 and v1 hosts apart', () => {
  assert.deepEqual(detectCgroupLayout(HYBRID), {
    mode: 'hybrid',
    controllers: { cpu: '/sys/fs/cgroup/cpu', cpuacct: '/sys/fs/cgroup/cpuacct', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' },
    hierarchies: ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/systemd'],
    unifiedMount: '/sys/fs/cgroup/unified',
  });
  assert.deepEqual(detectCgroupLayout(V2), { mode: 'v2', root: '/sys/fs/cgroup' });
  assert.deepEqual(detectCgroupLayout(V1), {
    mode: 'v1',
    controllers: { cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' },
    hierarchies: ['/sys/fs/cgroup/cpu,cpuacct', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids'],
  });
  assert.throws(() => detectCgroupLayout('22 27 0:21 / /proc rw - proc proc rw\n'), /no cgroup/);
});

test('cgroupFiles and cgroupDirs locate an instance cgroup', () => {
  const path = '/ward/ins_a';
  assert.deepEqual(cgroupFiles(detectCgroupLayout(HYBRID), path), {
    memoryCurrent: '/sys/fs/cgroup/memory/ward/ins_a/memory.usage_in_bytes',
    memoryLimit: '/sys/fs/cgroup/memory/ward/ins_a/memory.limit_in_bytes',
    oomEvents: '/sys/fs/cgroup/memory/ward/ins_a/memory.oom_control',
    cpuUsage: '/sys/fs/cgroup/cpuacct/ward/ins_a/cpuacct.usage',
    pidsCurrent: '/sys/fs/cgroup/pids/ward/ins_a/pids.current',
    pidsMax: '/sys/fs/cgroup/pids/ward/ins_a/pids.max',
  });
  assert.deepEqual(cgroupFiles(detectCgroupLayout(V2), path), {
    memoryCurrent: '/sys/fs/cgroup/ward/ins_a/memory.current',
    memoryLimit: '/sys/fs/cgroup/ward/ins_a/memory.max',
    oomEvents: '/sys/fs/cgroup/ward/ins_a/memory.events',
    cpuUsage: '/sys/fs/cgroup/ward/ins_a/cpu.stat',
    pidsCurrent: '/sys/fs/cgroup/ward/ins_a/pids.current',
    pidsMax: '/sys/fs/cgroup/ward/ins_a/pids.max',
  });
  assert.deepEqual(cgroupDirs(detectCgroupLayout(V2), path), ['/sys/fs/cgroup/ward/ins_a']);
  assert.equal(cgroupDirs(detectCgroupLayout(HYBRID), path).length, 5);
});

test('mountinfo helpers', () => {
  assert.ok(isTmpfsMount(HYBRID, '/run/ward/runtime'));
  assert.ok(!isTmpfsMount(HYBRID, '/run/ward'));
  assert.ok(isTmpfsMount(HYBRID, '/run/my dir'), 'octal escapes are decoded');
  assert.ok(isMountPoint(HYBRID, '/run/ward/runtime/instances/ins_a/rootfs'));
  assert.deepEqual(mountsUnder(HYBRID, '/run/ward'), ['/run/ward/runtime/instances/ins_a/rootfs', '/run/ward/runtime']);
  assert.deepEqual(mountsUnder(HYBRID, '/run/war'), []);
  assert.equal(parseMountinfo(HYBRID).length, 11);
});

test('cgroup file parsers', () => {
  assert.equal(parseKeyedCounter('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n', 'oom_kill'), 2);
  assert.equal(parseKeyedCounter('usage_usec 1234\nuser_usec 1000\n', 'usage_usec'), 1234);
  assert.equal(parseKeyedCounter('low 0\n', 'oom_kill'), undefined);
  assert.equal(parseLimit('max\n'), undefined);
  assert.equal(parseLimit('9223372036854771712\n'), undefined);
  assert.equal(parseLimit('268435456\n'), 268435456);
});
