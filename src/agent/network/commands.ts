/**
 * Every command the host network runs, as data built by pure functions (tested by equality in
 * commands.test.ts). Most go through `ip -batch -`: one process for several changes. The batch text is
 * read by ip's own tokenizer, never by a shell, and holds only names and addresses validated before.
 */
import type { Argv } from '../../exec/index.ts';

/** Command is an argv and, for `ip -batch -`, the lines it reads on stdin. */
export interface Command {
  argv: Argv;
  input?: string;
}

/** linkShowArgv prints one link as JSON (exit 1 when it does not exist). */
export function linkShowArgv(name: string): Argv {
  return ['ip', '-json', 'link', 'show', 'dev', name];
}

/**
 * bridgeCommands creates an org's bridge (when it is missing) and sets it up with the gateway addresses.
 * The bridge gets a fixed MAC: a bridge otherwise takes the lowest MAC of its ports, which changes as
 * instances come and go and would make the instances' static neighbour entries for the gateway stale.
 * `addr replace` is idempotent; `nodad` makes the IPv6 gateway usable at once (no one else on this
 * bridge can hold ::1). No link-local address: nothing on a Ward bridge needs one, and every address on
 * it is one the firewall knows. No multicast snooping: instances have no link-local address to report
 * from, and neighbour discovery (the fallback behind the static entries) must reach them.
 */
export function bridgeCommands(o: { bridge: string; exists: boolean; mac: string; gateway6: string; prefix6Length: number; gateway4: string; prefix4Length: number }): Command[] {
  const lines: string[] = [];
  // Only a new bridge gets its MAC and address mode: setting either on an existing bridge flushes its
  // neighbour table, permanent entries included.
  if (!o.exists) lines.push(`link add ${o.bridge} address ${o.mac} type bridge mcast_snooping 0`, `link set ${o.bridge} addrgenmode none`);
  lines.push(
    `link set ${o.bridge} up`,
    `addr replace ${o.gateway6}/${o.prefix6Length} dev ${o.bridge} nodad`,
    `addr replace ${o.gateway4}/${o.prefix4Length} dev ${o.bridge}`,
  );
  return [{ argv: ['ip', '-batch', '-'], input: lines.join('\n') + '\n' }];
}

/** AttachPlan is what attachCommands and plugCommands need to know about one instance. */
export interface AttachPlan {
  netns: string;
  netnsPath: string;
  hostInterface: string;
  hostMac: string;
  mac: string;
  bridge: string;
  bridgeMac: string;
  ipv6: string;
  prefix6Length: number;
  gateway6: string;
  ipv4: string;
  prefix4Length: number;
  gateway4: string;
}

/**
 * attachCommands builds an instance's namespace, still unplugged:
 * 1. on the host: the namespace and a veth pair whose inner end is created inside it as `eth0`, both
 *    ends with MACs derived from the instance id; the host end stays down and out of the bridge until
 *    the firewall knows the port (plugCommands);
 * 2. inside the namespace (`ip -n`): loopback; no link-local address (addrgenmode none: every source
 *    address the instance can use is one the firewall allows); the addresses (IPv6 without DAD: unique
 *    by construction, so the app may bind at once); a permanent neighbour entry for the gateway, so
 *    no neighbour advertisement can redirect the instance's traffic; default routes via the gateways;
 * 3. namespace sysctls: unprivileged ports from 0, because the namespace belongs to the host's user
 *    namespace, where the instance's root holds no capability, so binding port 80 would otherwise fail;
 *    and no router advertisements or redirects: routes come from Ward alone.
 */
