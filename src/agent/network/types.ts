/**
 * The seam between the agent and the network. BridgeNetwork implements it on a host: one bridge per org,
 * nftables isolation and anti-spoofing, the internal resolver's addresses; the WireGuard mesh
 * (wireguard.ts) carries the same org prefixes between hosts. The runner only calls ensure, attach and
 * detach (docs/networking.md).
 */

/** InstanceRef names the instance to attach and the org whose network it joins. */
export interface InstanceRef {
  instanceId: string;
  orgId: string;
}

/**
 * OrgNetworkOptions is what the control plane says about an org's network; both fields may be left
 * out (a one-host setup, tests): the prefix is then derived from the org id and egress is allowed.
 */
export interface OrgNetworkOptions {
  /** ipv6Prefix is the org's ULA /48 (docs/networking.md); the host's slice of it holds its instances. */
  ipv6Prefix?: string;
  /** egress 'deny' stops the org's instances from opening connections outside Ward's private network. */
  egress?: EgressPolicy;
}

/** EgressPolicy says whether an org's instances may reach addresses outside the private network. */
export type EgressPolicy = 'allow' | 'deny';

/**
 * Attachment is an instance's place on the network: a network namespace of its own (which the runtime
 * makes the instance join) holding one interface, `eth0`, with the instance's addresses. The host
 * reaches those addresses directly.
 */
export interface Attachment {
  instanceId: string;
  orgId: string;
  /** netnsName is the namespace's name under /run/netns; netnsPath is what the runtime joins. */
  netnsName: string;
  netnsPath: string;
  /** hostInterface is the host's end of the instance's veth pair. */
  hostInterface: string;
  /** ipv6 is the instance's ULA address (no prefix length). */
  ipv6: string;
  /** ipv4 is its private IPv4 address (host-local: IPv4 does not cross hosts). */
  ipv4: string;
  /** addresses lists ipv6 then ipv4, as the runtime and health checks want them. */
  addresses: string[];
  /** nameservers are the internal resolver's addresses for the instance's /etc/resolv.conf. */
  nameservers?: string[];
  /** mac is the MAC of the instance's eth0 (derived from its id, fixed: the firewall allows only it). */
  mac?: string;
  /** bridge is the org's bridge on this host. */
  bridge?: string;
}

/**
 * OrgNetwork places instances on their organization's private network.
 *
 * Guarantees and duties:
 * - ensure, attach and detach are idempotent: calling again with the same arguments converges to the
 *   same state and returns the same attachment; an agent may repeat any of them after a crash.
 * - attach happens before the instance starts and detach after it is destroyed: an attachment outlives
 *   the instance's processes, and detach removes every interface, namespace and record attach made.
 * - An attached instance is isolated from the moment its interface exists: it reaches only its own
 *   org's addresses (and, when the org allows egress, the outside), sends only from its own addresses,
 *   and reaches nothing of the host but the resolver.
 * - Calls may run concurrently, for different instances; address allocation is serialized inside.
 * - attachments() reads state that survives an agent restart (until the host reboots, which also ends
 *   every namespace), so recovery re-learns what is attached without re-attaching.
 */
export interface OrgNetwork {
  /**
   * ensure makes the org's network ready on this host (bridge, gateway addresses, firewall, resolver).
   * options come from the control plane; a later call with other options (egress switched) applies them.
   */
  ensure(orgId: string, options?: OrgNetworkOptions): Promise<void>;
  /** attach gives the instance its namespace, interface and addresses; ensure(orgId) first. */
  attach(ref: InstanceRef): Promise<Attachment>;
  /** detach removes the instance's namespace, interfaces and record; unknown ids are ignored. */
  detach(instanceId: string): Promise<void>;
  /** attachments lists what is attached on this host now. */
  attachments(): Promise<Attachment[]>;
}

/** ResolverOrg is what the internal resolver needs to know about an org served on this host. */
export interface ResolverOrg {
  orgId: string;
  /** prefix6 is the org's /48: a query from inside it is the org's. */
  prefix6: string;
  /** subnet4 is the org's host-local IPv4 /24: a query from inside it is the org's too. */
  subnet4: string;
  /** listen are the addresses to answer on (the org bridge's gateway addresses). */
  listen: string[];
}

/** OrgResolver is the internal DNS server as the network sees it (dns/server.ts implements it). */
export interface OrgResolver {
  /** serveOrg starts answering the org's queries on its addresses; idempotent. */
  serveOrg(org: ResolverOrg): Promise<void>;
}
