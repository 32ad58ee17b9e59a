/**
 * The host's WireGuard interface: the mesh between hosts and the gateway for people, on one interface.
 *
 * - The agent owns the key pair: made here and kept in a 0600 file in the agent's 0700 state directory;
 *   WireGuard reads it from there (and the full configuration from a 0600 file beside it), never from
 *   argv or a log. (Not from a pipe: Node's child stdio is a socket, which wg's fopen refuses.) The
 *   public key and the endpoint are what the agent registers with the control plane.
 * - The control plane hands the peers: other hosts, with AllowedIPs limited to their slices of the orgs
 *   they serve (so a host can only send from addresses it holds), and people, each with one /128.
 *   configure() syncs WireGuard to exactly that list and routes every allowed prefix into the tunnel.
 * - Kernel WireGuard when `ip link add … type wireguard` works; else `wireguard-go -f NAME`, started
 *   detached so an agent restart leaves the tunnel up. wireguard-go's control sockets share one folder
 *   (/var/run/wireguard), so the interface name is made unique per host (ARCHITECTURE.md §7).
 */
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isIPv6 } from 'node:net';
import { generateWireGuardKeyPair, isWireGuardKey, wireGuardPublicKey } from '../../core/index.ts';
import { run, start, type Argv } from '../../exec/index.ts';

/** WireGuardPeer is one peer as the control plane hands it. */
export interface WireGuardPeer {
  publicKey: string;
  /** endpoint is `host:port` (`[v6]:port`); absent for people, whose laptops roam. */
  endpoint?: string;
  /** allowedIPs are the CIDRs the peer may send from and that are routed to it. */
  allowedIPs: string[];
  /** keepalive seconds (hosts behind NAT); 0 or absent for none. */
  keepalive?: number;
}

export type WireGuardMode = 'auto' | 'kernel' | 'userspace';

export interface WireGuardDeviceOptions {
  /** name of the interface (≤ 15 characters; unique on the machine when userspace). */
  name: string;
  /** stateDir holds the private key (0600) and the wireguard-go pid and log. */
  stateDir: string;
  /** keyName names the private key file in stateDir (default `<name>.key`). */
  keyName?: string;
  listenPort: number;
  mode?: WireGuardMode;
  /** mtu for the tunnel: 1420 leaves room for WireGuard's 80 bytes over IPv6 on a 1500 link. */
  mtu?: number;
  wireguardGo?: string;
}

const CIDR = /^[0-9a-fA-F:.]+\/\d{1,3}$/;
const ENDPOINT = /^(\[[0-9a-fA-F:.]+\]|[0-9.]+|[a-zA-Z0-9.-]+):\d{1,5}$/;

function check(p: WireGuardPeer): void {
  if (!isWireGuardKey(p.publicKey)) throw new TypeError(`bad peer public key ${JSON.stringify(p.publicKey)}`);
  if (p.endpoint !== undefined && !ENDPOINT.test(p.endpoint)) throw new TypeError(`bad endpoint ${JSON.stringify(p.endpoint)}`);
  for (const c of p.allowedIPs) if (!CIDR.test(c)) throw new TypeError(`bad allowed IP ${JSON.stringify(c)}`);
}

/**
 * wireGuardConfig renders the `wg syncconf` text for the interface: its private key and port, and the
 * peers in a stable order.
 */
export function wireGuardConfig(privateKey: string, listenPort: number, peers: WireGuardPeer[]): string {
  const lines = ['[Interface]', `PrivateKey = ${privateKey}`, `ListenPort = ${listenPort}`];
  for (const p of [...peers].sort((a, b) => a.publicKey.localeCompare(b.publicKey))) {
    check(p);
    lines.push('', '[Peer]', `PublicKey = ${p.publicKey}`);
    if (p.endpoint) lines.push(`Endpoint = ${p.endpoint}`);
    if (p.allowedIPs.length) lines.push(`AllowedIPs = ${p.allowedIPs.join(', ')}`);
    if (p.keepalive) lines.push(`PersistentKeepalive = ${p.keepalive}`);
  }
  return lines.join('\n') + '\n';
}

/** syncconfArgv applies a full configuration file, removing peers it does not list. */
export function syncconfArgv(name: string, file: string): Argv {
  return ['wg', 'syncconf', name, file];
}

/** routeCommands routes each allowed prefix into the tunnel and removes routes no peer holds any more. */
export function routeCommands(name: string, want: string[], have: string[]): string {
  const lines: string[] = [];
  for (const c of want) lines.push(`route replace ${c} dev ${name}`);
  for (const c of have) if (!want.includes(c)) lines.push(`route del ${c} dev ${name}`);
  return lines.length ? lines.join('\n') + '\n' : '';
}

export class WireGuardDevice {
  readonly name: string;
  readonly #o: Required<WireGuardDeviceOptions>;
  #mode: 'kernel' | 'userspace' | undefined;

