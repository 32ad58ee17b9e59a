/**
 * Address arithmetic for instance networks, pure. The scheme (docs/runtime.md, "Networking"):
 *
 * - IPv6: each network is a ULA /64 (RFC 4193: fd00::/8 plus a random 40-bit global id plus a 16-bit
 *   subnet id). The gateway (the host's bridge) is `<prefix>::1`; an instance's interface id is the
 *   first 64 bits of SHA-256(instance id), so its address is stable across agent restarts and derived
 *   rather than stored. The prefix is a parameter: issue "Private networking" gives each org (and host)
 *   its own /64 out of the installation's /48.
 * - IPv4: each network is a private /16 (default 10.89.0.0/16); the gateway is .0.1; an instance's
 *   host number starts at a hash of its id and probes upwards past ones in use (a /16 has room for
 *   65,533 instances, where hashing alone would collide early).
 */
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

/** Prefix6 is a parsed IPv6 prefix: its 16 bytes (host bits zero) and its length. */
export interface Prefix6 {
  bytes: Uint8Array;
  length: number;
}

/** parseIPv6 returns the 16 bytes of an IPv6 address (no zone, no IPv4-mapped tail). */
export function parseIPv6(address: string): Uint8Array {
  if (!isIPv6(address) || address.includes('%') || address.includes('.')) throw new TypeError(`not an IPv6 address: ${address}`);
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? 0 : 8 - headParts.length - tailParts.length;
  const groups = [...headParts, ...Array(zeros).fill('0'), ...tailParts].map((g) => parseInt(g, 16));
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** formatIPv6 writes an address in the canonical text form of RFC 5952 (lower case, longest zero run as ::). */
export function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** parsePrefix6 reads `fdXX:…::/64`; Ward's instance networks are /64s of the ULA range fc00::/7. */
export function parsePrefix6(cidr: string): Prefix6 {
  const [addr, len] = cidr.split('/');
  const length = Number(len);
  if (addr === undefined || length !== 64) throw new TypeError(`an instance network must be an IPv6 /64, got ${cidr}`);
  const bytes = parseIPv6(addr);
  if ((bytes[0]! & 0xfe) !== 0xfc) throw new TypeError(`${cidr} is not a unique local (fc00::/7) prefix`);
  if (bytes.slice(8).some((b) => b !== 0)) throw new TypeError(`${cidr} has host bits set`);
  return { bytes, length };
}

/** gateway6 is the host's address on the network: `<prefix>::1`. */
export function gateway6(prefix: Prefix6): string {
  const b = new Uint8Array(prefix.bytes);
  b[15] = 1;
  return formatIPv6(b);
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * instanceAddress6 derives an instance's IPv6 address from its id. Attempt 0 is the normal case; a
 * caller that finds the address taken (a 2^-64 event) asks for attempt 1, 2…. Interface ids 0 and 1
 * (the subnet-router anycast and the gateway) are never produced.
 */
export function instanceAddress6(prefix: Prefix6, instanceId: string, attempt = 0): string {
  const b = new Uint8Array(prefix.bytes);
  const h = digest(attempt === 0 ? instanceId : `${instanceId}#${attempt}`);
  for (let i = 0; i < 8; i++) b[8 + i] = h[i]!;
  if (b.slice(8, 15).every((x) => x === 0) && b[15]! <= 1) b[15] = 2;
  return formatIPv6(b);
}

/** Subnet4 is a parsed IPv4 network: its base as a number and its prefix length. */
export interface Subnet4 {
  base: number;
  length: number;
}

function ipv4ToNumber(a: string): number {
  if (!isIPv4(a)) throw new TypeError(`not an IPv4 address: ${a}`);
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function numberToIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

const PRIVATE_V4 = [
  { base: ipv4ToNumber('10.0.0.0'), length: 8 },
  { base: ipv4ToNumber('172.16.0.0'), length: 12 },
  { base: ipv4ToNumber('192.168.0.0'), length: 16 },
];

/** parseSubnet4 reads `10.89.0.0/16`: a private (RFC 1918) network between /8 and /24. */
export function parseSubnet4(cidr: string): Subnet4 {
  const [addr, len] = cidr.split('/');
  const length = Number(len);
  if (addr === undefined || !Number.isInteger(length) || length < 8 || length > 24) throw new TypeError(`an IPv4 instance network must be /8 to /24, got ${cidr}`);
  const base = ipv4ToNumber(addr);
  const size = 2 ** (32 - length);
  if (base % size !== 0) throw new TypeError(`${cidr} has host bits set`);
  const inPrivate = PRIVATE_V4.some((p) => length >= p.length && Math.floor(base / 2 ** (32 - p.length)) === p.base / 2 ** (32 - p.length));
  if (!inPrivate) throw new TypeError(`${cidr} is not a private (RFC 1918) network`);
  return { base, length };
}

/** gateway4 is the host's address on the network: the first host number. */
export function gateway4(subnet: Subnet4): string {
  return numberToIPv4(subnet.base + 1);
}

/**
 * instanceAddress4 picks an instance's IPv4 address: host numbers 2 … size-2 (not the network, the
 * gateway or the broadcast address), starting at a hash of the id and probing upwards past `used`.
 * It throws when the network is full.
 */
export function instanceAddress4(subnet: Subnet4, instanceId: string, used: ReadonlySet<string>): string {
  const hosts = 2 ** (32 - subnet.length) - 3;
  const start = digest(instanceId).readUInt32BE(0) % hosts;
  for (let i = 0; i < hosts; i++) {
    const candidate = numberToIPv4(subnet.base + 2 + ((start + i) % hosts));
    if (!used.has(candidate)) return candidate;
  }
  throw new Error(`no IPv4 address left in ${numberToIPv4(subnet.base)}/${subnet.length}`);
}

/** hostInterfaceName names the host end of an instance's veth pair: prefix + hash, within IFNAMSIZ (15). */
export function hostInterfaceName(linkPrefix: string, instanceId: string): string {
  if (!/^[a-z][a-z0-9]{1,6}$/.test(linkPrefix)) throw new TypeError(`link prefix ${JSON.stringify(linkPrefix)} must be 2–7 lower-case letters and digits`);
  return linkPrefix + digest(instanceId).toString('hex').slice(0, 15 - linkPrefix.length);
}

// ---------------------------------------------------------------------------------------------------
// The private network scheme (docs/networking.md), like Fly's 6PN:
//
//   org prefix   fdGG:GGGG:GGGG::/48      one ULA /48 per org (RFC 4193 "site"): 40-bit global id
//   host slice   fdGG:GGGG:GGGG:HHHH::/64  subnet id HHHH = the host's mesh index (1 … 0x7fff)
//   people slice fdGG:GGGG:GGGG:PPPP::/64  PPPP = 0x8000 | gateway host index: WireGuard peers of people
//   instance     <host slice>:IIII:IIII:IIII:IIII, interface id = first 64 bits of SHA-256(instance id)
//
// An org's every address, on every host and every person's laptop, lies inside its /48, so "same org"
// is one prefix comparison wherever a packet is judged (nftables, WireGuard AllowedIPs, the resolver).
// ---------------------------------------------------------------------------------------------------

/** MAX_HOST_INDEX is the largest host slice number; the upper half of the subnet ids is for people. */
export const MAX_HOST_INDEX = 0x7fff;
const PEOPLE_SLICE_BIT = 0x8000;

/** parseOrgPrefix reads an org's `fdXX:XXXX:XXXX::/48` (a ULA /48 with no bits beyond the 48th). */
export function parseOrgPrefix(cidr: string): Prefix6 {
  const [addr, len] = cidr.split('/');
  if (addr === undefined || Number(len) !== 48) throw new TypeError(`an org prefix must be an IPv6 /48, got ${cidr}`);
  const bytes = parseIPv6(addr);
  if (bytes[0] !== 0xfd) throw new TypeError(`${cidr} is not a locally assigned unique local (fd00::/8) prefix`);
  if (bytes.slice(6).some((b) => b !== 0)) throw new TypeError(`${cidr} has bits set beyond the /48`);
  return { bytes, length: 48 };
}

/** formatPrefix writes a prefix as `address/length`. */
export function formatPrefix(p: Prefix6): string {
  return `${formatIPv6(p.bytes)}/${p.length}`;
}

/**
 * deriveOrgPrefix makes an org's /48 from the installation's seed and the org id: fd00::/8 plus 40 bits
 * of SHA-256 (RFC 4193 §3.2 asks for a pseudo-random global id; a hash of a secret seed is one). The
 * control plane stores the result under a unique rule and asks for attempt 1, 2… on the (2^-40) clash.
 */
export function deriveOrgPrefix(seed: string, orgId: string, attempt = 0): string {
  const h = digest(`ward-6pn\0${seed}\0${orgId}${attempt === 0 ? '' : `\0${attempt}`}`);
  const b = new Uint8Array(16);
  b[0] = 0xfd;
  for (let i = 1; i < 6; i++) b[i] = h[i - 1]!;
  return `${formatIPv6(b)}/48`;
}

function slice(org: Prefix6, subnetId: number): Prefix6 {
  const b = new Uint8Array(org.bytes);
  b[6] = subnetId >> 8;
  b[7] = subnetId & 0xff;
  return { bytes: b, length: 64 };
}

/** checkHostIndex throws unless n is a host slice number (1 … MAX_HOST_INDEX). */
export function checkHostIndex(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_HOST_INDEX) throw new TypeError(`host index must be 1…${MAX_HOST_INDEX}, got ${n}`);
  return n;
}

/** hostSlice is the /64 of an org's prefix that holds its instances on the host with that index. */
export function hostSlice(org: Prefix6, hostIndex: number): Prefix6 {
  return slice(org, checkHostIndex(hostIndex));
}

/** peopleSlice is the /64 of an org's prefix for people's WireGuard peers whose gateway is that host. */
export function peopleSlice(org: Prefix6, hostIndex: number): Prefix6 {
  return slice(org, PEOPLE_SLICE_BIT | checkHostIndex(hostIndex));
}

/** prefixContains says whether an IPv6 address lies inside the prefix. */
export function prefixContains(p: Prefix6, address: string): boolean {
  let b: Uint8Array;
  try {
    b = parseIPv6(address);
  } catch {
    return false;
  }
  const full = Math.floor(p.length / 8);
  for (let i = 0; i < full; i++) if (b[i] !== p.bytes[i]) return false;
  const rest = p.length % 8;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (b[full]! & mask) === (p.bytes[full]! & mask);
}

/** orgSubnet4 is an org's host-local IPv4 /24 inside the host's instance /16: `<a>.<b>.<index>.0/24`. */
export function orgSubnet4(hostSubnet: Subnet4, index: number): Subnet4 {
  if (hostSubnet.length !== 16) throw new TypeError('the host IPv4 network must be a /16 to hold one /24 per org');
  if (!Number.isInteger(index) || index < 1 || index > 255) throw new TypeError(`org IPv4 index must be 1…255, got ${index}`);
  return { base: hostSubnet.base + index * 256, length: 24 };
}

/** formatSubnet4 writes `a.b.c.d/len`. */
export function formatSubnet4(s: Subnet4): string {
  return `${numberToIPv4(s.base)}/${s.length}`;
}

/** subnet4Contains says whether an IPv4 address lies inside the subnet. */
export function subnet4Contains(s: Subnet4, address: string): boolean {
  if (!isIPv4(address)) return false;
  const n = ipv4ToNumber(address);
  return n >= s.base && n < s.base + 2 ** (32 - s.length);
}

/**
 * macAddress derives a stable, locally administered unicast MAC (RFC 7042 §2.1: 0x02 in the first
 * octet) from a name: instances keep their MAC across agent restarts, so the static neighbour entries
 * that stop neighbour spoofing never go stale.
 */
export function macAddress(name: string): string {
  const h = digest(`mac\0${name}`);
  const bytes = [0x02, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** hexName fills a name prefix up to IFNAMSIZ-1 (15) characters with hex of SHA-256(key). */
export function hexName(prefix: string, key: string): string {
  if (!/^[a-z][a-z0-9]{1,8}$/.test(prefix)) throw new TypeError(`interface prefix ${JSON.stringify(prefix)} must be 2–9 lower-case letters and digits`);
  return prefix + digest(key).toString('hex').slice(0, 15 - prefix.length);
}
