// Raw Ethernet frames for the spoofing tests, built byte by byte (RFC 8200 IPv6, RFC 768 UDP, RFC 4443
// and 4861 ICMPv6/ND, RFC 826 ARP, RFC 791 IPv4), and the AF_PACKET sender that puts them on an
// instance's eth0 from inside its namespace. The sender is Debian's python3 with a fixed script: Node
// has no AF_PACKET socket. It runs as root in the instance's namespace: more than an instance may do
// (it has no CAP_NET_RAW), so what the host drops here it drops for any instance.
import { parseIPv6 } from '../../../src/agent/network/addresses.ts';
import type { Argv } from '../../../src/exec/index.ts';

function mac(m: string): Buffer {
  return Buffer.from(m.split(':').map((h) => parseInt(h, 16)));
}

function v4(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number));
}

function sum16(buf: Buffer, start = 0): number {
  let s = start;
  for (let i = 0; i < buf.length; i += 2) s += (buf[i]! << 8) | (buf[i + 1] ?? 0);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s;
}

function checksum6(src: Buffer, dst: Buffer, next: number, payload: Buffer): number {
  const pseudo = Buffer.alloc(40);
  src.copy(pseudo, 0);
  dst.copy(pseudo, 16);
  pseudo.writeUInt32BE(payload.length, 32);
  pseudo[39] = next;
  return ~sum16(Buffer.concat([pseudo, payload])) & 0xffff;
}

export function ethernet(dst: string, src: string, type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  mac(dst).copy(h, 0);
  mac(src).copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

function ipv6(src: string, dst: string, next: number, payload: Buffer, hop = 64): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(payload.length, 4);
  h[6] = next;
  h[7] = hop;
  Buffer.from(parseIPv6(src)).copy(h, 8);
  Buffer.from(parseIPv6(dst)).copy(h, 24);
  return Buffer.concat([h, payload]);
}

/** udp6Frame is a UDP datagram over IPv6 in an Ethernet frame, with a correct checksum. */
export function udp6Frame(o: { srcMac: string; dstMac: string; src: string; dst: string; dport: number; payload: string }): Buffer {
  const data = Buffer.from(o.payload, 'latin1');
  const u = Buffer.alloc(8);
  u.writeUInt16BE(40000, 0);
  u.writeUInt16BE(o.dport, 2);
  u.writeUInt16BE(8 + data.length, 4);
  const seg = Buffer.concat([u, data]);
  seg.writeUInt16BE(checksum6(Buffer.from(parseIPv6(o.src)), Buffer.from(parseIPv6(o.dst)), 17, seg) || 0xffff, 6);
  return ethernet(o.dstMac, o.srcMac, 0x86dd, ipv6(o.src, o.dst, 17, seg));
}

/** udp4Frame is a UDP datagram over IPv4 (UDP checksum 0: allowed over IPv4, RFC 768). */
export function udp4Frame(o: { srcMac: string; dstMac: string; src: string; dst: string; dport: number; payload: string }): Buffer {
  const data = Buffer.from(o.payload, 'latin1');
  const u = Buffer.alloc(8);
  u.writeUInt16BE(40000, 0);
  u.writeUInt16BE(o.dport, 2);
  u.writeUInt16BE(8 + data.length, 4);
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + 8 + data.length, 2);
  h[8] = 64;
  h[9] = 17;
  v4(o.src).copy(h, 12);
  v4(o.dst).copy(h, 16);
  h.writeUInt16BE(~sum16(h) & 0xffff, 10);
  return ethernet(o.dstMac, o.srcMac, 0x0800, Buffer.concat([h, u, data]));
}

function icmp6(src: string, dst: string, body: Buffer): Buffer {
  const b = Buffer.from(body);
  b.writeUInt16BE(checksum6(Buffer.from(parseIPv6(src)), Buffer.from(parseIPv6(dst)), 58, b), 2);
  return ipv6(src, dst, 58, b, 255);
}

/** neighbourAdvert claims `target` is at `claimMac` (override flag set: RFC 4861 §4.4). */
export function neighbourAdvertFrame(o: { srcMac: string; dstMac: string; src: string; dst: string; target: string; claimMac: string }): Buffer {
  const body = Buffer.alloc(32);
  body[0] = 136;
  body.writeUInt32BE(0x20000000, 4);
  Buffer.from(parseIPv6(o.target)).copy(body, 8);
  body[24] = 2; // target link-layer address option
  body[25] = 1;
  mac(o.claimMac).copy(body, 26);
  return ethernet(o.dstMac, o.srcMac, 0x86dd, icmp6(o.src, o.dst, body));
}

/** routerAdvert announces a default route and an on-link, autoconfigurable prefix (RFC 4861 §4.2). */
export function routerAdvertFrame(o: { srcMac: string; src: string; prefix: string }): Buffer {
  const body = Buffer.alloc(16 + 32);
  body[0] = 134;
  body[4] = 64;
  body.writeUInt16BE(1800, 6); // router lifetime: be a default router
  body[16] = 3; // prefix information option
  body[17] = 4;
  body[18] = 64;
  body[19] = 0xc0; // on-link, autonomous
  body.writeUInt32BE(86400, 20);
  body.writeUInt32BE(14400, 24);
  Buffer.from(parseIPv6(o.prefix)).copy(body, 32);
  return ethernet('33:33:00:00:00:01', o.srcMac, 0x86dd, icmp6(o.src, 'ff02::1', body));
}

/** arpReply claims `ip` is at `claimMac`, to everyone. */
export function arpFrame(o: { srcMac: string; claimMac: string; ip: string }): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(2, 6);
  mac(o.claimMac).copy(a, 8);
  v4(o.ip).copy(a, 14);
  mac('ff:ff:ff:ff:ff:ff').copy(a, 18);
  v4(o.ip).copy(a, 24);
  return ethernet('ff:ff:ff:ff:ff:ff', o.srcMac, 0x0806, a);
}

const SENDER = [
  'import json, socket, sys',
  's = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)',
  "s.bind(('eth0', 0))",
  'for f in json.loads(sys.argv[1]):',
  '    s.send(bytes.fromhex(f))',
].join('\n');

/** sendFramesArgv sends frames on eth0 of the namespace at netnsPath. */
export function sendFramesArgv(netnsPath: string, frames: Buffer[]): Argv {
  return ['nsenter', `--net=${netnsPath}`, '--', 'python3', '-c', SENDER, JSON.stringify(frames.map((f) => f.toString('hex')))];
}
