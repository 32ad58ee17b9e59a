// The network's public surface: the OrgNetwork seam, the host implementation (bridges + nftables), the
// internal resolver and the WireGuard interface.
export * from './types.ts';
export {
  BridgeNetwork,
  DEFAULT_BRIDGE_PREFIX,
  DEFAULT_IPV4_SUBNET,
  DEFAULT_LINK_PREFIX,
  DEFAULT_NETNS_PREFIX,
  DEFAULT_PREFIX_SEED,
  DEFAULT_TABLE,
  DEFAULT_TUNNEL_PREFIX,
  type BridgeNetworkOptions,
  type OrgRecord,
  type OrgView,
} from './bridge-network.ts';
export {
  deriveOrgPrefix,
  formatPrefix,
  hexName,
  hostSlice,
  checkHostIndex,
  MAX_HOST_INDEX,
  parseIPv6,
  parseOrgPrefix,
  peopleSlice,
  prefixContains,
} from './addresses.ts';
export { InternalResolver, parseResolvConf, type DnsRecord, type InternalResolverOptions, type Upstream } from './dns/server.ts';
export { MeshSync, type MeshDevice, type MeshLogger, type MeshNetwork, type MeshSyncOptions } from './mesh-sync.ts';
export { buildNetworkMap, MESH_KEEPALIVE, type MeshHost, type MeshLink, type MeshInstance, type MeshOrg, type MeshPerson, type NetworkMap, type NetworkMapInput } from './mesh.ts';
export { WireGuardDevice, wireGuardConfig, type WireGuardDeviceOptions, type WireGuardMode, type WireGuardPeer } from './wireguard.ts';
