/**
 * MeshSync is the agent's side of the WireGuard mesh and the people's gateway (docs/networking.md):
 *
 * - register(): the host's public key (the private key is made and kept on the host by WireGuardDevice
 *   and never leaves it) and endpoint go to the control plane, which answers the host's slice index;
 *   the network takes it before it is restored, so every address of this host lies in that slice.
 * - start(): syncs, then again every interval and on every nudge (desired state changed). The WireGuard
 *   interface (kernel WireGuard when the kernel has it, wireguard-go otherwise) comes up with the first
 *   map that has a peer: a host alone, with no people, runs no tunnel and no wireguard-go.
 * - sync(): asks the control plane for the host's network map and makes the host match it: the orgs
 *   the host serves for people (their bridge, resolver and firewall pairs), the interface's peers,
 *   exactly the map's (other hosts with AllowedIPs limited to their slices, people with their one
 *   /128; `wg syncconf` removes everyone else, so a removed person's key stops working at once), routes
 *   for every allowed prefix, and the other hosts' instances in the resolver.
 *
 * Syncs never overlap; a nudge during one makes one more. A control plane that is away leaves the
 * tunnel as it is (instances keep talking to each other) until the next sync succeeds. close() stops
 * syncing and leaves the interface up: an agent restart never interrupts the mesh.
 */
import type { MeshLink, NetworkMap } from './mesh.ts';
import type { DnsRecord } from './dns/server.ts';
import type { OrgNetworkOptions } from './types.ts';

/** MeshDevice is the part of WireGuardDevice MeshSync uses. */
export interface MeshDevice {
  publicKey(): Promise<string>;
  exists(): Promise<boolean>;
  up(): Promise<void>;
  configure(peers: NetworkMap['peers']): Promise<void>;
}

/** MeshNetwork is the part of BridgeNetwork MeshSync uses. */
export interface MeshNetwork {
  setHostIndex(index: number): Promise<void>;
  ensure(orgId: string, options?: OrgNetworkOptions): Promise<void>;
}

export interface MeshSyncOptions {
  link: MeshLink;
  device: MeshDevice;
  network: MeshNetwork;
  /** endpoint is how other hosts and people reach this host's WireGuard port (`host:port`). */
  endpoint: string;
  /** resolver hears the other hosts' instances (InternalResolver.setRemoteRecords). */
  resolver?: { setRemoteRecords(records: DnsRecord[]): void };
  /** intervalMs: how often the map is read when nothing nudges; default 5 s. */
  intervalMs?: number;
  logger?: MeshLogger;
}

/** MeshLogger is the slice of the agent's logger MeshSync writes to (no key ever reaches it). */
export interface MeshLogger {
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
}

export class MeshSync {
  readonly #o: MeshSyncOptions;
  #hostId = '';
  #index: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #up = false;
  /** #applied is the last map applied (JSON): an unchanged map costs one read and nothing else. */
  #applied = '';

  constructor(options: MeshSyncOptions) {
    this.#o = options;
  }

  /** index is the slice index the control plane assigned, once registered. */
  get index(): number | undefined {
    return this.#index;
  }

  /**
   * register sends the host's public key and endpoint and gives the network the slice index the
   * control plane answers. It must succeed before the network is restored on a new host; an error
   * (the control plane is away) is the caller's to handle.
   */
  async register(hostId: string): Promise<number> {
    this.#hostId = hostId;
    const { index } = await this.#o.link.registerMesh(hostId, { publicKey: await this.#o.device.publicKey(), endpoint: this.#o.endpoint });
    await this.#o.network.setHostIndex(index);
    this.#index = index;
    return index;
  }

  /** start syncs once (bringing the interface up when there are peers) and keeps syncing; register() first. */
  async start(): Promise<void> {
    if (this.#index === undefined) throw new Error('MeshSync.start before register');
    // The timer first: a first sync that fails (the control plane is away) is tried again.
    this.#timer = setInterval(() => this.nudge(), this.#o.intervalMs ?? 5000);
    this.#timer.unref();
    await this.sync();
  }

  /** nudge asks for a sync soon (hosts, instances or people may have changed). */
  nudge(): void {
    if (this.#closed || this.#index === undefined) return;
    void this.sync().catch((e: unknown) => this.#o.logger?.warn({ err: e }, 'mesh sync failed; keeping the tunnel as it is'));
  }

  /** sync applies the control plane's map now (serialized: a call during a sync makes one more). */
  sync(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          await this.#apply(await this.#o.link.networkMap(this.#hostId));
        } while (this.#again && !this.#closed);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  async #apply(map: NetworkMap): Promise<void> {
    if (this.#closed) return;
    if (map.hostIndex !== this.#index) throw new Error(`the control plane gives this host slice index ${map.hostIndex}, registered as ${this.#index}`);
    const key = JSON.stringify(map);
    if (key === this.#applied) return;
    // Orgs first: a person's packets may arrive once their peer is configured, and the org's firewall
    // pairs and resolver must be there to answer them.
    for (const o of map.orgs) await this.#o.network.ensure(o.orgId, { ipv6Prefix: o.prefix6, egress: o.egress });
    // An interface an earlier agent left is synced too, to remove peers that are gone.
    if (!this.#up && (map.peers.length || (await this.#o.device.exists()))) {
      await this.#o.device.up();
      this.#up = true;
    }
    if (this.#up) await this.#o.device.configure(map.peers);
    this.#o.resolver?.setRemoteRecords(map.remoteRecords);
    this.#applied = key;
    this.#o.logger?.info({ peers: map.peers.length, orgs: map.orgs.length }, 'mesh synced');
  }

  /** close stops syncing; the interface and its peers stay as they are. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#running?.catch(() => {});
  }
}
