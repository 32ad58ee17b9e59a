import { isWireGuardKey, nameProblem, newId, toTimestamp, UserError, type Clock, type Org, type PersonTunnel } from '../core/index.ts';
import type { Principal } from '../auth/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import { StoreConflictError, type HostMeshRecord, type OrgNetworkRecord, type Store, type WireGuardPeerRecord } from '../store/index.ts';
import { checkHostIndex, deriveOrgPrefix, formatIPv6, gateway6, hostSlice, MAX_HOST_INDEX, parseIPv6, parseOrgPrefix, peopleSlice } from '../agent/network/addresses.ts';
import { buildNetworkMap, type MeshInstance, type MeshLink, type MeshOrg, type MeshPerson, type NetworkMap } from '../agent/network/index.ts';
import { contextOf } from './audited.ts';
import type { OrgService } from './orgs.ts';

/** PREFIX_SEED derives an org's /48 the way every agent does (BridgeNetwork's default seed). */
const PREFIX_SEED = 'ward';

/** MAX_PEERS_PER_ORG bounds the people slice's addresses handed out per gateway (::2 … ::fffe). */
const MAX_PEERS_PER_ORG = 0xfffd;

/**
 * WireGuardGateway is the host people's peers connect to: its index (its slices in every org prefix),
 * its WireGuard public key and its endpoint (`host:port`). The agent owns the private key.
 */
export interface WireGuardGateway {
  hostIndex: number;
  publicKey: string;
  endpoint: string;
}

export interface NetworkServiceOptions {
  store: Store;
  clock: Clock;
  orgs: OrgService;
  audit: Auditor;
  /**
   * gateway is the WireGuard gateway for people (this server's agent); without it, or when it answers
   * undefined, the lowest-index host registered in the mesh; with none, creating a peer is `unavailable`.
   */
  gateway?: () => Promise<WireGuardGateway | undefined>;
  /** onChange tells agents to reconcile (egress or peers changed). */
  onChange?: () => void;
}

/** CreatedPeer is a new peer and what its wg-quick file needs besides the private key (which the CLI keeps). */
export interface CreatedPeer {
  org: Org;
  peer: WireGuardPeerRecord;
  tunnel: PersonTunnel;
}

/**
 * NetworkService is the control plane's side of private networking (docs/networking.md): each org's
 * settings (egress allow or deny) and people's WireGuard peers. The server never sees a private key:
 * the CLI makes the key pair and sends the public key. Every change is audited in its transaction.
 */
export class NetworkService {
  readonly #o: NetworkServiceOptions;

  constructor(o: NetworkServiceOptions) {
    this.#o = o;
  }

