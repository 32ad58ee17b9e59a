/**
 * BridgeNetwork is the one-host OrgNetwork: one Linux bridge on the host, every instance in a network
 * namespace of its own, plugged into the bridge by a veth pair, with an IPv6 ULA address and a private
 * IPv4 address. The host holds the gateway addresses on the bridge and so reaches every instance.
 *
 * It does not yet isolate orgs from one another or stop spoofing (issue "Private networking" adds
 * per-org bridges and prefixes and nftables rules behind the same interface), and instances have no
 * egress: nothing forwards or masquerades their traffic beyond the host.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isId } from '../../core/ids.ts';
import { run } from '../../exec/index.ts';
import {
  gateway4,
  gateway6,
  hostInterfaceName,
  instanceAddress4,
  instanceAddress6,
  parsePrefix6,
  parseSubnet4,
  type Prefix6,
  type Subnet4,
} from './addresses.ts';
import { BRIDGE_NETFILTER_SYSCTLS, attachCommands, bridgeCommands, linkDeleteArgv, linkShowArgv, netnsDeleteArgv, type Command } from './commands.ts';
import type { Attachment, InstanceRef, OrgNetwork } from './types.ts';

/** DEFAULT_IPV6_PREFIX is the one-host default; installations should set their own random ULA /48's subnet. */
export const DEFAULT_IPV6_PREFIX = 'fd77:6172:6400::/64';
export const DEFAULT_IPV4_SUBNET = '10.89.0.0/16';
export const DEFAULT_BRIDGE = 'ward0';
export const DEFAULT_NETNS_PREFIX = 'ward-';
export const DEFAULT_LINK_PREFIX = 'wv';

export interface BridgeNetworkOptions {
  /** stateDir keeps one record per attachment (ideally on tmpfs: namespaces end with the boot). */
  stateDir: string;
  bridge?: string;
  /** ipv6Prefix is the instances' ULA /64 (DEFAULT_IPV6_PREFIX). */
  ipv6Prefix?: string;
  /** ipv4Subnet is the instances' private IPv4 network (DEFAULT_IPV4_SUBNET). */
  ipv4Subnet?: string;
  /** netnsPrefix starts every namespace name (`ward-ins_…`). */
  netnsPrefix?: string;
  /** linkPrefix starts every host-side veth name (2–7 characters; the rest is a hash of the instance id). */
  linkPrefix?: string;
  /** disableBridgeNetfilter turns br_netfilter's iptables hooks off for bridged frames (default true). */
  disableBridgeNetfilter?: boolean;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

async function runAll(commands: Command[]): Promise<void> {
  for (const c of commands) await run(c.argv, c.input === undefined ? {} : { input: c.input });
}

export class BridgeNetwork implements OrgNetwork {
  readonly bridge: string;
  readonly prefix6: Prefix6;
  readonly subnet4: Subnet4;
  readonly #o: Required<BridgeNetworkOptions>;
  #lock: Promise<unknown> = Promise.resolve();
  #ensured: Promise<void> | undefined;

