// CrunRuntime and BridgeNetwork against the real thing: crun, user/pid/mount/network namespaces, cgroup
// limits, seccomp, a real Node.js app on a private address. The tests try to break the confinement from
// inside (as the instance's root, the worst case) and check the host stays untouched. Needs root; CI
// runs as root. Everything is removed afterwards, even on failure (RuntimeHarness.cleanup).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync, statSync, statfsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { totalmem } from 'node:os';
import { isUserError } from '../../src/core/index.ts';
import { run } from '../../src/exec/index.ts';
import { isMountPoint, isTmpfsMount, parseMountinfo } from '../../src/agent/runtime/crun/cgroups.ts';
import { TMPFS_MAGIC } from '../../src/agent/runtime/crun/crun-runtime.ts';
import { RuntimeHarness, cannotRunContainers, get, urlFor, waitForHttp, type TestInstance } from './runtime-harness.ts';

const skip = cannotRunContainers();

const CAP_NET_ADMIN = 12n;
const CAP_NET_RAW = 13n;
const CAP_SYS_PTRACE = 19n;
const CAP_SYS_ADMIN = 21n;

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

function hasCap(hex: string, bit: bigint): boolean {
  return ((BigInt(`0x${hex}`) >> bit) & 1n) === 1n;
}

