/**
 * The network map: what the control plane hands one agent about the private network, computed by a pure
 * function from the control plane's state so the API and the tests share it (docs/networking.md).
 *
 * For host H it lists the orgs H must serve (those with instances on H, and those whose people use H as
 * their WireGuard gateway: the gateway needs the org's resolver and rules), the WireGuard peers and the
 * records for H's resolver. Each peer host's AllowedIPs are its slices (instance /64s and people /64s)
 * of exactly the orgs both hosts serve: WireGuard drops a packet from a peer whose source lies outside
 * them, so a host can only ever speak for the addresses it holds, and H never routes an org it does
 * not serve. A person's peer is one /128.
 */
import { formatPrefix, hostSlice, parseOrgPrefix, peopleSlice } from './addresses.ts';
import type { DnsRecord } from './dns/server.ts';
import type { EgressPolicy } from './types.ts';
import type { WireGuardPeer } from './wireguard.ts';

export interface MeshHost {
  id: string;
  index: number;
  publicKey?: string | null;
  endpoint?: string | null;
}

export interface MeshOrg {
  orgId: string;
  prefix6: string;
  egress: EgressPolicy;
}

export interface MeshPerson {
  orgId: string;
  publicKey: string;
  /** address is the person's /128 (no length). */
  address: string;
  gatewayHostId: string;
}

export interface MeshInstance extends DnsRecord {
  hostId: string;
  /**
   * published is false for an instance placed on its host but not running (yet): it makes the host
   * serve its org (the tunnel is there before the instance answers) but is in no DNS answer. Default true.
   */
  published?: boolean;
}

export interface NetworkMapInput {
  hostId: string;
  hosts: MeshHost[];
  orgs: MeshOrg[];
  people: MeshPerson[];
  /** instances are the instances placed on every host, with their addresses once published (running). */
  instances: MeshInstance[];
}

export interface NetworkMap {
  hostIndex: number;
  orgs: MeshOrg[];
  peers: (WireGuardPeer & { hostId?: string })[];
  records: DnsRecord[];
  /** remoteRecords are the records of the other hosts' instances (what H's resolver adds to its own). */
  remoteRecords: DnsRecord[];
}

/**
 * MeshLink is what an agent asks of the control plane about the mesh (MeshControlPlane in
 * src/services implements it over the Store). Both calls may fail while the control plane is away; the
 * agent keeps its tunnel as it is and tries again.
 */
export interface MeshLink {
  /** registerMesh records the host's public key and endpoint and returns its slice index (stable). */
  registerMesh(hostId: string, r: { publicKey: string; endpoint: string }): Promise<{ index: number }>;
  /** networkMap is the host's view of the private network now. */
  networkMap(hostId: string): Promise<NetworkMap>;
}

/** KEEPALIVE keeps NAT mappings between hosts open (seconds), as wg-quick users usually set. */
export const MESH_KEEPALIVE = 25;

function servedBy(hostId: string, input: NetworkMapInput): Set<string> {
  const s = new Set<string>();
  for (const i of input.instances) if (i.hostId === hostId) s.add(i.orgId);
  for (const p of input.people) if (p.gatewayHostId === hostId) s.add(p.orgId);
  return s;
}

/** buildNetworkMap computes host hostId's view of the private network. */
export function buildNetworkMap(input: NetworkMapInput): NetworkMap {
  const me = input.hosts.find((h) => h.id === input.hostId);
  if (!me) throw new Error(`unknown host ${input.hostId}`);
  const orgById = new Map(input.orgs.map((o) => [o.orgId, o]));
  const mine = servedBy(me.id, input);
  const peers: NetworkMap['peers'] = [];
  for (const h of [...input.hosts].sort((a, b) => a.index - b.index)) {
    if (h.id === me.id || !h.publicKey || !h.endpoint) continue;
    const theirs = servedBy(h.id, input);
    const allowed: string[] = [];
    for (const orgId of [...theirs].sort()) {
      const org = orgById.get(orgId);
      if (!org || !mine.has(orgId)) continue;
      const prefix = parseOrgPrefix(org.prefix6);
      if (input.instances.some((i) => i.hostId === h.id && i.orgId === orgId)) allowed.push(formatPrefix(hostSlice(prefix, h.index)));
      if (input.people.some((p) => p.gatewayHostId === h.id && p.orgId === orgId)) allowed.push(formatPrefix(peopleSlice(prefix, h.index)));
    }
    peers.push({ hostId: h.id, publicKey: h.publicKey, endpoint: h.endpoint, allowedIPs: allowed, keepalive: MESH_KEEPALIVE });
  }
  for (const p of input.people) {
    if (p.gatewayHostId === me.id) peers.push({ publicKey: p.publicKey, allowedIPs: [`${p.address}/128`] });
  }
  const published = input.instances.filter((i) => mine.has(i.orgId) && i.published !== false && i.ipv6);
  return {
    hostIndex: me.index,
    orgs: input.orgs.filter((o) => mine.has(o.orgId)).sort((a, b) => a.orgId.localeCompare(b.orgId)),
    peers,
    records: published.map(({ hostId: _h, published: _p, ...r }) => r),
    remoteRecords: published.filter((i) => i.hostId !== me.id).map(({ hostId: _h, published: _p, ...r }) => r),
  };
}
