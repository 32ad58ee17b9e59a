/**
 * The host's packet filter as data: renderRuleset turns the desired state of the private network into
 * one `nft -f` script, tested by equality in nftables.test.ts, and applied in a single transaction.
 *
 * The script deletes and re-creates Ward's two tables inside that transaction (`table … {}` first, so
 * the delete never fails on a fresh host). The kernel swaps the old rules for the new ones atomically:
 * every packet sees either the old rules or the new ones, never a gap and never a half-applied set. An
 * agent that starts again simply renders its records and applies them; nothing is flushed beforehand.
 *
 * Two tables, each doing what only its hook can do:
 *
 * - `bridge <table>`: anti-spoofing, at bridge prerouting priority -300, before anything else sees a
 *   frame. Each instance port has a chain that accepts only its own MAC, its own IPv4 (ARP included) and
 *   IPv6 source addresses, plus the unspecified source for neighbour solicitation and MLD; router
 *   advertisements, redirects and neighbour advertisements for any target but its own are dropped. A
 *   port whose name carries Ward's prefix but that the desired state does not (yet) describe drops
 *   everything, so a new veth is closed from the moment it exists. (br_netfilter is off, so same-bridge
 *   traffic never reaches the inet table: this table is the only filter between same-org neighbours.)
 * - `inet <table>`: isolation between orgs and from the host. Forwarded packets from Ward's interfaces
 *   (org bridges, WireGuard) are accepted only when source and destination lie in the same org prefix
 *   (`ip6 saddr . ip6 daddr` in a set of org/org pairs), or as egress to outside addresses from a bridge
 *   whose org allows it; packets toward Ward's interfaces from elsewhere only as replies (conntrack).
 *   Packets to the host itself from an instance pass only to its own org's resolver (UDP/TCP 53 on its
 *   bridge's gateway addresses), plus replies to connections the host opened (health checks, the edge).
 *   Egress is masqueraded: ULA and the private IPv4 network do not route beyond the host.
 */

import { parseIPv6 } from './addresses.ts';

/** FirewallOrg is one org present on this host. */
export interface FirewallOrg {
  orgId: string;
  /** prefix6 is the org's ULA /48: every address of the org, on every host. */
  prefix6: string;
  /** slice6 is this host's /64 of it. */
  slice6: string;
  /** bridge is the org's bridge on this host; gateway6/gateway4 are the host's addresses on it. */
  bridge: string;
  gateway6: string;
  /** subnet4 is the org's host-local IPv4 /24; gateway4 the host's address in it. */
  subnet4: string;
  gateway4: string;
  /** egress allows connections to addresses outside Ward's networks. */
  egress: boolean;
}

/** FirewallPort is one instance's port on its org's bridge: the host end of its veth pair. */
export interface FirewallPort {
  name: string;
  mac: string;
  ipv6: string;
  ipv4: string;
}

/** FirewallState is everything the rules are rendered from. */
export interface FirewallState {
  /** table names both of Ward's tables (`inet <table>`, `bridge <table>`). */
  table: string;
  /** bridgePrefix, portPrefix and tunnelPrefix start every interface name Ward makes of each kind. */
  bridgePrefix: string;
  portPrefix: string;
  tunnelPrefix: string;
  /** ipv4Network is the host's private IPv4 network that the orgs' /24s come from. */
  ipv4Network: string;
  orgs: FirewallOrg[];
  ports: FirewallPort[];
}

const NAME = /^[a-z][a-z0-9-]{0,14}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function checkName(n: string): string {
  if (!NAME.test(n)) throw new TypeError(`${JSON.stringify(n)} is not an interface name Ward makes`);
  return n;
}

function q(n: string): string {
  return `"${checkName(n)}"`;
}

/** ipv6Hex writes an IPv6 address as the 128-bit integer nft compares raw payload with. */
export function ipv6Hex(address: string): string {
  return '0x' + Buffer.from(parseIPv6(address)).toString('hex');
}

function elements(items: string[]): string[] {
  return items.length ? [`    elements = { ${items.join(', ')} }`] : [];
}