describe('CrunRuntime on this host', { skip, timeout: 300_000 }, () => {
  const h = new RuntimeHarness();

  before(async () => {
    await h.setUp();
    await h.network.ensure('org_test');
  });
  after(async () => {
    await h.cleanup();
    // The sweep must leave nothing with the prefix behind.
    const links = (await run(['ip', '-o', 'link', 'show'])).stdout;
    assert.ok(!links.includes(h.prefix), `no link named ${h.prefix}* is left`);
    const netns = (await run(['ip', 'netns', 'list'])).stdout;
    assert.ok(!netns.includes(h.prefix), `no namespace ${h.prefix}-* is left`);
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(h.runDir), `nothing is mounted under ${h.runDir}`);
  });

  test('detects the host cgroup layout instead of assuming it', async () => {
    const layout = await h.runtime.layout();
    const mounts = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
    const v1 = mounts.some((m) => m.fsType === 'cgroup');
    const v2 = mounts.some((m) => m.fsType === 'cgroup2');
    assert.equal(layout.mode, v1 && v2 ? 'hybrid' : v1 ? 'v1' : 'v2');
  });

  let app: TestInstance;
  test('an instance serves HTTP on its private IPv6 and IPv4 addresses, reachable from the host', async () => {
    app = await h.start({ uid: 1000 });
    assert.ok(app.attachment);
    const [ipv6, ipv4] = app.attachment.addresses;
    assert.match(ipv6!, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}:1:/, 'in the org prefix, host slice 1');
    await waitForHttp(urlFor(ipv6!));
    assert.deepEqual(await get(urlFor(ipv6!)), { status: 200, body: 'ok' });
    assert.deepEqual(await get(urlFor(ipv4!, '/healthz')), { status: 200, body: 'healthy' });
    const info = await h.runtime.inspect(app.id);
    assert.equal(info?.state, 'running');
    assert.deepEqual(info?.addresses, app.attachment.addresses);
    assert.deepEqual(info?.labels, { test: h.prefix });
    assert.match(h.log(app), /listening on 8080 as uid 1000/);
    assert.match(h.log(app), /GET \/healthz/);
  });

  test('the app process is confined: no_new_privs, seccomp, no capabilities, mapped uid, own namespaces', async () => {
    const pid = await h.appPid(app);
    const s = status(pid);
    assert.equal(s.NoNewPrivs, '1');
    assert.equal(s.Seccomp, '2');
    // A non-root app holds no capability at all, not even in its bounding set.
    assert.equal(BigInt(`0x${s.CapEff}`), 0n);
    assert.equal(BigInt(`0x${s.CapBnd}`), 0n);
    // uid 1000 inside is 101000 on the host; uid 0 inside is 100000.
    assert.equal(s.Uid!.split(/\s+/)[0], '101000');
    assert.deepEqual(readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/), ['0', '100000', '65536']);
    assert.deepEqual(readFileSync(`/proc/${pid}/gid_map`, 'utf8').trim().split(/\s+/), ['0', '100000', '65536']);
    for (const ns of ['pid', 'mnt', 'user', 'net', 'uts', 'ipc', 'cgroup']) {
      assert.notEqual(readlinkSync(`/proc/${pid}/ns/${ns}`), readlinkSync(`/proc/self/ns/${ns}`), `own ${ns} namespace`);
    }
    assert.equal(statSync(`/proc/${pid}/ns/net`).ino, statSync(app.attachment!.netnsPath).ino, 'it is in the namespace the network made');
  });

  test('the instance root holds only the reduced default capabilities', async () => {
    const root = await h.start({ uid: 0, network: false });
    try {
      const s = status(await h.appPid(root));
      assert.equal(s.Uid!.split(/\s+/)[0], '100000', 'root inside is an unprivileged uid outside');
      for (const [name, bit] of [['SYS_ADMIN', CAP_SYS_ADMIN], ['NET_ADMIN', CAP_NET_ADMIN], ['NET_RAW', CAP_NET_RAW], ['SYS_PTRACE', CAP_SYS_PTRACE]] as const) {
        assert.ok(!hasCap(s.CapEff!, bit), `no CAP_${name} in CapEff`);
        assert.ok(!hasCap(s.CapBnd!, bit), `no CAP_${name} in CapBnd`);
      }
      assert.equal(s.NoNewPrivs, '1');
      assert.equal(s.Seccomp, '2');
    } finally {
      await h.runtime.destroy(root.id);
    }
  });

  test('escape attempts from inside fail, even as the instance root', async (t) => {
    const root = await h.start({ uid: 0 });
    try {
      const attempts: [string, string[]][] = [
        ['a user namespace (seccomp)', ['unshare', '-U', 'true']],
        ['a network namespace (seccomp)', ['unshare', '-n', 'true']],
        ['mounting (seccomp)', ['mount', '-t', 'tmpfs', 'none', '/tmp']],
        ['writing to the root filesystem', ['touch', '/evil']],
        ['writing /etc/hosts', ['sh', '-c', 'echo 1.2.3.4 evil >> /etc/hosts']],
        ['listing host interfaces via /sys', ['ls', '/sys/class/net']],
        ['kernel sysctls', ['sh', '-c', 'echo 1 > /proc/sys/kernel/sysrq']],
        ['sysrq', ['sh', '-c', 'echo h > /proc/sysrq-trigger']],
        ['reading masked /proc/keys', ['test', '-s', '/proc/keys']],
        ['reading masked /proc/kcore', ['test', '-s', '/proc/kcore']],
        ['setting the host name (seccomp)', ['hostname', 'evil']],
        ['chroot (seccomp)', ['chroot', '/', 'true']],
        ['raw sockets (no NET_RAW)', ['ping', '-c', '1', '-W', '1', '127.0.0.1']],
        ['adding an address (netns owned by the host)', ['ip', 'addr', 'add', '10.9.9.9/32', 'dev', 'eth0']],
        ['changing the MAC address', ['ip', 'link', 'set', 'eth0', 'address', '02:00:00:00:00:01']],
        ['joining pid 1 namespaces (seccomp)', ['nsenter', '-t', '1', '-m', 'true']],
        ['a block device', ['sh', '-c', 'mknod /tmp/sda b 8 0']],
      ];
      for (const [what, argv] of attempts) {
        await t.test(what, async () => {
          const r = await h.runtime.exec(root.id, argv);
          assert.notEqual(r.code, 0, `${argv.join(' ')} must fail; got stdout ${JSON.stringify(r.stdout)}`);
        });
      }
      const unshare = await h.runtime.exec(root.id, ['unshare', '-U', 'true']);
      assert.match(unshare.stderr, /Operation not permitted/);
      const dev = await h.runtime.exec(root.id, ['cat', '/proc/net/dev']);
      const ifaces = dev.stdout.split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
      assert.deepEqual(ifaces, ['eth0', 'lo'], 'only its own interfaces are visible');
      const self = await h.runtime.exec(root.id, ['cat', '/proc/self/status']);
      assert.match(self.stdout, /NoNewPrivs:\s+1/, 'exec\'d processes have no_new_privs too');
      assert.match(self.stdout, /Seccomp:\s+2/);
      const ps = await h.runtime.exec(root.id, ['ps']);
      assert.ok(!/agent|node --test|systemd/.test(ps.stdout.replace(/\/usr\/bin\/node \/app\/server.js/, '')), 'no host process is visible');
    } finally {
      await h.runtime.destroy(root.id);
      await h.network.detach(root.id);
    }
  });

  test('exec runs as the instance user with its environment and reports the exit code', async () => {
    const r = await h.runtime.exec(app.id, ['sh', '-c', 'id -u; echo "$PORT $EXTRA"; exit 3'], { env: { EXTRA: 'x' } });
    assert.deepEqual(r, { code: 3, stdout: '1000\n8080 x\n', stderr: '' });
  });

  test('stats reads memory, CPU and pids from the instance cgroup', async () => {
    const s = await h.runtime.stats(app.id);
    assert.ok(s.memoryBytes > 1024 * 1024 && s.memoryBytes < 256 * 1024 * 1024, `memory ${s.memoryBytes}`);
    assert.equal(s.memoryLimitBytes, 256 * 1024 * 1024);
    assert.ok(s.cpuNanos > 0);
    assert.ok(s.pids >= 2 && s.pids < 64, `pids ${s.pids}`);
    assert.equal(s.pidsLimit, 512);
    assert.equal(s.oomKills, 0);
  });

  test('bundles with env values live on a tmpfs Ward mounted, readable by root only', () => {
    const stateRoot = join(h.runDir, 'runtime');
    assert.equal(statfsSync(stateRoot).type, TMPFS_MAGIC, `${stateRoot} is a tmpfs`);
    assert.ok(isTmpfsMount(readFileSync('/proc/self/mountinfo', 'utf8'), stateRoot) || statfsSync('/run').type === TMPFS_MAGIC, 'Ward mounted it (or /run is one)');
    const config = join(h.runDir, 'runtime', 'instances', app.id, 'config.json');
    assert.equal(statSync(config).mode & 0o777, 0o600);
    assert.match(readFileSync(config, 'utf8'), /"PORT=8080"/);
    assert.equal(statSync(join(h.runDir, 'runtime', 'crun')).mode & 0o777, 0o700);
  });

  test('a fork bomb is stopped by the pids limit while a neighbour keeps answering', { timeout: 60_000 }, async () => {
    // Two shells fork sleepers in endless loops (a failed fork only makes the shell try again): the bomb
    // keeps the instance at whatever limit there is. A recursive bomb stalled at a few processes when the
    // whole suite ran at once; plain loops reach the limit however busy the machine is.
    const loop = '(while :; do sleep 1000 & done)';
    const bomb = await h.start({ uid: 1000, pids: 64, cpus: 0.5, args: ['sh', '-c', `${loop} & ${loop} & exec sleep 1000`] });
    try {
      // Generous: on a loaded machine the bomb (half a CPU) takes a while to get there.
      const deadline = Date.now() + 30_000;
      let most = 0;
      while (Date.now() < deadline && most < 64) {
        const pids = (await h.runtime.stats(bomb.id)).pids;
        most = Math.max(most, pids);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(most, 64, 'the bomb reaches the limit and no further');
      // The neighbour answers every one of a run of requests with the bomb at its limit (each within the
      // client's timeout: a starved neighbour would time out).
      for (let n = 0; n < 20; n++) assert.deepEqual(await get(urlFor(app.attachment!.ipv6), 5000), { status: 200, body: 'ok' });
      assert.ok((await h.runtime.stats(bomb.id)).pids <= 64);
    } finally {
      await h.runtime.destroy(bomb.id);
      await h.network.detach(bomb.id);
    }
    assert.deepEqual(await get(urlFor(app.attachment!.ipv6)), { status: 200, body: 'ok' });
  });

  test('reaching the memory limit is reported as an OOM kill', { timeout: 30_000 }, async () => {
    const hog = await h.start({ network: false, memoryBytes: 32 * 1024 * 1024, args: ['tail', '/dev/zero'] });
    const exit = await h.runtime.wait(hog.id);
    assert.equal(exit.code, 137);
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(exit.reason, 'oom');
    await h.runtime.destroy(hog.id);
  });

  test('an OOM kill inside a running instance shows in its stats', { timeout: 30_000 }, async () => {
    const inst = await h.start({ network: false, memoryBytes: 32 * 1024 * 1024, args: ['sh', '-c', 'tail /dev/zero; sleep 1000'] });
    try {
      const deadline = Date.now() + 10_000;
      let kills = 0;
      while (Date.now() < deadline && kills === 0) {
        kills = (await h.runtime.stats(inst.id)).oomKills;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(kills >= 1);
      assert.equal((await h.runtime.inspect(inst.id))?.state, 'running');
    } finally {
      await h.runtime.destroy(inst.id);
    }
  });

  test('stop sends the signal and the app shuts down gracefully', async () => {
    const inst = await h.start({ network: false });
    await waitForLog(h, inst, /listening/);
    const exit = await h.runtime.stop(inst.id, { signal: 'SIGTERM', timeoutMs: 5000 });
    assert.equal(exit.code, 0);
    assert.equal(exit.reason, 'stopped');
    assert.match(h.log(inst), /SIGTERM: shutting down/);
    assert.deepEqual(await h.runtime.stop(inst.id), exit, 'stop is idempotent');
    await h.runtime.destroy(inst.id);
  });

  test('stop sends SIGKILL after the timeout when the app ignores the signal', async () => {
    const inst = await h.start({ network: false, env: { IGNORE_SIGTERM: '1' } });
    await waitForLog(h, inst, /listening/);
    const started = performance.now();
    const exit = await h.runtime.stop(inst.id, { signal: 'SIGTERM', timeoutMs: 700 });
    const took = performance.now() - started;
    assert.ok(took >= 700 && took < 5000, `took ${took} ms`);
    assert.equal(exit.code, 137);
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(exit.reason, 'stopped');
    assert.match(h.log(inst), /SIGTERM ignored/);
    await h.runtime.destroy(inst.id);
  });

  test('kill -9 of the app process from the host is reported by wait()', async () => {
    const inst = await h.start({ network: false });
    await waitForLog(h, inst, /listening/);
    process.kill(await h.appPid(inst), 'SIGKILL');
    const exit = await h.runtime.wait(inst.id);
    assert.equal(exit.code, 137);
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(exit.reason, 'signal');
    const info = await h.runtime.inspect(inst.id);
    assert.equal(info?.state, 'exited');
    await h.runtime.destroy(inst.id);
    assert.equal(await h.runtime.inspect(inst.id), undefined);
  });

  test('an instance whose monitor is killed keeps running, and can still be stopped', async () => {
    const inst = await h.start({ network: false });
    await waitForLog(h, inst, /listening/);
    const meta = JSON.parse(readFileSync(join(h.runDir, 'runtime', 'instances', inst.id, 'meta.json'), 'utf8')) as { monitorPid: number };
    process.kill(meta.monitorPid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await h.runtime.inspect(inst.id))?.state, 'running', 'the instance itself is fine');
    const exit = await h.runtime.stop(inst.id, { timeoutMs: 5000 });
    assert.deepEqual([exit.code, exit.reason], [-1, 'stopped'], 'ended on request; its exit code was lost with the monitor');
    await h.runtime.destroy(inst.id);
  });

  test('an app that exits by itself is reported with its exit code', async () => {
    const inst = await h.start({});
    await waitForHttp(urlFor(inst.attachment!.ipv6));
    await get(urlFor(inst.attachment!.ipv6, '/crash'));
    const exit = await h.runtime.wait(inst.id);
    assert.deepEqual({ code: exit.code, reason: exit.reason, signal: exit.signal }, { code: 1, reason: 'exited', signal: undefined });
    assert.match(h.log(inst), /crash requested/);
    await h.runtime.destroy(inst.id);
    await h.network.detach(inst.id);
  });

  test('recover() in a new runtime re-attaches to running instances instead of restarting them', async () => {
    const running = await h.start({});
    const exiting = await h.start({ network: false });
    await waitForHttp(urlFor(running.attachment!.ipv6));
    await waitForLog(h, exiting, /listening/);
    // A half-made instance, as a start interrupted by an agent crash leaves.
    const halfMade = join(h.runDir, 'runtime', 'instances', 'ins_01m8k0tvw2wgc1tw50bhmd3s5c');
    await mkdir(halfMade, { recursive: true });

    // The agent restarts: a new runtime object over the same host state.
    const agent2 = h.newRuntime();
    process.kill(await h.appPid(exiting), 'SIGKILL');
    await waitFor(() => existsSync(join(h.runDir, 'runtime', 'instances', exiting.id, 'exit')));
    const infos = await agent2.recover();
    const byId = new Map(infos.map((i) => [i.id, i]));
    const r = byId.get(running.id);
    assert.equal(r?.state, 'running');
    assert.equal(r?.pid, running.handle.pid, 'the same process: not restarted');
    assert.deepEqual(r?.addresses, running.attachment!.addresses);
    const e = byId.get(exiting.id);
    assert.equal(e?.state, 'exited');
    assert.equal(e?.exit?.code, 137);
    assert.ok(!existsSync(halfMade), 'the half-made instance is cleaned up');

    assert.deepEqual(await get(urlFor(running.attachment!.ipv6)), { status: 200, body: 'ok' });
    assert.ok((await agent2.stats(running.id)).pids >= 2);
    const firstWait = h.runtime.wait(running.id);
    const exit = await agent2.stop(running.id, { timeoutMs: 5000 });
    assert.equal(exit.reason, 'stopped');
    assert.deepEqual(await firstWait, exit, 'both runtimes see the same exit');
    await agent2.destroy(running.id);
    await agent2.destroy(exiting.id);
    await h.network.detach(running.id);
  });

  test('a start that fails leaves nothing behind', async () => {
    const spec = h.spec({ network: false });
    spec.rootfs = '/nonexistent/rootfs';
    await assert.rejects(h.runtime.start(spec));
    h.ids.add(spec.id);
    assert.ok(!existsSync(join(h.runDir, 'runtime', 'instances', spec.id)));
    assert.ok(!existsSync(join(h.runDir, 'runtime', 'crun', spec.id)));

    const big = h.spec({ network: false, memoryBytes: totalmem() + 1024 * 1024 * 1024 });
    await assert.rejects(h.runtime.start(big), (e) => isUserError(e) && e.code === 'resources_exceed_host');
    assert.ok(!existsSync(join(h.runDir, 'runtime', 'instances', big.id)));

    const taken = await h.start({ network: false });
    await assert.rejects(h.runtime.start({ ...h.spec({ network: false }), id: taken.id }), /exists already/);
    assert.equal((await h.runtime.inspect(taken.id))?.state, 'running', 'the instance with that id is untouched');
    await h.runtime.destroy(taken.id);
    assert.ok(!isMountPoint(readFileSync('/proc/self/mountinfo', 'utf8'), join(h.runDir, 'runtime', 'instances', taken.id, 'rootfs')));
  });

  test('a missing executable is an exit, not a hang', async () => {
    const inst = await h.start({ network: false, args: ['/no/such/program'] });
    const exit = await h.runtime.wait(inst.id);
    assert.notEqual(exit.code, 0);
    assert.equal(exit.reason, 'exited');
    await h.runtime.destroy(inst.id);
  });

  test('attach is idempotent, detach removes the namespace, veth and record', async () => {
    const id = h.spec().id;
    h.ids.add(id);
    const a1 = await h.network.attach({ instanceId: id, orgId: 'org_test' });
    const a2 = await h.network.attach({ instanceId: id, orgId: 'org_test' });
    assert.deepEqual(a2, a1);
    assert.notEqual(a1.ipv6, app.attachment!.ipv6);
    assert.notEqual(a1.ipv4, app.attachment!.ipv4);
    assert.ok(existsSync(a1.netnsPath));
    assert.equal((await run(['ip', 'link', 'show', 'dev', a1.hostInterface], { allowFailure: true })).code, 0);
    assert.ok((await h.network.attachments()).some((a) => a.instanceId === id));
    await h.network.detach(id);
    await h.network.detach(id);
    assert.ok(!existsSync(a1.netnsPath));
    assert.notEqual((await run(['ip', 'link', 'show', 'dev', a1.hostInterface], { allowFailure: true })).code, 0);
    assert.ok(!(await h.network.attachments()).some((a) => a.instanceId === id));
  });

  test('br_netfilter does not see bridged frames', () => {
    for (const f of ['bridge-nf-call-iptables', 'bridge-nf-call-ip6tables', 'bridge-nf-call-arptables']) {
      const p = `/proc/sys/net/bridge/${f}`;
      if (existsSync(p)) assert.equal(readFileSync(p, 'utf8').trim(), '0', f);
    }
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function waitForLog(h: RuntimeHarness, inst: TestInstance, re: RegExp): Promise<void> {
  await waitFor(() => re.test(h.log(inst)));
}
