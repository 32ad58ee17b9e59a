import { isWireGuardKey, nameProblem, newId, toTimestamp, UserError, type Clock, type Org, type PersonTunnel } from '../core/index.ts';
import type { Principal } from '../auth/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import { StoreConflictError, type OrgNetworkRecord, type Store, type WireGuardPeerRecord } from '../store/index.ts';
import { deriveOrgPrefix, formatIPv6, gateway6, hostSlice, parseOrgPrefix, peopleSlice } from '../agent/network/addresses.ts';
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
  /** gateway is the WireGuard gateway for people; undefined (no agent here): creating a peer is `unavailable`. */
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
  async setEgress(p: Principal, orgRef: string, egress: unknown, ctx: CallContext = contextOf(p)): Promise<{ org: Org; network: OrgNetworkRecord }> {
    if (egress !== 'allow' && egress !== 'deny') throw new UserError('bad_request', 'egress must be "allow" or "deny"');
    const { org } = await this.#o.orgs.resolve(p, orgRef, 'org:manage', ctx);
    const now = toTimestamp(this.#o.clock.now());
    const network = await this.#o.store.transaction(async (tx) => {
      const before = await tx.orgNetworks.get(org.id);
      const row: OrgNetworkRecord = { orgId: org.id, prefix: before?.prefix ?? deriveOrgPrefix(PREFIX_SEED, org.id), egress, updatedAt: now };
      await tx.orgNetworks.put(row);
      await this.#o.audit.record(tx, ctx, { orgId: org.id, action: 'org.network.update', target: org.id, outcome: 'success', details: { egress, previous: before?.egress ?? 'allow' } });
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
    const gateway = await this.#o.gateway?.();
    if (!gateway) throw new UserError('unavailable', 'no WireGuard gateway: no agent runs with this control plane', { hint: 'run ward server with the agent role' });
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
