// A harness for tests that run real crun instances on real network namespaces. Everything it makes is
// named with one random prefix (`wt` + 4 hex): its tmpfs (/run/<prefix>), cgroups (/<prefix>/ins_…),
// bridge, veths and namespaces. cleanup() destroys what the test tracked and then sweeps anything else
// carrying the prefix, so a failed or interrupted test leaves nothing behind.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, statSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId } from '../../src/core/index.ts';
import { processExists as alive, run } from '../../src/exec/index.ts';
import { CrunRuntime, detectCgroupLayout, type InstanceHandle, type InstanceSpec } from '../../src/agent/runtime/index.ts';
import { BridgeNetwork, type Attachment, type OrgResolver } from '../../src/agent/network/index.ts';
import { mountsUnder } from '../../src/agent/runtime/crun/cgroups.ts';
import { ensureTestRootfs, TEST_APP_ARGS } from '../fixtures/rootfs.ts';

/** canRunContainers says why real-container tests cannot run here, or false when they can. */
export function cannotRunContainers(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (CI runs as root)';
  for (const bin of ['/usr/bin/crun', '/usr/bin/tini-static']) if (!existsSync(bin)) return `${bin} is missing: run scripts/bootstrap --test`;
  return false;
}

export interface TestInstance {
  id: string;
  handle: InstanceHandle;
  attachment: Attachment | undefined;
  logFile: string;
  spec: InstanceSpec;
}

export interface InstanceOptions {
  args?: string[];
  env?: Record<string, string>;
  uid?: number;
  memoryBytes?: number;
  cpus?: number;
  pids?: number;
  network?: boolean;
}

export class RuntimeHarness {
  readonly prefix = `wt${randomBytes(2).toString('hex')}`;
  readonly runDir = `/run/${this.prefix}`;
  readonly cgroupParent = `/${this.prefix}`;
  readonly runtime: CrunRuntime;
  readonly network: BridgeNetwork;
  rootfs = '';
  logDir = '';
  readonly ids = new Set<string>();
  /** subnet is N in this harness's 10.N.0.0/16, claimed for its lifetime (claimSubnet). */
  readonly subnet: number;

  /** options.resolver makes the network serve each org's internal DNS (the caller closes it). */
  constructor(options: { resolver?: OrgResolver } = {}) {
    this.runtime = this.newRuntime();
    const subnet = claimSubnet();
    this.subnet = subnet;
    // Every name carries the prefix, the nftables tables included (`inet <prefix>`, `bridge <prefix>`),
    // so tests running side by side never touch each other's rules.
    this.network = new BridgeNetwork({
      stateDir: join(this.runDir, 'network'),
      bridgePrefix: `${this.prefix}b`,
      // The default prefix seed, as the control plane's: an org's stored prefix (ward orgs network) is the
      // one its instances were attached under (org ids are random, so tests side by side never share one).
      ipv4Subnet: `10.${subnet}.0.0/16`,
      netnsPrefix: `${this.prefix}-`,
      linkPrefix: `${this.prefix}v`,
      tunnelPrefix: `${this.prefix}w`,
      table: this.prefix,
      // Nothing here leaves the host: leave the machine's forwarding settings alone.
      forwarding: false,
      ...(options.resolver ? { resolver: options.resolver } : {}),
    });
  }

  /** newRuntime makes another CrunRuntime over the same state, as an agent restart would. */
  newRuntime(): CrunRuntime {
    return new CrunRuntime({ runDir: this.runDir, cgroupParent: this.cgroupParent });
  }

  async setUp(): Promise<void> {
    this.rootfs = await ensureTestRootfs();
    this.logDir = await mkdtemp(join(tmpdir(), `${this.prefix}-logs-`));
  }

  spec(o: InstanceOptions = {}, attachment?: Attachment, id = newId('instance')): InstanceSpec {
    const logFile = join(this.logDir, `${id}.log`);
    const uid = o.uid ?? 1000;
    return {
      id,
      rootfs: this.rootfs,
      process: { args: o.args ?? [...TEST_APP_ARGS], env: { PORT: '8080', ...(o.env ?? {}) }, cwd: '/', user: { uid, gid: uid } },
      resources: { memoryBytes: o.memoryBytes ?? 256 * 1024 * 1024, cpus: o.cpus ?? 1, pids: o.pids ?? 512 },
      mounts: [],
      stdout: { file: logFile },
      stderr: { file: logFile },
      ...(attachment ? { network: { netnsPath: attachment.netnsPath, addresses: attachment.addresses } } : {}),
      labels: { test: this.prefix },
    };
  }

  /** start attaches (unless network: false) and starts an instance, tracking it for cleanup. */
  async start(o: InstanceOptions = {}): Promise<TestInstance> {
    const id = newId('instance');
    this.ids.add(id);
    const attachment = o.network === false ? undefined : await this.network.attach({ instanceId: id, orgId: 'org_test' });
    const spec = this.spec(o, attachment, id);
    const logFile = join(this.logDir, `${id}.log`);
    const handle = await this.runtime.start(spec);
    return { id, handle, attachment, logFile, spec };
  }

