import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ID_MAPPING, type InstanceSpec } from '../types.ts';
import { ALLOWED_SYSCALLS, DENIED_SYSCALLS, ENOSYS, EPERM, seccompArch, seccompProfile } from './seccomp.ts';
import { DEFAULT_PATH, ROOT_CAPABILITIES, execProcess, hostsFile, ociSpec, resolvConf, type OciSpecInput } from './spec.ts';

const ID = 'ins_01m8k0tvw2wgc1tw50bhmd3s5c';
const MiB = 1024 * 1024;

function spec(over: Partial<InstanceSpec> = {}): InstanceSpec {
  return {
    id: ID,
    rootfs: '/var/lib/ward/images/snap1',
    process: { args: ['/usr/bin/node', '/app/server.js'], env: { NODE_ENV: 'production', SECRET: 's3cr=t' }, cwd: '/app', user: { uid: 1000, gid: 1000 } },
    resources: { memoryBytes: 256 * MiB, cpus: 0.5, pids: 512, nofile: 4096 },
    network: { netnsPath: `/run/netns/ward-${ID}`, addresses: ['fd77:6172:6400::1a', '10.89.3.4'] },
    mounts: [],
    stdout: { file: '/var/log/x' },
    stderr: { file: '/var/log/x' },
    ...over,
  };
}

const dir = `/run/ward/runtime/instances/${ID}`;
function input(s: InstanceSpec, over: Partial<OciSpecInput> = {}): OciSpecInput {
  return {
    spec: s,
    paths: { rootfs: `${dir}/rootfs`, resolvConf: `${dir}/resolv.conf`, hosts: `${dir}/hosts`, hostname: `${dir}/hostname` },
    cgroupsPath: `/ward/${ID}`,
    idMapping: DEFAULT_ID_MAPPING,
    arch: 'SCMP_ARCH_X86_64',
    initPath: '/usr/bin/tini-static',
    ...over,
  };
}