  /** settings are the org's network settings, defaults (derived prefix, egress allowed) without a row. */
  async settings(orgId: string): Promise<OrgNetworkRecord> {
    return (await this.#o.store.orgNetworks.get(orgId)) ?? { orgId, prefix: deriveOrgPrefix(PREFIX_SEED, orgId), egress: 'allow', updatedAt: '' };
  }

  /** show returns the org's network settings (org:read). */
  async show(p: Principal, orgRef: string, ctx: CallContext = contextOf(p)): Promise<{ org: Org; network: OrgNetworkRecord }> {
    const { org } = await this.#o.orgs.resolve(p, orgRef, 'org:read', ctx);
    return { org, network: await this.settings(org.id) };
  }

  /** setEgress switches the org's egress (org:manage); agents apply it on their next reconcile. */
  setEgress(p: Principal, orgRef: string, egress: unknown, ctx: CallContext = contextOf(p)): Promise<{ org: Org; network: OrgNetworkRecord }> {
    return this.update(p, orgRef, { egress }, ctx);
  }

  /**
   * update changes the org's settings (org:manage): egress, and its prefix, a ULA /48 of the operator's
   * choosing (e.g. one that fits an existing addressing plan). Agents use the stored prefix for the
   * org's bridges and addresses. A prefix changes only while nothing holds an address in the old one
   * (no instance placed, no WireGuard peer) and is refused when another org has it.
   */
  async update(p: Principal, orgRef: string, input: { egress?: unknown; prefix?: unknown }, ctx: CallContext = contextOf(p)): Promise<{ org: Org; network: OrgNetworkRecord }> {
    const { egress, prefix } = input;
    if (egress === undefined && prefix === undefined) throw new UserError('bad_request', 'nothing to set: give egress or prefix');
    if (egress !== undefined && egress !== 'allow' && egress !== 'deny') throw new UserError('bad_request', 'egress must be "allow" or "deny"');
    let wanted: string | undefined;
    if (prefix !== undefined) {
      try {
        if (typeof prefix !== 'string') throw new TypeError('not a string');
        const parsed = parseOrgPrefix(prefix.trim().toLowerCase());
        wanted = `${formatIPv6(parsed.bytes)}/48`;
      } catch {
        throw new UserError('bad_request', `prefix must be a unique local IPv6 /48 (fdXX:XXXX:XXXX::/48), got ${JSON.stringify(prefix)}`, { hint: 'RFC 4193: fd00::/8 plus 40 random bits' });
      }
    }
    const { org } = await this.#o.orgs.resolve(p, orgRef, 'org:manage', ctx);
    const now = toTimestamp(this.#o.clock.now());
    const network = await this.#o.store.transaction(async (tx) => {
      const before = await tx.orgNetworks.get(org.id);
      const current = before?.prefix ?? deriveOrgPrefix(PREFIX_SEED, org.id);
      if (wanted !== undefined && wanted !== current) {
        const others = (await tx.orgNetworks.list()).filter((n) => n.orgId !== org.id);
        // Stored prefixes only: an org without a row has a derived one, 40 hash bits that nobody picks by chance.
        if (others.some((n) => n.prefix === wanted)) throw new UserError('conflict', `prefix ${wanted} belongs to another org`, { hint: 'choose another /48' });
        let placed = 0;
        for (const a of await tx.apps.listForOrg(org.id)) placed += (await tx.instances.listForApp(a.id, { active: true })).length;
        const peers = (await tx.wireguardPeers.listForOrg(org.id)).length;
        if (placed || peers) {
          throw new UserError('conflict', `org "${org.name}" has ${placed} instance(s) and ${peers} WireGuard peer(s) with addresses in ${current}; its prefix cannot change under them`, {
            hint: 'set the prefix before the first deploy, or stop the apps and remove the peers first',
          });
        }
      }
      const row: OrgNetworkRecord = { orgId: org.id, prefix: wanted ?? current, egress: (egress as 'allow' | 'deny' | undefined) ?? before?.egress ?? 'allow', updatedAt: now };
      await tx.orgNetworks.put(row);
      const details: Record<string, string> = {};
      if (egress !== undefined) Object.assign(details, { egress: row.egress, previous: before?.egress ?? 'allow' });
      if (wanted !== undefined) Object.assign(details, { prefix: row.prefix, previous_prefix: current });
      await this.#o.audit.record(tx, ctx, { orgId: org.id, action: 'org.network.update', target: org.id, outcome: 'success', details });
      return row;
    });
    this.#o.onChange?.();
    return { org, network };
  }

