/**
 * BridgeNetwork is the host's OrgNetwork: one Linux bridge per org, every instance in a network
 * namespace of its own, plugged into its org's bridge by a veth pair, with an IPv6 address in the org's
 * slice for this host and a host-local IPv4 address in the org's /24. The host holds the gateway
 * addresses on each bridge and so reaches every instance; the instances reach one another only within
 * their org, and the host only at its resolver, as nftables.ts renders it.
 *
 * State is records in stateDir (one per org, one per attachment), written before the commands they
 * describe; the firewall is always rendered from all records and applied whole (docs/networking.md).
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isId } from '../../core/ids.ts';
import { run } from '../../exec/index.ts';
import {
  deriveOrgPrefix,
  formatPrefix,
  formatSubnet4,
  gateway4,
  gateway6,
  hexName,
  hostInterfaceName,
  hostSlice,
  instanceAddress4,
  instanceAddress6,
  macAddress,
  orgSubnet4,
  parseOrgPrefix,
  parseSubnet4,
  prefixContains,
  type Prefix6,
  type Subnet4,
} from './addresses.ts';
import {
  BRIDGE_NETFILTER_SYSCTLS,
  attachCommands,
  bridgeCommands,
  linkDeleteArgv,
  linkShowArgv,
  neighbourCommands,
  netnsDeleteArgv,
  plugCommands,
  type AttachPlan,
  type Command,
} from './commands.ts';
import { nftApplyArgv, nftDeleteScript, renderRuleset, type FirewallState } from './nftables.ts';
import type { Attachment, EgressPolicy, InstanceRef, OrgNetwork, OrgNetworkOptions, OrgResolver } from './types.ts';

export const DEFAULT_IPV4_SUBNET = '10.89.0.0/16';
export const DEFAULT_BRIDGE_PREFIX = 'wb';
export const DEFAULT_NETNS_PREFIX = 'ward-';
export const DEFAULT_LINK_PREFIX = 'wv';
export const DEFAULT_TUNNEL_PREFIX = 'wg';
export const DEFAULT_TABLE = 'ward';
/** DEFAULT_PREFIX_SEED derives org prefixes when the control plane gives none (one host, tests). */
export const DEFAULT_PREFIX_SEED = 'ward';

export interface BridgeNetworkOptions {
  /** stateDir keeps one record per org and per attachment (ideally on tmpfs: namespaces end with the boot). */
  stateDir: string;
  /**
   * hostIndex is this host's slice number in every org prefix (1 … 0x7fff). The control plane assigns
   * it (MeshControlPlane.registerMesh) and the agent passes it to setHostIndex before restore; 1 when
   * nothing does (a network used on its own, tests).
   */
  hostIndex?: number;
  /** prefixSeed derives an org's /48 when ensure is given none. */
  prefixSeed?: string;
  /** ipv4Subnet is the host's private IPv4 /16; each org gets a /24 of it (DEFAULT_IPV4_SUBNET). */
  ipv4Subnet?: string;
  /** bridgePrefix starts each org bridge's name (the rest is a hash of the org id). */
  bridgePrefix?: string;
  /** netnsPrefix starts every namespace name (`ward-ins_…`). */
  netnsPrefix?: string;
  /** linkPrefix starts every host-side veth name (2–7 characters; the rest is a hash of the instance id). */
  linkPrefix?: string;
  /** tunnelPrefix starts the WireGuard interfaces' names: the firewall treats them as Ward's. */
  tunnelPrefix?: string;
  /** table names Ward's nftables tables (`inet <table>` and `bridge <table>`). */
  table?: string;
  /** disableBridgeNetfilter turns br_netfilter's iptables hooks off for bridged frames (default true). */
  disableBridgeNetfilter?: boolean;
  /** forwarding turns IPv4 and IPv6 forwarding on in this namespace (default true: egress and the mesh). */
  forwarding?: boolean;
  /** resolver is the internal DNS server; ensure makes it answer on the org's gateway addresses. */
  resolver?: OrgResolver;
}

/** OrgRecord is what this host knows of an org it serves. */
export interface OrgRecord {
  orgId: string;
  prefix6: string;
  egress: EgressPolicy;
  /** index4 picks the org's /24 in the host's /16. */
  index4: number;
  bridge: string;
}