export function attachCommands(o: AttachPlan): Command[] {
  return [
    {
      argv: ['ip', '-batch', '-'],
      input: [`netns add ${o.netns}`, `link add ${o.hostInterface} address ${o.hostMac} type veth peer name eth0 address ${o.mac} netns ${o.netns}`].join('\n') + '\n',
    },
    {
      argv: ['ip', '-n', o.netns, '-batch', '-'],
      input: [
        'link set lo up',
        'link set eth0 addrgenmode none',
        `addr add ${o.ipv6}/${o.prefix6Length} dev eth0 nodad`,
        `addr add ${o.ipv4}/${o.prefix4Length} dev eth0`,
        'link set eth0 up',
        `neigh replace ${o.gateway6} lladdr ${o.bridgeMac} dev eth0 nud permanent`,
        `neigh replace ${o.gateway4} lladdr ${o.bridgeMac} dev eth0 nud permanent`,
        `route add default via ${o.gateway4} dev eth0`,
        `route add default via ${o.gateway6} dev eth0`,
      ].join('\n') + '\n',
    },
    {
      argv: [
        'nsenter',
        `--net=${o.netnsPath}`,
        '--',
        'sysctl',
        '-q',
        '-w',
        'net.ipv4.ip_unprivileged_port_start=0',
        'net.ipv6.conf.all.accept_ra=0',
        'net.ipv6.conf.default.accept_ra=0',
        'net.ipv6.conf.eth0.accept_ra=0',
        'net.ipv6.conf.all.accept_redirects=0',
        'net.ipv4.conf.all.accept_redirects=0',
      ],
    },
  ];
}

/**
 * plugCommands puts the instance's port into its bridge, once the firewall has a chain for it, and
 * gives the host permanent neighbour entries for the instance's addresses.
 */
export function plugCommands(o: AttachPlan): Command[] {
  return [
    {
      argv: ['ip', '-batch', '-'],
      input: [
        `link set ${o.hostInterface} master ${o.bridge} up`,
        `neigh replace ${o.ipv6} lladdr ${o.mac} dev ${o.bridge} nud permanent`,
        `neigh replace ${o.ipv4} lladdr ${o.mac} dev ${o.bridge} nud permanent`,
      ].join('\n') + '\n',
    },
  ];
}

/**
 * neighbourCommands gives one instance (in netns) permanent entries for its same-org neighbours on this
 * host, or removes them: a neighbour advertisement that lies about a target cannot move these.
 */
export function neighbourCommands(netns: string, neighbours: { ipv6: string; ipv4: string; mac: string }[], remove = false): Command | undefined {
  if (!neighbours.length) return undefined;
  const lines = neighbours.flatMap((n) =>
    remove ? [`neigh del ${n.ipv6} dev eth0`, `neigh del ${n.ipv4} dev eth0`] : [`neigh replace ${n.ipv6} lladdr ${n.mac} dev eth0 nud permanent`, `neigh replace ${n.ipv4} lladdr ${n.mac} dev eth0 nud permanent`],
  );
  return { argv: ['ip', '-force', '-n', netns, '-batch', '-'], input: lines.join('\n') + '\n' };
}

/** linkDeleteArgv removes the host end of a veth pair (the inner end goes with it). */
export function linkDeleteArgv(name: string): Argv {
  return ['ip', 'link', 'delete', 'dev', name];
}

/** netnsDeleteArgv removes a named network namespace. */
export function netnsDeleteArgv(name: string): Argv {
  return ['ip', 'netns', 'delete', name];
}

/**
 * BRIDGE_NETFILTER_SYSCTLS are the files that make bridged frames traverse iptables/ip6tables/arptables
 * (br_netfilter, built into some kernels and on by default). Ward filters in its own nftables tables;
 * with these on, bridged neighbour discovery between instances also passes the `inet` forward chain
 * and breaks silently once neighbour caches expire (PLATFORM-NOTES, "Networking").
 */
export const BRIDGE_NETFILTER_SYSCTLS = [
  '/proc/sys/net/bridge/bridge-nf-call-arptables',
  '/proc/sys/net/bridge/bridge-nf-call-iptables',
  '/proc/sys/net/bridge/bridge-nf-call-ip6tables',
];