  /** listPeers lists the org's WireGuard peers (org:read). */
  async listPeers(p: Principal, orgRef: string, ctx: CallContext = contextOf(p)): Promise<{ org: Org; peers: WireGuardPeerRecord[] }> {
    const { org } = await this.#o.orgs.resolve(p, orgRef, 'org:read', ctx);
    return { org, peers: await this.#o.store.wireguardPeers.listForOrg(org.id) };
  }

  /**
   * createPeer registers a person's public key on the org's network (app:deploy: who may deploy may
   * reach the instances) with the next free address in the gateway's people slice, and returns what the
   * wg-quick file needs: the address, the resolver, the org prefix, the gateway's key and endpoint.
   */
  async createPeer(p: Principal, orgRef: string, input: { name: unknown; publicKey: unknown }, ctx: CallContext = contextOf(p)): Promise<CreatedPeer> {
    const { name, publicKey } = input;
    if (typeof name !== 'string' || nameProblem(name) !== undefined) {
      throw new UserError('invalid_name', `invalid peer name${typeof name === 'string' ? ` "${name}"` : ''}: ${typeof name === 'string' ? nameProblem(name) : 'a name is required'}`);
    }
    if (typeof publicKey !== 'string' || !isWireGuardKey(publicKey)) {
      throw new UserError('bad_request', 'public_key must be a WireGuard public key (32 bytes, base64)', { hint: 'ward wireguard create makes the key pair for you' });
    }
    const { org } = await this.#o.orgs.resolve(p, orgRef, 'app:deploy', ctx);
    // This server's own agent when it has one, else the first host registered in the mesh.
    const gateway = (await this.#o.gateway?.()) ?? (await new MeshControlPlane(this.#o.store, this.#o.clock).gateway());
    if (!gateway) throw new UserError('unavailable', 'no WireGuard gateway: no agent has registered with this control plane', { hint: 'run ward server with the agent role' });
    const now = toTimestamp(this.#o.clock.now());
    try {
      const created = await this.#o.store.transaction(async (tx) => {
        const net = (await tx.orgNetworks.get(org.id)) ?? { prefix: deriveOrgPrefix(PREFIX_SEED, org.id) };
        const prefix = parseOrgPrefix(net.prefix);
        const slice = peopleSlice(prefix, gateway.hostIndex);
        const used = new Set((await tx.wireguardPeers.listForOrg(org.id)).map((x) => x.address));
        let address: string | undefined;
        for (let n = 2; n < 2 + MAX_PEERS_PER_ORG && !address; n++) {
          const b = new Uint8Array(slice.bytes);
          b[14] = n >> 8;
          b[15] = n & 0xff;
          const a = formatIPv6(b);
          if (!used.has(a)) address = a;
        }
        if (!address) throw new UserError('conflict', `org "${org.name}" has no free WireGuard address left on this gateway`);
        const peer: WireGuardPeerRecord = { id: newId('wireguardPeer'), orgId: org.id, name, publicKey, address, createdBy: p.userId, createdAt: now };
        await tx.wireguardPeers.create(peer);
        await this.#o.audit.record(tx, ctx, { orgId: org.id, action: 'wireguard.create', target: peer.id, outcome: 'success', details: { name, address, public_key: publicKey } });
        return { peer, prefix: net.prefix, dns: gateway6(hostSlice(prefix, gateway.hostIndex)) };
      });
      this.#o.onChange?.();
      return {
        org,
        peer: created.peer,
        tunnel: { address: created.peer.address, dns: created.dns, allowedIPs: [created.prefix], gatewayPublicKey: gateway.publicKey, gatewayEndpoint: gateway.endpoint },
      };
    } catch (e) {
      if (e instanceof StoreConflictError && e.constraint === 'wireguard_peers.org_name') throw new UserError('name_taken', `org "${org.name}" already has a WireGuard peer named "${name}"`, { hint: 'choose another --name, or remove it: ward wireguard remove NAME' });
      if (e instanceof StoreConflictError && e.constraint === 'wireguard_peers.public_key') throw new UserError('conflict', 'this public key is already a WireGuard peer', { hint: 'make a new key pair' });
      throw e;
    }
  }

  /** removePeer removes a peer by name (app:deploy); its tunnel stops working on the gateway's next reconcile. */
  async removePeer(p: Principal, orgRef: string, name: string, ctx: CallContext = contextOf(p)): Promise<{ org: Org; peer: WireGuardPeerRecord }> {
    const { org } = await this.#o.orgs.resolve(p, orgRef, 'app:deploy', ctx);
    const peer = await this.#o.store.transaction(async (tx) => {
      const found = await tx.wireguardPeers.findByName(org.id, name);
      if (!found || !(await tx.wireguardPeers.remove(found.id))) throw new UserError('not_found', `org "${org.name}" has no WireGuard peer named "${name}"`, { hint: 'list them: ward wireguard list' });
      await this.#o.audit.record(tx, ctx, { orgId: org.id, action: 'wireguard.remove', target: found.id, outcome: 'success', details: { name, address: found.address } });
      return found;
    });
    this.#o.onChange?.();
    return { org, peer };
  }
}

/** ENDPOINT is `host:port`, `[v6]:port` or `a.b.c.d:port`: what WireGuard accepts as an endpoint. */
const ENDPOINT = /^(\[[0-9a-fA-F:.]+\]|[0-9.]+|[a-zA-Z0-9.-]{1,253}):\d{1,5}$/;

/** gatewayIndexOf reads a person's gateway host index from their address (subnet id 0x8000 | index). */
function gatewayIndexOf(address: string): number | undefined {
  try {
    const b = parseIPv6(address);
    const subnet = (b[6]! << 8) | b[7]!;
    return subnet & 0x8000 ? subnet & 0x7fff : undefined;
  } catch {
    return undefined;
  }
}

/**
 * MeshControlPlane is the control plane's side of the WireGuard mesh (docs/networking.md), over the
 * Store, so every control plane and every agent on one database agree: hosts register their public
 * key and endpoint and get a slice index (the lowest free one, unique by a store rule, kept for good:
 * an agent that restarts gets its index back), and each host asks for its network map (peer hosts with
 * AllowedIPs limited to their slices of the orgs both serve, people whose gateway it is, the orgs it
 * must serve and the other hosts' DNS records). Agents use it as their MeshLink.
 */