  log(instance: TestInstance): string {
    try {
      return readFileSync(instance.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** appPid is the app's host pid: the only child of the instance's init (tini), once it has forked it. */
  async appPid(instance: TestInstance): Promise<number> {
    const init = instance.handle.pid;
    const deadline = Date.now() + 5000;
    for (;;) {
      const children = readFileSync(`/proc/${init}/task/${init}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      if (children.length === 1) return children[0]!;
      if (Date.now() > deadline) throw new Error(`expected one child of init ${init}, found ${children.join(',')}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async cleanup(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (e) {
        errors.push(e);
      }
    };
    for (const id of this.ids) {
      await attempt(() => this.runtime.destroy(id));
      await attempt(() => this.network.detach(id));
    }
    await attempt(() => this.network.close());
    // The sweep: whatever carries the prefix, tracked or not.
    const crunRoot = join(this.runDir, 'runtime', 'crun');
    if (existsSync(crunRoot)) {
      for (const id of readdirSync(crunRoot)) await attempt(() => run(['crun', '--root', crunRoot, 'delete', '--force', id], { allowFailure: true }));
    }
    for (const mp of mountsUnder(readFileSync('/proc/self/mountinfo', 'utf8'), this.runDir)) {
      await attempt(() => run(['umount', '--lazy', mp]));
    }
    const netns = await run(['ip', 'netns', 'list'], { allowFailure: true });
    for (const line of netns.stdout.split('\n')) {
      const name = line.split(' ')[0];
      if (name?.startsWith(`${this.prefix}-`)) await attempt(() => run(['ip', 'netns', 'delete', name]));
    }
    const links = JSON.parse((await run(['ip', '-json', 'link', 'show'])).stdout || '[]') as { ifname: string }[];
    for (const l of links) if (l.ifname.startsWith(this.prefix)) await attempt(() => run(['ip', 'link', 'delete', 'dev', l.ifname], { allowFailure: true }));
    const layout = detectCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
    const roots = layout.mode === 'v2' ? [layout.root] : layout.hierarchies;
    for (const root of roots) removeCgroupTree(join(root, this.cgroupParent));
    if (this.logDir) await attempt(() => rm(this.logDir, { recursive: true, force: true }));
    await attempt(() => rm(this.runDir, { recursive: true, force: true }));
    releaseSubnet(this.subnet);
    if (errors.length) throw new AggregateError(errors, `cleanup of ${this.prefix} had ${errors.length} error(s)`);
  }
}

// Harnesses in test files running side by side each need their own 10.N.0.0/16: every org's first /24 is
// 10.N.1.0/24, so two harnesses on one N route each other's instances to the wrong bridge. A harness claims
// N by creating /run/ward-test-subnets/N exclusively (holding its pid); a claim whose process is gone is
// taken over. N is never 89 (Ward's default, used by `ward up`) nor one the host already routes.
const CLAIMS = '/run/ward-test-subnets';

function claimSubnet(): number {
  mkdirSync(CLAIMS, { recursive: true });
  const routed = routedSecondOctets();
  const start = randomBytes(1)[0]! % 190;
  for (let i = 0; i < 190; i++) {
    const n = 64 + ((start + i) % 190);
    if (n === 89 || routed.has(n)) continue;
    const file = join(CLAIMS, String(n));
    if (existsSync(file)) {
      const pid = Number(readFileSync(file, 'utf8'));
      if (pid && alive(pid)) continue;
      try {
        unlinkSync(file);
      } catch {
        continue;
      }
    }
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return n;
    } catch {
      // Another harness took it between the check and the create: try the next.
    }
  }
  throw new Error(`no free 10.N.0.0/16 for a test harness (claims in ${CLAIMS})`);
}

function releaseSubnet(n: number): void {
  const file = join(CLAIMS, String(n));
  try {
    if (Number(readFileSync(file, 'utf8')) === process.pid) unlinkSync(file);
  } catch {
    // Already gone.
  }
}

/** routedSecondOctets lists N for every 10.N.x.x destination in the host's IPv4 routes (/proc/net/route). */
function routedSecondOctets(): Set<number> {
  const out = new Set<number>();
  for (const line of readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
    const dest = line.split('\t')[1];
    if (!dest || dest.length !== 8) continue;
    // Little-endian hex: the first octet is the last byte.
    const b = Buffer.from(dest, 'hex');
    if (b[3] === 10) out.add(b[2]!);
  }
  return out;
}

/** removeCgroupTree removes a cgroup directory and its children (cgroup dirs are removed with rmdir, leaves first). */
function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) removeCgroupTree(p);
  }
  for (let i = 0; i < 20; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EBUSY') throw e;
      // Processes are still leaving it.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}

/** get fetches a URL with a timeout and returns status and body. */
export async function get(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: r.status, body: await r.text() };
}

/** urlFor makes an http URL for an address (IPv6 in brackets). */
export function urlFor(address: string, path = '/', port = 8080): string {
  return address.includes(':') ? `http://[${address}]:${port}${path}` : `http://${address}:${port}${path}`;
}

/** waitForHttp polls until the URL answers 200, or throws after timeoutMs. */
export async function waitForHttp(url: string, timeoutMs = 10_000): Promise<number> {
  const started = performance.now();
  let last: unknown;
  while (performance.now() - started < timeoutMs) {
    try {
      const r = await get(url, 1000);
      if (r.status === 200) return performance.now() - started;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms: ${String(last)}`);
}
