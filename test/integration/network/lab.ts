// NetLab builds the network tests' world out of namespaces it makes itself: hosts (each running a
// host-agent.ts process, as `ward agent` would), instances attached by those agents (each running
// peer.ts), an "outside" namespace for egress, laptops. Everything is named with one random prefix
// (`wn` + 4 hex) and tracked; cleanup() kills the processes it started (by pid), then sweeps every
// namespace, link and WireGuard socket carrying the prefix, so a failed test leaves nothing behind.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { run, start, type Argv } from '../../../src/exec/index.ts';
import type { Attachment, BridgeNetworkOptions, Upstream } from '../../../src/agent/network/index.ts';
import { wireguardGoPid } from '../../../src/agent/network/wireguard.ts';

const NODE = process.execPath;
const HERE = new URL('.', import.meta.url).pathname;

/** cannotRunNetworkTests says why these tests cannot run here, or false. */
export function cannotRunNetworkTests(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (CI runs as root)';
  for (const bin of ['/usr/sbin/nft', '/usr/bin/wg', '/usr/bin/wireguard-go', '/usr/bin/python3']) if (!existsSync(bin)) return `${bin} is missing: run scripts/bootstrap --test`;
  return false;
}

/** Rpc drives a child that speaks JSON lines ({id, cmd, args} → {id, ok, result|error}). */
export class Rpc {
  readonly child: ChildProcess;
  readonly name: string;
  #next = 1;
  readonly #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly ready: Promise<void>;
  stderr = '';

  constructor(name: string, argv: Argv, env: NodeJS.ProcessEnv = {}) {
    this.name = name;
    this.child = start(argv, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise((r, j) => {
      readyResolve = r;
      readyReject = j;
    });
    this.child.on('exit', (code, signal) => {
      const e = new Error(`${name} exited (${signal ?? code}): ${this.stderr}`);
      readyReject(e);
      for (const w of this.#waiting.values()) w.reject(e);
      this.#waiting.clear();
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let m: { id: number; ok: boolean; result?: unknown; error?: string };
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      if (m.id === 0) return readyResolve();
      const w = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      if (!w) return;
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(`${name}: ${m.error}`));
    });
  }

  call<T = unknown>(cmd: string, args: unknown = {}): Promise<T> {
    const id = this.#next++;
    // A child that has ended answers nothing: fail at once rather than wait for the suite's timeout.
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.reject(new Error(`${this.name} has exited: ${this.stderr}`));
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(JSON.stringify({ id, cmd, args }) + '\n');
    });
  }

  /** stop ends the child: closing stdin asks it to exit; SIGKILL (by pid) if it does not. */
  async stop(signal?: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    if (signal) this.child.kill(signal);
    else this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}

/** Host is a namespace standing in for a host, with its agent. */
export interface Host {
  name: string;
  netns: string;
  index: number;
  stateDir: string;
  agent: Rpc;
  options: object;
}

/** Instance is an attachment with peer.ts running in its namespace. */
export interface Instance {
  id: string;
  orgId: string;
  host: Host;
  attachment: Attachment;
  peer: Rpc;
}

export const PEER_PORT = 7000;

export class NetLab {
  readonly prefix = `wn${randomBytes(2).toString('hex')}`;
  readonly procs: Rpc[] = [];
  /** children are processes the lab started outside an Rpc (killed at cleanup while they have not exited). */
  readonly children: ChildProcess[] = [];
  dir = '';