export class MeshControlPlane implements MeshLink {
  readonly #store: Store;
  readonly #clock: Clock;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /**
   * registerMesh records the host's public key and endpoint and returns its slice index. A host keeps
   * its index whatever its key and endpoint become; a new host takes the lowest free index, and of two
   * new hosts racing for it the store's rule lets one win and the other tries the next.
   */
  async registerMesh(hostId: string, r: { publicKey: string; endpoint: string }): Promise<{ index: number }> {
    if (!isWireGuardKey(r.publicKey)) throw new UserError('bad_request', 'the host\'s WireGuard public key is not a WireGuard key');
    if (!ENDPOINT.test(r.endpoint)) throw new UserError('bad_request', `the host's WireGuard endpoint ${JSON.stringify(r.endpoint)} is not host:port`);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#store.transaction(async (tx) => {
          const now = toTimestamp(this.#clock.now());
          const existing = await tx.hostMesh.get(hostId);
          if (existing) {
            if (existing.publicKey !== r.publicKey || existing.endpoint !== r.endpoint) await tx.hostMesh.update(hostId, { ...r, updatedAt: now });
            return { index: existing.index };
          }
          const used = new Set((await tx.hostMesh.list()).map((h) => h.index));
          let index = 1;
          while (used.has(index)) index++;
          if (index > MAX_HOST_INDEX) throw new UserError('conflict', `the mesh has ${MAX_HOST_INDEX} hosts already: no slice index is free`);
          await tx.hostMesh.create({ hostId, index: checkHostIndex(index), ...r, updatedAt: now });
          return { index };
        });
      } catch (e) {
        if (e instanceof StoreConflictError && (e.constraint === 'host_mesh.mesh_index' || e.constraint === 'host_mesh.host_id') && attempt < 10) continue;
        if (e instanceof StoreConflictError && e.constraint === 'host_mesh.public_key') {
          throw new UserError('conflict', 'another host registered this WireGuard public key', { hint: 'a copied data directory? remove agent/wireguard/ from this host\'s data dir to make a new key' });
        }
        throw e;
      }
    }
  }

  /** gateway is the host people's peers connect to: hostId's mesh row, else the lowest-index host's. */
  async gateway(hostId?: string): Promise<WireGuardGateway | undefined> {
    const row: HostMeshRecord | undefined = (hostId ? await this.#store.hostMesh.get(hostId) : undefined) ?? (await this.#store.hostMesh.list())[0];
    return row && { hostIndex: row.index, publicKey: row.publicKey, endpoint: row.endpoint };
  }

  /** networkMap computes hostId's view of the private network from the store (buildNetworkMap). */
  async networkMap(hostId: string): Promise<NetworkMap> {
    const s = this.#store;
    const meshHosts = await s.hostMesh.list();
    if (!meshHosts.some((h) => h.hostId === hostId)) throw new UserError('not_found', `host ${hostId} has not registered with the mesh`);
    const appOrg = new Map<string, { orgId: string; name: string } | undefined>();
    const instances: MeshInstance[] = [];
    for (const h of meshHosts) {
      for (const i of await s.instances.listForHost(h.hostId)) {
        if (!appOrg.has(i.appId)) {
          const a = await s.apps.get(i.appId);
          appOrg.set(i.appId, a && { orgId: a.orgId, name: a.name });
        }
        const app = appOrg.get(i.appId);
        if (!app) continue;
        const published = i.observedState === 'running' && Boolean(i.privateIpv6);
        instances.push({ hostId: h.hostId, orgId: app.orgId, app: app.name, instanceId: i.id, region: i.region, ipv6: i.privateIpv6 ?? '', published });
      }
    }
    const byIndex = new Map(meshHosts.map((h) => [h.index, h.hostId]));
    const people: MeshPerson[] = [];
    for (const p of await s.wireguardPeers.list()) {
      const gw = byIndex.get(gatewayIndexOf(p.address) ?? 0);
      if (gw) people.push({ orgId: p.orgId, publicKey: p.publicKey, address: p.address, gatewayHostId: gw });
    }
    const settings = new Map((await s.orgNetworks.list()).map((n) => [n.orgId, n]));
    const orgIds = new Set([...instances.map((i) => i.orgId), ...people.map((p) => p.orgId)]);
    const orgs: MeshOrg[] = [...orgIds].map((orgId) => {
      const n = settings.get(orgId);
      return { orgId, prefix6: n?.prefix ?? deriveOrgPrefix(PREFIX_SEED, orgId), egress: n?.egress ?? 'allow' };
    });
    return buildNetworkMap({ hostId, hosts: meshHosts.map((h) => ({ id: h.hostId, index: h.index, publicKey: h.publicKey, endpoint: h.endpoint })), orgs, people, instances });
  }
}