/** OrgView is an org as the host sees it: record plus derived addresses. */
export interface OrgView extends OrgRecord {
  slice6: string;
  gateway6: string;
  subnet4: string;
  gateway4: string;
  bridgeMac: string;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const ORG_RE = /^[a-z]{2,8}_[a-z0-9_]{1,64}$/;

async function runAll(commands: (Command | undefined)[]): Promise<void> {
  for (const c of commands) if (c) await run(c.argv, c.input === undefined ? {} : { input: c.input });
}

async function writeAtomic(path: string, data: string): Promise<void> {
  await writeFile(`${path}.tmp`, data, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

export class BridgeNetwork implements OrgNetwork {
  #hostIndex: number;
  readonly subnet4: Subnet4;
  readonly table: string;
  readonly #o: Required<Omit<BridgeNetworkOptions, 'resolver'>> & { resolver?: OrgResolver };
  #lock: Promise<unknown> = Promise.resolve();
  #restored: Promise<void> | undefined;
  readonly #ensured = new Map<string, string>();

  constructor(options: BridgeNetworkOptions) {
    this.#o = {
      hostIndex: 1,
      prefixSeed: DEFAULT_PREFIX_SEED,
      ipv4Subnet: DEFAULT_IPV4_SUBNET,
      bridgePrefix: DEFAULT_BRIDGE_PREFIX,
      netnsPrefix: DEFAULT_NETNS_PREFIX,
      linkPrefix: DEFAULT_LINK_PREFIX,
      tunnelPrefix: DEFAULT_TUNNEL_PREFIX,
      table: DEFAULT_TABLE,
      disableBridgeNetfilter: true,
      forwarding: true,
      ...options,
    };
    if (!NAME_RE.test(this.#o.netnsPrefix)) throw new TypeError(`netns prefix ${JSON.stringify(this.#o.netnsPrefix)} is invalid`);
    hostInterfaceName(this.#o.linkPrefix, 'check');
    hexName(this.#o.bridgePrefix, 'check');
    hexName(this.#o.tunnelPrefix, 'check');
    if (!/^[a-z][a-z0-9-]{0,14}$/.test(this.#o.table)) throw new TypeError(`table name ${JSON.stringify(this.#o.table)} is invalid`);
    const prefixes = [this.#o.bridgePrefix, this.#o.linkPrefix, this.#o.tunnelPrefix];
    for (const a of prefixes) for (const b of prefixes) if (a !== b && a.startsWith(b)) throw new TypeError(`interface prefixes ${a} and ${b} overlap`);
    this.#hostIndex = this.#o.hostIndex;
    hostSlice(parseOrgPrefix('fd00::/48'), this.#hostIndex);
    this.subnet4 = parseSubnet4(this.#o.ipv4Subnet);
    if (this.subnet4.length !== 16) throw new TypeError('ipv4Subnet must be a /16 (one /24 per org)');
    this.table = this.#o.table;
  }

  /** hostIndex is this host's slice number in every org prefix. */
  get hostIndex(): number {
    return this.#hostIndex;
  }

  /**
   * setHostIndex takes the slice index the control plane assigned (MeshControlPlane.registerMesh), before
   * restore(): every gateway and instance address of this host lies in that slice. Changing it once
   * the host is restored, or while instances are attached under another slice, is refused: their
   * addresses would leave the host's slice.
   */
  async setHostIndex(index: number): Promise<void> {
    hostSlice(parseOrgPrefix('fd00::/48'), index);
    if (index === this.#hostIndex) return;
    if (this.#restored) throw new Error(`this host's network is up with slice index ${this.#hostIndex}; it cannot change to ${index} while running`);
    // The records say which slice the instances that outlived the agent live in: it must be this one.
    const prefixes = new Map((await this.orgs()).map((o) => [o.orgId, o.prefix6]));
    const outside = (await this.attachments()).filter((a) => {
      const prefix = prefixes.get(a.orgId);
      return !prefix || !prefixContains(hostSlice(parseOrgPrefix(prefix), index), a.ipv6);
    });
    if (outside.length) throw new Error(`${outside.length} attached instance(s) have addresses outside slice ${index} (e.g. ${outside[0]!.ipv6}); the host's slice index cannot change under them`);
    this.#hostIndex = index;
  }

  /** #serial runs fn after every earlier serialized call: allocation reads and writes records atomically. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#lock.then(fn, fn);
    this.#lock = next.catch(() => {});
    return next;
  }

  #orgDir(): string {
    return join(this.#o.stateDir, 'orgs');
  }

  /** view derives an org's addresses on this host from its record. */
  view(r: OrgRecord): OrgView {
    const prefix: Prefix6 = parseOrgPrefix(r.prefix6);
    const slice = hostSlice(prefix, this.#hostIndex);
    const s4 = orgSubnet4(this.subnet4, r.index4);
    return {
      ...r,
      slice6: formatPrefix(slice),
      gateway6: gateway6(slice),
      subnet4: formatSubnet4(s4),
      gateway4: gateway4(s4),
      bridgeMac: macAddress(r.bridge),
    };
  }

  /** orgs lists the orgs this host serves. */
  async orgs(): Promise<OrgView[]> {
    let names: string[];
    try {
      names = await readdir(this.#orgDir());
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: OrgView[] = [];
    for (const n of names.sort()) {
      if (!n.endsWith('.json')) continue;
      out.push(this.view(JSON.parse(await readFile(join(this.#orgDir(), n), 'utf8')) as OrgRecord));
    }
    return out;
  }

  /**
   * restore makes the host match the records after an agent start: host settings, bridges, the whole
   * firewall in one transaction, the resolver's listeners. It replaces whatever rules were there
   * atomically, so instances that kept running never see a moment without rules. Runs once per object
   * (ensure calls it); call again after changing records by hand.
   */
  restore(): Promise<void> {
    this.#restored ??= this.#serial(() => this.#restore()).catch((e) => {
      this.#restored = undefined;
      throw e;
    });
    return this.#restored;
  }

  async #restore(): Promise<void> {
    await mkdir(this.#orgDir(), { recursive: true, mode: 0o700 });
    if (this.#o.disableBridgeNetfilter) {
      for (const f of BRIDGE_NETFILTER_SYSCTLS) if (existsSync(f)) await writeFile(f, '0\n');
    }
    if (this.#o.forwarding) {
      await writeFile('/proc/sys/net/ipv4/ip_forward', '1\n');
      await writeFile('/proc/sys/net/ipv6/conf/all/forwarding', '1\n');
    }
    // The firewall first: a bridge that comes up before it would be open for a moment.
    await this.#applyFirewall();
    for (const o of await this.orgs()) await this.#bridgeUp(o);
  }

  async #bridgeUp(o: OrgView): Promise<void> {
    const exists = (await run(linkShowArgv(o.bridge), { allowFailure: true })).code === 0;
    await runAll(bridgeCommands({ bridge: o.bridge, exists, mac: o.bridgeMac, gateway6: o.gateway6, prefix6Length: 64, gateway4: o.gateway4, prefix4Length: 24 }));
    // The host's permanent entries for the org's instances (idempotent; lost if the bridge was re-made).
    const mine = (await this.attachments()).filter((a) => a.orgId === o.orgId && a.mac && a.bridge === o.bridge);
    if (mine.length) {
      await run(['ip', '-batch', '-'], {
        input: mine.flatMap((a) => [`neigh replace ${a.ipv6} lladdr ${a.mac} dev ${o.bridge} nud permanent`, `neigh replace ${a.ipv4} lladdr ${a.mac} dev ${o.bridge} nud permanent`]).join('\n') + '\n',
      });
    }
    await this.#o.resolver?.serveOrg({ orgId: o.orgId, prefix6: o.prefix6, subnet4: o.subnet4, listen: [o.gateway6, o.gateway4] });
  }

  /** firewallState is the desired state the rules are rendered from. */
  async firewallState(): Promise<FirewallState> {
    const orgs = await this.orgs();
    return {
      table: this.table,
      bridgePrefix: this.#o.bridgePrefix,
      portPrefix: this.#o.linkPrefix,
      tunnelPrefix: this.#o.tunnelPrefix,
      ipv4Network: formatSubnet4(this.subnet4),
      orgs: orgs.map((o) => ({
        orgId: o.orgId,
        prefix6: o.prefix6,
        slice6: o.slice6,
        bridge: o.bridge,
        gateway6: o.gateway6,
        subnet4: o.subnet4,
        gateway4: o.gateway4,
        egress: o.egress === 'allow',
      })),
      ports: (await this.#records()).filter((a) => a.mac).map((a) => ({ name: a.hostInterface, mac: a.mac!, ipv6: a.ipv6, ipv4: a.ipv4 })),
    };
  }

  async #applyFirewall(): Promise<void> {
    await run(nftApplyArgv(), { input: renderRuleset(await this.firewallState()) });
  }

  /** reapply renders every record and swaps the rules in one transaction (what an agent start does). */
  reapply(): Promise<void> {
    return this.#serial(() => this.#applyFirewall());
  }

  ensure(orgId: string, options: OrgNetworkOptions = {}): Promise<void> {
    if (!ORG_RE.test(orgId)) return Promise.reject(new TypeError(`org id ${JSON.stringify(orgId)} is invalid`));
    // The same settings in any key order are the same settings: no rewrite, no bridge round trip.
    const key = JSON.stringify({ ipv6Prefix: options.ipv6Prefix, egress: options.egress });
    if (this.#ensured.get(orgId) === key) return this.restore();
    return this.restore()
      .then(() => this.#serial(() => this.#ensureOrg(orgId, options)))
      .then(() => {
        this.#ensured.set(orgId, key);
      });
  }

  async #readOrg(orgId: string): Promise<OrgRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.#orgDir(), `${orgId}.json`), 'utf8')) as OrgRecord;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async #ensureOrg(orgId: string, options: OrgNetworkOptions): Promise<OrgView> {
    const existing = await this.#readOrg(orgId);
    const prefix6 = options.ipv6Prefix ?? existing?.prefix6 ?? deriveOrgPrefix(this.#o.prefixSeed, orgId);
    parseOrgPrefix(prefix6);
    if (existing && existing.prefix6 !== prefix6 && (await this.#records()).some((a) => a.orgId === orgId)) {
      throw new Error(`org ${orgId} has instances attached under ${existing.prefix6}; its prefix cannot change to ${prefix6} while they run`);
    }
    let index4 = existing?.index4;
    if (index4 === undefined) {
      const used = new Set((await this.orgs()).map((o) => o.index4));
      index4 = 1;
      while (used.has(index4)) index4++;
      if (index4 > 255) throw new Error('this host serves 255 orgs already (one IPv4 /24 each)');
    }
    const record: OrgRecord = {
      orgId,
      prefix6,
      egress: options.egress ?? existing?.egress ?? 'allow',
      index4,
      bridge: existing?.bridge ?? hexName(this.#o.bridgePrefix, orgId),
    };
    const changed = JSON.stringify(record) !== JSON.stringify(existing);
    if (changed) await writeAtomic(join(this.#orgDir(), `${orgId}.json`), JSON.stringify(record));
    const view = this.view(record);
    if (changed) await this.#applyFirewall();
    await this.#bridgeUp(view);
    return view;
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

  /** #records lists every attachment record, whether or not its namespace still exists. */
  async #records(): Promise<Attachment[]> {
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
      if (a) out.push(a);
    }
    return out;
  }

  async attachments(): Promise<Attachment[]> {
    // A record whose namespace is gone (a reboot, a half-made attach) describes nothing attached.
    return (await this.#records()).filter((a) => existsSync(a.netnsPath));
  }

  async attach(ref: InstanceRef): Promise<Attachment> {
    if (!isId(ref.instanceId, 'instance')) throw new TypeError(`instance id ${JSON.stringify(ref.instanceId)} is not an ins_ id`);
    if (!(await this.#readOrg(ref.orgId))) await this.ensure(ref.orgId);
    else await this.restore();
    return this.#serial(async () => {
      const existing = await this.#read(ref.instanceId);
      if (existing && existsSync(existing.netnsPath) && existing.orgId === ref.orgId) return existing;
      // A record without its namespace (or the reverse) is a half-made attach: start it over.
      await this.#teardown(ref.instanceId);
      const org = await this.#readOrg(ref.orgId);
      if (!org) throw new Error(`org ${ref.orgId} is not ensured on this host`);
      const view = this.view(org);
      const others = await this.attachments();
      const used4 = new Set(others.map((a) => a.ipv4));
      const used6 = new Set(others.map((a) => a.ipv6));
      const slice = hostSlice(parseOrgPrefix(org.prefix6), this.#hostIndex);
      let ipv6 = instanceAddress6(slice, ref.instanceId);
      for (let attempt = 1; used6.has(ipv6); attempt++) ipv6 = instanceAddress6(slice, ref.instanceId, attempt);
      const ipv4 = instanceAddress4(orgSubnet4(this.subnet4, org.index4), ref.instanceId, used4);
      const netnsName = `${this.#o.netnsPrefix}${ref.instanceId}`;
      const hostInterface = hostInterfaceName(this.#o.linkPrefix, ref.instanceId);
      const mac = macAddress(ref.instanceId);
      const attachment: Attachment = {
        instanceId: ref.instanceId,
        orgId: ref.orgId,
        netnsName,
        netnsPath: `/run/netns/${netnsName}`,
        hostInterface,
        ipv6,
        ipv4,
        addresses: [ipv6, ipv4],
        nameservers: [view.gateway6, view.gateway4],
        mac,
        bridge: org.bridge,
      };
      const plan: AttachPlan = {
        netns: netnsName,
        netnsPath: attachment.netnsPath,
        hostInterface,
        hostMac: macAddress(`${ref.instanceId}/host`),
        mac,
        bridge: org.bridge,
        bridgeMac: view.bridgeMac,
        ipv6,
        prefix6Length: 64,
        gateway6: view.gateway6,
        ipv4,
        prefix4Length: 24,
        gateway4: view.gateway4,
      };
      // The record goes first, so a crash half-way leaves something detach can find and undo.
      await writeAtomic(this.#recordPath(ref.instanceId), JSON.stringify(attachment));
      try {
        await runAll(attachCommands(plan));
        // The port's chain exists before the port joins the bridge; until then it is down and unplugged.
        await this.#applyFirewall();
        await runAll(plugCommands(plan));
        const peers = others.filter((a) => a.orgId === ref.orgId && a.mac);
        await runAll([neighbourCommands(netnsName, peers.map((p) => ({ ipv6: p.ipv6, ipv4: p.ipv4, mac: p.mac! })))]);
        for (const p of peers) await runAll([neighbourCommands(p.netnsName, [{ ipv6, ipv4, mac }])]);
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

  /** #teardown removes the veth pair, the namespace, the neighbours' entries, the record and the port's rules. */
  async #teardown(instanceId: string): Promise<void> {
    const record = await this.#read(instanceId);
    const hostInterface = hostInterfaceName(this.#o.linkPrefix, instanceId);
    const netnsName = `${this.#o.netnsPrefix}${instanceId}`;
    if ((await run(linkShowArgv(hostInterface), { allowFailure: true })).code === 0) {
      await run(linkDeleteArgv(hostInterface), { allowFailure: true });
    }
    if (existsSync(`/run/netns/${netnsName}`)) await run(netnsDeleteArgv(netnsName));
    if (record?.mac && record.bridge) {
      await run(['ip', '-force', '-batch', '-'], { input: `neigh del ${record.ipv6} dev ${record.bridge}\nneigh del ${record.ipv4} dev ${record.bridge}\n`, allowFailure: true });
      for (const p of await this.attachments()) {
        if (p.orgId !== record.orgId || p.instanceId === instanceId) continue;
        const c = neighbourCommands(p.netnsName, [{ ipv6: record.ipv6, ipv4: record.ipv4, mac: record.mac }], true);
        if (c) await run(c.argv, { input: c.input!, allowFailure: true });
      }
    }
    await rm(this.#recordPath(instanceId), { force: true });
    if (record) await this.#applyFirewall();
  }

  /**
   * close removes everything this network made on the host: attachments, bridges, both nftables
   * tables and the records. For tests and uninstalling; an agent that stops keeps it all running.
   */
  async close(): Promise<void> {
    await this.#serial(async () => {
      for (const a of await this.#records()) await this.#teardown(a.instanceId).catch(() => {});
      await run(['nft', '-f', '-'], { input: nftDeleteScript(this.table), allowFailure: true });
      for (const o of await this.orgs()) await run(linkDeleteArgv(o.bridge), { allowFailure: true });
      await rm(this.#orgDir(), { recursive: true, force: true });
    });
    this.#restored = undefined;
    this.#ensured.clear();
  }
}