  async setUp(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), `${this.prefix}-`));
  }

  ns(name: string): string {
    return `${this.prefix}-${name}`;
  }

  /** netns makes a namespace with loopback up. */
  async netns(name: string): Promise<string> {
    const ns = this.ns(name);
    await run(['ip', 'netns', 'add', ns]);
    await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** link joins two namespaces with a veth pair and addresses on each end. */
  async link(a: string, aAddrs: string[], b: string, bAddrs: string[], tag: string): Promise<void> {
    const an = `${this.prefix}${tag}a`;
    const bn = `${this.prefix}${tag}b`;
    await run(['ip', 'link', 'add', an, 'netns', a, 'type', 'veth', 'peer', 'name', bn, 'netns', b]);
    for (const [ns, dev, addrs] of [[a, an, aAddrs], [b, bn, bAddrs]] as const) {
      for (const addr of addrs) await run(['ip', '-n', ns, 'addr', 'add', addr, 'dev', dev, ...(addr.includes(':') ? ['nodad'] : [])]);
      await run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
  }

  /** in runs argv inside a namespace (nsenter: the namespace only, the mount namespace stays the host's). */
  inNs(netnsPath: string, argv: string[]): Argv {
    return ['nsenter', `--net=${netnsPath}`, '--', ...argv] as unknown as Argv;
  }

  spawn(name: string, argv: Argv, env: NodeJS.ProcessEnv = {}): Rpc {
    const r = new Rpc(name, argv, env);
    this.procs.push(r);
    return r;
  }

  /**
   * hostOptions are a host's BridgeNetwork options, every name carrying the lab's prefix. Index 0: the
   * control plane assigns it (mesh hosts), and org prefixes are the control plane's (default seed).
   */
  hostOptions(name: string, index: number): BridgeNetworkOptions {
    return {
      stateDir: join(this.dir, name, 'network'),
      ...(index ? { hostIndex: index, prefixSeed: this.prefix } : {}),
      bridgePrefix: `${this.prefix}b`,
      linkPrefix: `${this.prefix}v`,
      tunnelPrefix: `${this.prefix}w`,
      netnsPrefix: `${this.prefix}-i-`,
      table: 'ward',
    };
  }

  async startAgent(host: Omit<Host, 'agent'>): Promise<Rpc> {
    const agent = this.spawn(`agent ${host.name}`, this.inNs(`/run/netns/${host.netns}`, [NODE, join(HERE, 'host-agent.ts'), JSON.stringify(host.options)]));
    await agent.ready;
    return agent;
  }

  async host(name: string, index: number, o: { upstreams?: Upstream[]; wireguardPort?: number; mesh?: { dataDir: string; hostId: string; hostName: string; endpoint: string }; beforeAgent?: (netns: string) => Promise<void> } = {}): Promise<Host> {
    const netns = await this.netns(name);
    const stateDir = join(this.dir, name);
    const options = {
      network: this.hostOptions(name, index),
      upstreams: o.upstreams ?? [],
      ...(o.wireguardPort ? { wireguard: { name: `${this.prefix}w${name}`.slice(0, 15), stateDir: join(stateDir, 'wireguard'), listenPort: o.wireguardPort } } : {}),
      ...(o.mesh ? { mesh: o.mesh } : {}),
    };
    await o.beforeAgent?.(netns);
    const h = { name, netns, index, stateDir, options };
    return { ...h, agent: await this.startAgent(h) };
  }

  /** restartAgent kills a host's agent (SIGKILL: no goodbye) and starts a new one over the same state. */
  async restartAgent(h: Host): Promise<void> {
    await h.agent.stop('SIGKILL');
    h.agent = await this.startAgent(h);
  }

  async instance(host: Host, orgId: string, id: string, env: NodeJS.ProcessEnv = {}): Promise<Instance> {
    const attachment = await host.agent.call<Attachment>('attach', { instanceId: id, orgId });
    const peer = this.spawn(`peer ${id}`, this.inNs(attachment.netnsPath, [NODE, join(HERE, 'peer.ts'), String(PEER_PORT), id]), env);
    await peer.ready;
    return { id, orgId, host, attachment, peer };
  }

  /** peerFor runs peer.ts in an attachment's namespace (an instance attached by the agent's assignments). */
  async peerFor(host: Host, attachment: Attachment): Promise<Instance> {
    const peer = this.spawn(`peer ${attachment.instanceId}`, this.inNs(attachment.netnsPath, [NODE, join(HERE, 'peer.ts'), String(PEER_PORT), attachment.instanceId]));
    await peer.ready;
    return { id: attachment.instanceId, orgId: attachment.orgId, host, attachment, peer };
  }

  /** peerIn runs peer.ts in a namespace of the lab's own (outside, laptop). */
  async peerIn(netns: string, name: string, env: NodeJS.ProcessEnv = {}): Promise<Rpc> {
    const peer = this.spawn(`peer ${name}`, this.inNs(`/run/netns/${netns}`, [NODE, join(HERE, 'peer.ts'), String(PEER_PORT), name]), env);
    await peer.ready;
    return peer;
  }

  async cleanup(): Promise<void> {
    const errors: unknown[] = [];
    for (const p of this.procs) await p.stop().catch((e) => errors.push(e));
    // Through the ChildProcess, never a bare pid: once a child is reaped its pid may be anyone's.
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    // wireguard-go processes the agents started: their pid files are in the hosts' state dirs.
    if (this.dir && existsSync(this.dir)) {
      for (const host of readdirSync(this.dir)) {
        const wgDir = join(this.dir, host, 'wireguard');
        if (!existsSync(wgDir)) continue;
        for (const f of readdirSync(wgDir)) {
          if (!f.endsWith('.pid')) continue;
          const pid = await wireguardGoPid(join(wgDir, f), f.slice(0, -'.pid'.length));
          try {
            if (pid !== undefined) process.kill(pid, 'SIGKILL');
          } catch {
            // Ended with its interface.
          }
        }
      }
    }
    const netns = await run(['ip', 'netns', 'list'], { allowFailure: true });
    for (const line of netns.stdout.split('\n')) {
      const name = line.split(' ')[0];
      if (name?.startsWith(`${this.prefix}-`)) await run(['ip', 'netns', 'delete', name], { allowFailure: true }).catch((e) => errors.push(e));
    }
    const links = JSON.parse((await run(['ip', '-json', 'link', 'show'])).stdout || '[]') as { ifname: string }[];
    for (const l of links) if (l.ifname.startsWith(this.prefix)) await run(['ip', 'link', 'delete', 'dev', l.ifname], { allowFailure: true });
    if (existsSync('/var/run/wireguard')) {
      for (const f of readdirSync('/var/run/wireguard')) if (f.startsWith(this.prefix)) await rm(join('/var/run/wireguard', f), { force: true });
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    if (errors.length) throw new AggregateError(errors, `cleanup of ${this.prefix} had ${errors.length} error(s)`);
  }

  /** leftovers lists whatever with the prefix is still on the machine (for the after-hook's assertion). */
  async leftovers(): Promise<string[]> {
    const out: string[] = [];
    const netns = (await run(['ip', 'netns', 'list'])).stdout;
    if (netns.includes(this.prefix)) out.push('netns');
    const links = (await run(['ip', '-o', 'link', 'show'])).stdout;
    if (links.includes(this.prefix)) out.push('links');
    if (existsSync('/var/run/wireguard') && readdirSync('/var/run/wireguard').some((f) => f.startsWith(this.prefix))) out.push('wireguard sockets');
    const ps = (await run(['ps', '-eo', 'args'])).stdout;
    if (ps.split('\n').some((l) => l.includes(this.prefix) && !l.includes('ps -eo'))) out.push('processes');
    return out;
  }
}

/** Probe is one connection attempt a peer makes: TCP connect, or a UDP datagram it expects echoed. */
export type Probe = { proto: 'tcp' | 'udp'; host: string; port: number };

/** Case is one expected outcome of the reachability matrix: from `src` to host:port, allowed or not. */
export interface Case {
  from: string;
  src: Rpc;
  to: string;
  host: string;
  port?: number;
  allowed: boolean;
}

/**
 * matrix probes every case over TCP and UDP (each source's probes in parallel) and lists every wrong
 * outcome, both ways: what should be blocked and got through, and what should get through and did not.
 */
export async function matrix(cases: Case[], timeoutMs = 700): Promise<string[]> {
  const bySource = new Map<Rpc, { c: Case; p: Probe }[]>();
  for (const c of cases) {
    for (const proto of ['tcp', 'udp'] as const) {
      const list = bySource.get(c.src) ?? [];
      list.push({ c, p: { proto, host: c.host, port: c.port ?? PEER_PORT } });
      bySource.set(c.src, list);
    }
  }
  const wrong: string[] = [];
  await Promise.all(
    [...bySource].map(async ([src, list]) => {
      const results = await src.call<boolean[]>('probe', { probes: list.map((x) => x.p), timeoutMs });
      list.forEach(({ c, p }, i) => {
        if (results[i] !== c.allowed) wrong.push(`${c.from} → ${c.to} (${p.proto} ${p.host} ${p.port}): expected ${c.allowed ? 'allowed' : 'blocked'}, was ${results[i] ? 'allowed' : 'blocked'}`);
      });
    }),
  );
  return wrong.sort();
}