  constructor(options: BridgeNetworkOptions) {
    this.#o = {
      bridge: DEFAULT_BRIDGE,
      ipv6Prefix: DEFAULT_IPV6_PREFIX,
      ipv4Subnet: DEFAULT_IPV4_SUBNET,
      netnsPrefix: DEFAULT_NETNS_PREFIX,
      linkPrefix: DEFAULT_LINK_PREFIX,
      disableBridgeNetfilter: true,
      ...options,
    };
    if (!/^[a-z][a-z0-9-]{0,14}$/.test(this.#o.bridge)) throw new TypeError(`bridge name ${JSON.stringify(this.#o.bridge)} is not a valid interface name`);
    if (!NAME_RE.test(this.#o.netnsPrefix)) throw new TypeError(`netns prefix ${JSON.stringify(this.#o.netnsPrefix)} is invalid`);
    hostInterfaceName(this.#o.linkPrefix, 'check');
    this.bridge = this.#o.bridge;
    this.prefix6 = parsePrefix6(this.#o.ipv6Prefix);
    this.subnet4 = parseSubnet4(this.#o.ipv4Subnet);
  }

  /** gateways are the host's addresses on the bridge. */
  get gateways(): { ipv6: string; ipv4: string } {
    return { ipv6: gateway6(this.prefix6), ipv4: gateway4(this.subnet4) };
  }

  /** #serial runs fn after every earlier serialized call: allocation reads and writes records atomically. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#lock.then(fn, fn);
    this.#lock = next.catch(() => {});
    return next;
  }

  ensure(_orgId: string): Promise<void> {
    // One host, one bridge for every org today: ensure's work does not depend on the org yet.
    this.#ensured ??= this.#serial(() => this.#ensureBridge()).catch((e) => {
      this.#ensured = undefined;
      throw e;
    });
    return this.#ensured;
  }

  async #ensureBridge(): Promise<void> {
    await mkdir(this.#o.stateDir, { recursive: true, mode: 0o700 });
    const exists = (await run(linkShowArgv(this.bridge), { allowFailure: true })).code === 0;
    await runAll(
      bridgeCommands({
        bridge: this.bridge,
        exists,
        gateway6: gateway6(this.prefix6),
        prefix6Length: this.prefix6.length,
        gateway4: gateway4(this.subnet4),
        prefix4Length: this.subnet4.length,
      }),
    );
    if (this.#o.disableBridgeNetfilter) {
      for (const f of BRIDGE_NETFILTER_SYSCTLS) if (existsSync(f)) await writeFile(f, '0\n');
    }
  }

  #recordPath(instanceId: string): string {
    return join(this.#o.stateDir, `${instanceId}.json`);
  }

  async #read(instanceId: string): Promise<Attachment | undefined> {
    try {
      return JSON.parse(await readFile(this.#recordPath(instanceId), 'utf8')) as Attachment;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async attachments(): Promise<Attachment[]> {
    let names: string[];
    try {
      names = await readdir(this.#o.stateDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: Attachment[] = [];
    for (const n of names.sort()) {
      if (!n.endsWith('.json')) continue;
      const a = await this.#read(n.slice(0, -'.json'.length));
      // A record whose namespace is gone (a reboot, a half-made attach) describes nothing attached.
      if (a && existsSync(a.netnsPath)) out.push(a);
    }
    return out;
  }

  async attach(ref: InstanceRef): Promise<Attachment> {
    if (!isId(ref.instanceId, 'instance')) throw new TypeError(`instance id ${JSON.stringify(ref.instanceId)} is not an ins_ id`);
    await this.ensure(ref.orgId);
    return this.#serial(async () => {
      const existing = await this.#read(ref.instanceId);
      if (existing && existsSync(existing.netnsPath)) return existing;
      // A record without its namespace (or the reverse) is a half-made attach: start it over.
      await this.#teardown(ref.instanceId);
      const used4 = new Set<string>();
      const used6 = new Set<string>();
      for (const a of await this.attachments()) {
        used4.add(a.ipv4);
        used6.add(a.ipv6);
      }
      let ipv6 = instanceAddress6(this.prefix6, ref.instanceId);
      for (let attempt = 1; used6.has(ipv6); attempt++) ipv6 = instanceAddress6(this.prefix6, ref.instanceId, attempt);
      const ipv4 = instanceAddress4(this.subnet4, ref.instanceId, used4);
      const netnsName = `${this.#o.netnsPrefix}${ref.instanceId}`;
      const attachment: Attachment = {
        instanceId: ref.instanceId,
        orgId: ref.orgId,
        netnsName,
        netnsPath: `/run/netns/${netnsName}`,
        hostInterface: hostInterfaceName(this.#o.linkPrefix, ref.instanceId),
        ipv6,
        ipv4,
        addresses: [ipv6, ipv4],
      };
      // The record goes first, so a crash half-way leaves something detach can find and undo.
      await writeFile(this.#recordPath(ref.instanceId), JSON.stringify(attachment), { mode: 0o600 });
      try {
        await runAll(
          attachCommands({
            netns: netnsName,
            netnsPath: attachment.netnsPath,
            hostInterface: attachment.hostInterface,
            bridge: this.bridge,
            ipv6,
            prefix6Length: this.prefix6.length,
            gateway6: gateway6(this.prefix6),
            ipv4,
            prefix4Length: this.subnet4.length,
            gateway4: gateway4(this.subnet4),
          }),
        );
      } catch (e) {
        await this.#teardown(ref.instanceId).catch(() => {});
        throw e;
      }
      return attachment;
    });
  }

  detach(instanceId: string): Promise<void> {
    if (!isId(instanceId, 'instance')) return Promise.reject(new TypeError(`instance id ${JSON.stringify(instanceId)} is not an ins_ id`));
    return this.#serial(() => this.#teardown(instanceId));
  }

  /** #teardown removes the veth pair, the namespace and the record; each may already be gone. */
  async #teardown(instanceId: string): Promise<void> {
    const hostInterface = hostInterfaceName(this.#o.linkPrefix, instanceId);
    const netnsName = `${this.#o.netnsPrefix}${instanceId}`;
    if ((await run(linkShowArgv(hostInterface), { allowFailure: true })).code === 0) {
      await run(linkDeleteArgv(hostInterface), { allowFailure: true });
    }
    if (existsSync(`/run/netns/${netnsName}`)) await run(netnsDeleteArgv(netnsName));
    await rm(this.#recordPath(instanceId), { force: true });
  }
}