/** renderRuleset makes the complete `nft -f` script for the desired state (both tables, one transaction). */
export function renderRuleset(s: FirewallState): string {
  for (const p of [s.bridgePrefix, s.portPrefix, s.tunnelPrefix]) checkName(p);
  const prefixes = [s.bridgePrefix, s.portPrefix, s.tunnelPrefix];
  for (const a of prefixes) for (const b of prefixes) if (a !== b && a.startsWith(b)) throw new TypeError(`interface prefixes ${a} and ${b} overlap`);
  const wild = (p: string) => `"${p}*"`;
  const t = checkName(s.table);
  const orgs = [...s.orgs].sort((a, b) => a.bridge.localeCompare(b.bridge));
  const ports = [...s.ports].sort((a, b) => a.name.localeCompare(b.name));
  for (const p of ports) if (!MAC.test(p.mac)) throw new TypeError(`bad MAC ${p.mac}`);

  const out: string[] = [];
  out.push(`table inet ${t} {}`, `delete table inet ${t}`, `table inet ${t} {`);
  out.push('  set org_pairs6 {', '    type ipv6_addr . ipv6_addr; flags interval;', ...elements(orgs.map((o) => `${o.prefix6} . ${o.prefix6}`)), '  }');
  out.push('  set org_pairs4 {', '    type ipv4_addr . ipv4_addr; flags interval;', ...elements(orgs.map((o) => `${o.subnet4} . ${o.subnet4}`)), '  }');
  out.push('  set resolvers6 {', '    type ifname . ipv6_addr;', ...elements(orgs.map((o) => `${q(o.bridge)} . ${o.gateway6}`)), '  }');
  out.push('  set resolvers4 {', '    type ifname . ipv4_addr;', ...elements(orgs.map((o) => `${q(o.bridge)} . ${o.gateway4}`)), '  }');
  out.push('  set egress {', '    type ifname;', ...elements(orgs.filter((o) => o.egress).map((o) => q(o.bridge))), '  }');
  out.push('  set slices6 {', '    type ipv6_addr; flags interval;', ...elements(orgs.map((o) => o.slice6)), '  }');
  out.push(
    '  chain input {',
    '    type filter hook input priority filter - 10; policy accept;',
    `    iifname ${wild(s.bridgePrefix)} jump from_instance`,
    `    iifname ${wild(s.tunnelPrefix)} jump from_tunnel`,
    '  }',
    '  chain from_instance {',
    // Replies to connections the host opened: health checks, the edge's proxying.
    '    ct state established,related accept',
    '    meta l4proto { tcp, udp } th dport 53 iifname . ip6 daddr @resolvers6 accept',
    '    meta l4proto { tcp, udp } th dport 53 iifname . ip daddr @resolvers4 accept',
    '    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept',
    '    drop',
    '  }',
    '  chain from_tunnel {',
    '    ct state established,related accept',
    // A person (or a peer host's instance) asks the resolver of its own org on this host.
    '    meta l4proto { tcp, udp } th dport 53 ip6 saddr . ip6 daddr @org_pairs6 accept',
    '    drop',
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter - 10; policy accept;',
    `    iifname ${wild(s.bridgePrefix)} jump from_ward`,
    `    iifname ${wild(s.tunnelPrefix)} jump from_ward`,
    `    oifname ${wild(s.bridgePrefix)} jump to_ward`,
    `    oifname ${wild(s.tunnelPrefix)} jump to_ward`,
    '  }',
    '  chain from_ward {',
    '    ip6 saddr . ip6 daddr @org_pairs6 accept',
    '    ip saddr . ip daddr @org_pairs4 accept',
    // Egress never goes to another of Ward's interfaces, nor to any ULA or the instances' IPv4 network:
    // whatever the routes say, those are other orgs.
    `    oifname ${wild(s.bridgePrefix)} drop`,
    `    oifname ${wild(s.tunnelPrefix)} drop`,
    `    oifname ${wild(s.portPrefix)} drop`,
    '    iifname @egress ip6 daddr != fc00::/7 accept',
    `    iifname @egress ip daddr != ${s.ipv4Network} accept`,
    '    drop',
    '  }',
    '  chain to_ward {',
    '    ct state established,related accept',
    '    drop',
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname ${wild(s.bridgePrefix)} return`,
    `    oifname ${wild(s.tunnelPrefix)} return`,
    `    ip saddr ${s.ipv4Network} masquerade`,
    '    ip6 saddr @slices6 masquerade',
    '  }',
    '}',
  );

  out.push(`table bridge ${t} {}`, `delete table bridge ${t}`, `table bridge ${t} {`);
  out.push('  chain prerouting {', '    type filter hook prerouting priority -300; policy accept;');
  if (ports.length) out.push(`    iifname vmap { ${ports.map((p) => `${q(p.name)} : jump port_${p.name}`).join(', ')} }`);
  // A port of Ward's that the desired state does not describe passes nothing.
  out.push(`    iifname ${wild(s.portPrefix)} drop`, '  }');
  for (const p of ports) {
    out.push(
      `  chain port_${checkName(p.name)} {`,
      `    ether saddr != ${p.mac} drop`,
      `    ether type arp arp htype 1 arp ptype ip arp saddr ether ${p.mac} arp saddr ip ${p.ipv4} accept`,
      '    ether type arp drop',
      `    ether type ip ip saddr ${p.ipv4} accept`,
      '    ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } drop',
      // RFC 4861 §4.4: the target address is the 16 bytes after the first 8 of the message.
      `    ether type ip6 icmpv6 type nd-neighbor-advert @th,64,128 != ${ipv6Hex(p.ipv6)} drop`,
      `    ether type ip6 ip6 saddr ${p.ipv6} accept`,
      // Duplicate address detection and MLD reports come from the unspecified address (RFC 4862, 3810).
      '    ether type ip6 ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } accept',
      '    drop',
      '  }',
    );
  }
  out.push('}');
  return out.join('\n') + '\n';
}

/** nftApplyArgv reads a script on stdin and applies it as one transaction. */
export function nftApplyArgv(): readonly ['nft', ...string[]] {
  return ['nft', '-f', '-'];
}

/** nftDeleteScript removes both of Ward's tables (the `table … {}` lines make it succeed when absent). */
export function nftDeleteScript(table: string): string {
  const t = checkName(table);
  return `table inet ${t} {}\ndelete table inet ${t}\ntable bridge ${t} {}\ndelete table bridge ${t}\n`;
}
