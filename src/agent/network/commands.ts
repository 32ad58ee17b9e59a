/**
 * Every command the one-host network runs, as data built by pure functions (tested by equality in
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
 * bridgeCommands creates the bridge (when it is missing) and sets it up with the gateway addresses.
 * `addr replace` is idempotent; `nodad` makes the IPv6 gateway usable at once instead of after
 * duplicate address detection (no one else on this bridge can hold ::1).
 */
export function bridgeCommands(o: { bridge: string; exists: boolean; gateway6: string; prefix6Length: number; gateway4: string; prefix4Length: number }): Command[] {
  const lines: string[] = [];
  if (!o.exists) lines.push(`link add ${o.bridge} type bridge`);
  lines.push(
    `link set ${o.bridge} up`,
    `addr replace ${o.gateway6}/${o.prefix6Length} dev ${o.bridge} nodad`,
    `addr replace ${o.gateway4}/${o.prefix4Length} dev ${o.bridge}`,
  );
  return [{ argv: ['ip', '-batch', '-'], input: lines.join('\n') + '\n' }];
}

/**
 * attachCommands builds an instance's namespace and plugs it into the bridge:
 * 1. on the host: the namespace, a veth pair whose inner end is created inside it as `eth0`, the outer
 *    end enslaved to the bridge;
 * 2. inside the namespace (`ip -n`): loopback, the addresses (IPv6 without DAD: the address is unique
 *    by construction and the app may bind it at once), default routes via the gateways;
 * 3. namespace sysctls: unprivileged ports from 0, because the namespace belongs to the host's user
 *    namespace, where the instance's root holds no capability, so binding port 80 would otherwise fail;
 *    and no router advertisements: addresses come from Ward alone.
 */
export function attachCommands(o: {
  netns: string;
  netnsPath: string;
  hostInterface: string;
  bridge: string;
  ipv6: string;
  prefix6Length: number;
  gateway6: string;
  ipv4: string;
  prefix4Length: number;
  gateway4: string;
}): Command[] {
  return [
    {
      argv: ['ip', '-batch', '-'],
      input: [
        `netns add ${o.netns}`,
        `link add ${o.hostInterface} type veth peer name eth0 netns ${o.netns}`,
        `link set ${o.hostInterface} master ${o.bridge} up`,
      ].join('\n') + '\n',
    },
    {
      argv: ['ip', '-n', o.netns, '-batch', '-'],
      input: [
        'link set lo up',
        `addr add ${o.ipv6}/${o.prefix6Length} dev eth0 nodad`,
        `addr add ${o.ipv4}/${o.prefix4Length} dev eth0`,
        'link set eth0 up',
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
      ],
    },
  ];
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
