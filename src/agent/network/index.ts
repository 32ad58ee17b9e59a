// The network's public surface: the OrgNetwork seam and its one-host implementation.
export * from './types.ts';
export {
  BridgeNetwork,
  DEFAULT_BRIDGE,
  DEFAULT_IPV4_SUBNET,
  DEFAULT_IPV6_PREFIX,
  DEFAULT_LINK_PREFIX,
  DEFAULT_NETNS_PREFIX,
  type BridgeNetworkOptions,
} from './bridge-network.ts';