test('ociSpec builds the whole config for a non-root app', () => {
  const c = ociSpec(input(spec()));
  const { seccomp, ...linux } = c.linux;
  assert.deepEqual({ ...c, linux }, {
    ociVersion: '1.0.2',
    hostname: ID,
    root: { path: `${dir}/rootfs`, readonly: true },
    process: {
      terminal: false,
      user: { uid: 1000, gid: 1000 },
      args: ['/dev/init', '--', '/usr/bin/node', '/app/server.js'],
      env: [`PATH=${DEFAULT_PATH}`, 'NODE_ENV=production', 'SECRET=s3cr=t'],
      cwd: '/app',
      capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 }],
      noNewPrivileges: true,
      oomScoreAdj: 500,
    },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', `size=${64 * MiB}`] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${64 * MiB}`] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', `size=${256 * MiB}`] },
      { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755', `size=${64 * MiB}`] },
      { destination: '/etc/resolv.conf', type: 'bind', source: `${dir}/resolv.conf`, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
      { destination: '/etc/hosts', type: 'bind', source: `${dir}/hosts`, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
      { destination: '/etc/hostname', type: 'bind', source: `${dir}/hostname`, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
      { destination: '/dev/init', type: 'bind', source: '/usr/bin/tini-static', options: ['bind', 'ro', 'nosuid', 'nodev'] },
    ],
    linux: {
      uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
      namespaces: [
        { type: 'pid' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        { type: 'cgroup' },
        { type: 'user' },
        { type: 'network', path: `/run/netns/ward-${ID}` },
      ],
      cgroupsPath: `/ward/${ID}`,
      resources: {
        devices: [
          { allow: false, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
          { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
          { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
          { allow: true, type: 'c', major: 136, access: 'rwm' },
        ],
        memory: { limit: 256 * MiB, swap: 256 * MiB },
        cpu: { quota: 50_000, period: 100_000, shares: 512 },
        pids: { limit: 512 },
      },
      rootfsPropagation: 'rprivate',
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
        '/proc/sched_debug', '/proc/scsi', '/proc/timer_list', '/proc/timer_stats', '/sys/devices/virtual/powercap',
        '/sys/firmware',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  });
  assert.deepEqual(seccomp, seccompProfile('SCMP_ARCH_X86_64'));
});

test('ociSpec never mounts /sys (crun would bind the host\'s into a host-owned netns)', () => {
  for (const s of [spec(), spec({ network: undefined as never })]) {
    const c = ociSpec(input(s));
    assert.ok(!c.mounts.some((m) => m.destination === '/sys' || m.destination.startsWith('/sys/') || m.type === 'sysfs'));
  }
});

test('the instance root keeps the reduced default capabilities, never the dangerous ones', () => {
  const c = ociSpec(input(spec({ process: { ...spec().process, user: { uid: 0, gid: 0 } } })));
  const caps = c.process.capabilities;
  assert.deepEqual(caps.effective, [...ROOT_CAPABILITIES]);
  assert.deepEqual(caps.bounding, [...ROOT_CAPABILITIES]);
  assert.deepEqual(caps.inheritable, []);
  assert.deepEqual(caps.ambient, []);
  for (const bad of ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_PTRACE', 'CAP_SYS_MODULE', 'CAP_MKNOD', 'CAP_DAC_READ_SEARCH', 'CAP_SYS_RAWIO', 'CAP_BPF']) {
    assert.ok(!caps.bounding.includes(bad), `${bad} is not granted`);
  }
});

test('ociSpec: no network given → a fresh empty namespace; no init → the app is pid 1; volumes are bind mounts', () => {
  const c = ociSpec(
    input(spec({ network: undefined as never, mounts: [{ source: '/var/lib/ward/volumes/v1', destination: '/data', readOnly: false }] }), { initPath: undefined }),
  );
  assert.deepEqual(c.linux.namespaces.at(-1), { type: 'network' });
  assert.deepEqual(c.process.args, ['/usr/bin/node', '/app/server.js']);
  assert.ok(!c.mounts.some((m) => m.destination === '/dev/init'));
  assert.deepEqual(c.mounts.at(-1), { destination: '/data', type: 'bind', source: '/var/lib/ward/volumes/v1', options: ['rbind', 'rw', 'nosuid', 'nodev', 'rprivate'] });
});

test('ociSpec keeps an image PATH and rounds CPU limits', () => {
  const c = ociSpec(input(spec({ process: { ...spec().process, env: { PATH: '/opt/bin' } }, resources: { memoryBytes: 64 * MiB, cpus: 2, pids: 100 } })));
  assert.deepEqual(c.process.env, ['PATH=/opt/bin']);
  assert.deepEqual(c.linux.resources.cpu, { quota: 200_000, period: 100_000, shares: 2048 });
  assert.deepEqual(c.linux.resources.pids, { limit: 100 });
});

test('seccomp: default-deny with ENOSYS, clone only without namespace flags, clone3 answers ENOSYS', () => {
  const p = seccompProfile('SCMP_ARCH_X86_64');
  assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(p.defaultErrnoRet, ENOSYS);
  assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64']);
  const rulesFor = (name: string) => p.syscalls.filter((r) => r.names.includes(name));
  assert.deepEqual(rulesFor('clone'), [
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
  ]);
  assert.deepEqual(rulesFor('clone3'), [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
  assert.deepEqual(rulesFor('socket'), [{ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 40, op: 'SCMP_CMP_NE' }] }]);
  assert.equal(rulesFor('personality').length, 5);
  for (const name of ['unshare', 'setns', 'mount', 'umount2', 'pivot_root', 'ptrace', 'process_vm_readv', 'bpf', 'keyctl', 'add_key', 'request_key', 'perf_event_open', 'init_module', 'finit_module', 'kexec_load', 'reboot', 'swapon', 'open_by_handle_at', 'userfaultfd', 'io_uring_setup', 'chroot', 'sethostname', 'syslog']) {
    const rules = rulesFor(name);
    assert.deepEqual(rules.map((r) => [r.action, r.errnoRet]), [['SCMP_ACT_ERRNO', EPERM]], `${name} is refused with EPERM`);
  }
});

test('seccomp: the allowlist is about the size of the default profile, has what Node.js needs, and never overlaps the denials', () => {
  const all = [...ALLOWED_SYSCALLS];
  assert.equal(new Set(all).size, all.length, 'no duplicates');
  assert.ok(all.length >= 250 && all.length <= 300, `${all.length} syscalls`);
  for (const needed of ['epoll_pwait', 'io_submit', 'futex', 'mmap', 'mprotect', 'madvise', 'getrandom', 'statx', 'pipe2', 'eventfd2', 'rseq', 'set_robust_list', 'prlimit64', 'sched_getaffinity', 'accept4', 'execve', 'wait4']) {
    assert.ok(all.includes(needed), `${needed} is allowed`);
  }
  for (const d of DENIED_SYSCALLS) assert.ok(!all.includes(d), `${d} is not both allowed and denied`);
  assert.ok(!all.includes('clone') && !all.includes('clone3') && !all.includes('socket') && !all.includes('personality'), 'conditional syscalls are not allowed unconditionally');
  const arm = seccompProfile('SCMP_ARCH_AARCH64');
  assert.ok(!arm.syscalls[0]!.names.includes('arch_prctl'));
  assert.equal(seccompArch('x64'), 'SCMP_ARCH_X86_64');
  assert.throws(() => seccompArch('ia32'), /unsupported architecture/);
});

test('execProcess keeps the confinement and replaces args and env', () => {
  const base = ociSpec(input(spec())).process;
  const p = execProcess(base, ['sh', '-c', 'true'], { NODE_ENV: 'test', EXTRA: '1' });
  assert.deepEqual(p, { ...base, args: ['sh', '-c', 'true'], env: [`PATH=${DEFAULT_PATH}`, 'SECRET=s3cr=t', 'NODE_ENV=test', 'EXTRA=1'] });
  assert.equal(p.noNewPrivileges, true);
});

test('resolvConf and hostsFile render the instance files', () => {
  assert.equal(resolvConf(undefined), '');
  assert.equal(resolvConf({ nameservers: ['fd77::53'], search: ['app.internal'], options: ['ndots:1'] }), 'nameserver fd77::53\nsearch app.internal\noptions ndots:1\n');
  assert.equal(
    hostsFile(spec({ hosts: [{ address: 'fd77::2', names: ['db', 'db.internal'] }] })),
    `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfd77:6172:6400::1a\t${ID}\n10.89.3.4\t${ID}\nfd77::2\tdb db.internal\n`,
  );
  assert.equal(hostsFile(spec({ network: undefined as never, hostname: 'web' })), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tweb\n');
});