  constructor(options: WireGuardDeviceOptions) {
    if (!/^[a-z][a-z0-9-]{1,14}$/.test(options.name)) throw new TypeError(`interface name ${JSON.stringify(options.name)} is invalid`);
    this.#o = { mode: 'auto', mtu: 1420, wireguardGo: 'wireguard-go', keyName: `${options.name}.key`, ...options };
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(this.#o.keyName)) throw new TypeError(`key file name ${JSON.stringify(this.#o.keyName)} is invalid`);
    this.name = options.name;
  }

  get #keyFile(): string {
    return join(this.#o.stateDir, this.#o.keyName);
  }

  /** keyPair loads the host's private key, making one on first use; returns only the public key. */
  async publicKey(): Promise<string> {
    return wireGuardPublicKey(await this.#privateKey());
  }

  async #privateKey(): Promise<string> {
    await mkdir(this.#o.stateDir, { recursive: true, mode: 0o700 });
    try {
      const k = (await readFile(this.#keyFile, 'utf8')).trim();
      if (isWireGuardKey(k)) return k;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const { privateKey } = generateWireGuardKeyPair();
    await writeFile(this.#keyFile, privateKey + '\n', { mode: 0o600, flag: 'wx' });
    return privateKey;
  }

  /** mode is how the interface runs, once up() has decided. */
  get mode(): 'kernel' | 'userspace' | undefined {
    return this.#mode;
  }

  async #exists(): Promise<boolean> {
    return (await run(['ip', 'link', 'show', 'dev', this.name], { allowFailure: true })).code === 0;
  }

  /** exists says whether the interface is there (an earlier agent brought it up). */
  exists(): Promise<boolean> {
    return this.#exists();
  }

  /**
   * up makes the interface exist (kernel or wireguard-go) with the private key and port set. An
   * interface that exists already (an agent restart) is kept as it is: traffic never stops.
   */
  async up(): Promise<void> {
    await this.#privateKey();
    if (!(await this.#exists())) {
      if (this.#o.mode !== 'userspace') {
        const r = await run(['ip', 'link', 'add', 'dev', this.name, 'type', 'wireguard'], { allowFailure: true });
        if (r.code === 0) this.#mode = 'kernel';
        else if (this.#o.mode === 'kernel') throw new Error(`kernel WireGuard is not available: ${r.stderr.trim()}`);
      }
      if (!this.#mode) await this.#startUserspace();
    } else {
      this.#mode = existsSync(`/var/run/wireguard/${this.name}.sock`) ? 'userspace' : 'kernel';
    }
    await run(['wg', 'set', this.name, 'listen-port', String(this.#o.listenPort), 'private-key', this.#keyFile]);
    await run(['ip', 'link', 'set', 'dev', this.name, 'mtu', String(this.#o.mtu), 'up']);
  }

  async #startUserspace(): Promise<void> {
    await mkdir(this.#o.stateDir, { recursive: true, mode: 0o700 });
    const log = openSync(join(this.#o.stateDir, `${this.name}.log`), 'a', 0o600);
    try {
      // Detached in its own session: an agent that exits or restarts leaves the tunnel running.
      const child = start([this.#o.wireguardGo, '-f', this.name], { detached: true, stdio: ['ignore', log, log], env: { ...process.env, LOG_LEVEL: 'error' } });
      child.unref();
      if (child.pid) await writeFile(join(this.#o.stateDir, `${this.name}.pid`), String(child.pid), { mode: 0o600 });
      const deadline = Date.now() + 5000;
      while (!(existsSync(`/var/run/wireguard/${this.name}.sock`) && (await this.#exists()))) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`wireguard-go did not bring ${this.name} up (see ${join(this.#o.stateDir, `${this.name}.log`)})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      closeSync(log);
    }
    this.#mode = 'userspace';
  }

  /** configure makes the interface's peers exactly these and routes their allowed prefixes into it. */
  async configure(peers: WireGuardPeer[]): Promise<void> {
    const privateKey = await this.#privateKey();
    const file = join(this.#o.stateDir, `${this.name}.conf`);
    await writeFile(`${file}.tmp`, wireGuardConfig(privateKey, this.#o.listenPort, peers), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
    await run(syncconfArgv(this.name, file));
    const want = [...new Set(peers.flatMap((p) => p.allowedIPs))].filter((c) => isIPv6(c.split('/')[0]!));
    const routes = JSON.parse((await run(['ip', '-json', '-6', 'route', 'show', 'dev', this.name])).stdout || '[]') as { dst: string; protocol?: string }[];
    const have = routes.filter((r) => r.protocol !== 'kernel').map((r) => (r.dst.includes('/') ? r.dst : `${r.dst}/128`));
    const batch = routeCommands(this.name, want, have);
    if (batch) await run(['ip', '-6', '-batch', '-'], { input: batch });
  }

  /** down removes the interface and stops wireguard-go (by its recorded pid). */
  async down(): Promise<void> {
    await run(['ip', 'link', 'delete', 'dev', this.name], { allowFailure: true });
    const pidFile = join(this.#o.stateDir, `${this.name}.pid`);
    const pid = await wireguardGoPid(pidFile, this.name);
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // Already gone: deleting the interface ends it.
      }
    }
    await rm(pidFile, { force: true });
    await rm(`/var/run/wireguard/${this.name}.sock`, { force: true });
  }
}

/**
 * wireguardGoPid reads a wireguard-go pid file and returns the pid only while that process is still
 * `wireguard-go … NAME`: pids are reused (pid_max can be as low as 32768), so a pid from a file is
 * never signalled on trust. Undefined: no file, or the process is gone.
 */
export async function wireguardGoPid(pidFile: string, name: string): Promise<number | undefined> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  return argv[0]?.endsWith('wireguard-go') && argv.includes(name) ? pid : undefined;
}
