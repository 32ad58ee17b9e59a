/**
 * The seam between the agent and the network. The one-host BridgeNetwork implements it today; issue
 * "Private networking" puts per-org bridges and prefixes, nftables isolation and anti-spoofing, internal
 * DNS and the WireGuard mesh behind the same calls, without the runner changing.
 */

/** InstanceRef names the instance to attach and the org whose network it joins. */
export interface InstanceRef {
  instanceId: string;
  orgId: string;
}

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
  /** ipv4 is its private IPv4 address. */
  ipv4: string;
  /** addresses lists ipv6 then ipv4, as the runtime and health checks want them. */
  addresses: string[];
}

/**
 * OrgNetwork places instances on their organization's private network.
 *
 * Guarantees and duties:
 * - ensure, attach and detach are idempotent: calling again with the same arguments converges to the
 *   same state and returns the same attachment; an agent may repeat any of them after a crash.
 * - attach happens before the instance starts and detach after it is destroyed: an attachment outlives
 *   the instance's processes, and detach removes every interface, namespace and record attach made.
 * - Calls may run concurrently, for different instances; address allocation is serialized inside.
 * - attachments() reads state that survives an agent restart (until the host reboots, which also ends
 *   every namespace), so recovery re-learns what is attached without re-attaching.
 */
export interface OrgNetwork {
  /** ensure makes the org's network ready on this host (bridge, gateway addresses, host settings). */
  ensure(orgId: string): Promise<void>;
  /** attach gives the instance its namespace, interface and addresses; ensure(orgId) first. */
  attach(ref: InstanceRef): Promise<Attachment>;
  /** detach removes the instance's namespace, interfaces and record; unknown ids are ignored. */
  detach(instanceId: string): Promise<void>;
  /** attachments lists what is attached on this host now. */
  attachments(): Promise<Attachment[]>;
}
