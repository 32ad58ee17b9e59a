/**
 * InternalResolver is the host's DNS server for instances (and people on WireGuard): UDP and TCP port 53
 * on each org bridge's gateway addresses. It answers the `.internal` zone from the records the agent
 * gives it, and only with the asking org's records: the org is decided from the query's source address
 * (its org /48 or host-local /24), which the firewall has already made unforgeable. Other names are
 * forwarded to the host's upstream resolvers, for known orgs only: it is never an open resolver.
 *
 * Names (docs/networking.md), all AAAA (the private network is IPv6; IPv4 stays on its host):
 *   <app>.internal              every published instance of the app
 *   <region>.<app>.internal     the app's instances in that region
 *   <id>.vm.<app>.internal      one instance
 *   _apps.internal              TXT: the org's app names
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import { parseOrgPrefix, parseSubnet4, prefixContains, subnet4Contains, type Prefix6, type Subnet4 } from '../addresses.ts';
import type { OrgResolver, ResolverOrg } from '../types.ts';
import {
  DnsFormatError,
  RCODE_FORMERR,
  RCODE_NOERROR,
  RCODE_NOTIMP,
  RCODE_NXDOMAIN,
  RCODE_REFUSED,
  RCODE_SERVFAIL,
  TYPE_AAAA,
  TYPE_ANY,
  TYPE_TXT,
  buildResponse,
  errorResponse,
  parseQuery,
  type Query,
  type ResourceRecord,
} from './codec.ts';

/** DnsRecord is one published instance. */
export interface DnsRecord {
  orgId: string;
  app: string;
  instanceId: string;
  region: string;
  ipv6: string;
}

/** Upstream is a resolver to forward other names to. */
export interface Upstream {
  address: string;
  port: number;
}

export interface InternalResolverOptions {
  /** upstreams answer names outside `.internal`, tried in order (usually the host's /etc/resolv.conf). */
  upstreams: Upstream[];
  /** port is 53 in production; tests may pick another. */
  port?: number;
  /** ttl of `.internal` answers, seconds: short, instances come and go (default 5). */
  ttl?: number;
  /** timeoutMs per upstream attempt (default 2000). */
  timeoutMs?: number;
  /** onError hears about sockets that fail after listening; default ignores. */
  onError?: (e: Error) => void;
}

interface OrgMatch {
  orgId: string;
  prefix6: Prefix6;
  subnet4?: Subnet4;
}

const ZONE = 'internal';
const MAX_TCP_MESSAGE = 65535;
const TCP_IDLE_MS = 10_000;

/** parseResolvConf reads the nameserver lines of a resolv.conf, as upstreams on port 53. */
export function parseResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && (isIPv4(m[1]!) || isIPv6(m[1]!))) out.push({ address: m[1]!, port: 53 });
  }
  return out;
}

function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

function normalize(r: DnsRecord): DnsRecord {
  return { ...r, app: r.app.toLowerCase(), region: r.region.toLowerCase(), instanceId: r.instanceId.toLowerCase() };
}

export class InternalResolver implements OrgResolver {
  readonly #o: Required<Omit<InternalResolverOptions, 'onError'>> & Pick<InternalResolverOptions, 'onError'>;
  readonly #orgs = new Map<string, OrgMatch>();
  readonly #listeners = new Map<string, { udp: UdpSocket; tcp: Server }>();
  readonly #tcpClients = new Set<Socket>();
  #records: DnsRecord[] = [];
  #remote: DnsRecord[] = [];

  constructor(options: InternalResolverOptions) {
    this.#o = { port: 53, ttl: 5, timeoutMs: 2000, ...options };
  }

  /** setRecords replaces the published instances (the agent calls it whenever its view changes). */
  setRecords(records: DnsRecord[]): void {
    this.#records = records.map(normalize);
  }

  /**
   * setRemoteRecords replaces the instances other hosts publish (from the control plane's network map),
   * answered beside this host's own: `<app>.internal` names the app's instances on every host. Two
   * setters, because the agent and the mesh sync learn them from different places at different times.
   */
  setRemoteRecords(records: DnsRecord[]): void {
    this.#remote = records.map(normalize);
  }

  /** addOrg makes queries from the org's addresses the org's, without listening (people, remote hosts). */
  addOrg(org: { orgId: string; prefix6: string; subnet4?: string }): void {
    this.#orgs.set(org.orgId, { orgId: org.orgId, prefix6: parseOrgPrefix(org.prefix6), ...(org.subnet4 ? { subnet4: parseSubnet4(org.subnet4) } : {}) });
  }

  async serveOrg(org: ResolverOrg): Promise<void> {
    this.addOrg(org);
    for (const address of org.listen) await this.#listen(address);
  }

  /** addresses lists where the resolver listens. */
  get addresses(): string[] {
    return [...this.#listeners.keys()];
  }

  async #listen(address: string): Promise<void> {
    if (this.#listeners.has(address)) return;
    const udp = createSocket({ type: isIPv4(address) ? 'udp4' : 'udp6' });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address, port: this.#o.port, exclusive: true }, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('error', (e) => this.#o.onError?.(e));
    udp.on('message', (msg, rinfo) => {
      void this.answer(msg, rinfo.address, 'udp').then(
        (reply) => {
          if (reply) udp.send(reply, rinfo.port, rinfo.address);
        },
        (e: unknown) => this.#o.onError?.(e as Error),
      );
    });
    const tcp = createServer((socket) => this.#serveTcp(socket));
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: address, port: this.#o.port, exclusive: true }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      udp.close();
      throw e;
    }
    tcp.on('error', (e) => this.#o.onError?.(e));
    this.#listeners.set(address, { udp, tcp });
  }

  #serveTcp(socket: Socket): void {
    this.#tcpClients.add(socket);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('close', () => this.#tcpClients.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    let queue = Promise.resolve();
    const source = socket.remoteAddress ?? '';
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      // RFC 7766 §8: each message is preceded by its two-octet length.
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (buffered.length < 2 + len) break;
        const msg = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        queue = queue.then(async () => {
          const reply = await this.answer(Buffer.from(msg), source, 'tcp').catch(() => undefined);
          if (reply && !socket.destroyed) {
            const framed = Buffer.alloc(2 + reply.length);
            framed.writeUInt16BE(reply.length, 0);
            reply.copy(framed, 2);
            socket.write(framed);
          }
        });
      }
      if (buffered.length > MAX_TCP_MESSAGE + 2) socket.destroy();
    });
  }

  /** orgOf names the org an address belongs to, or undefined. */
  orgOf(source: string): string | undefined {
    const a = unmapped(source);
    for (const o of this.#orgs.values()) {
      if (isIPv4(a) ? o.subnet4 !== undefined && subnet4Contains(o.subnet4, a) : prefixContains(o.prefix6, a)) return o.orgId;
    }
    return undefined;
  }

  /** answer handles one message from source, as the listeners do; undefined means no reply. */
  async answer(msg: Buffer, source: string, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    let q: Query;
    try {
      q = parseQuery(msg);
    } catch (e) {
      if (e instanceof DnsFormatError) return errorResponse(msg, RCODE_FORMERR);
      throw e;
    }
    if (q.isResponse) return undefined;
    const maxSize = transport === 'udp' ? q.udpSize : MAX_TCP_MESSAGE;
    if (q.opcode !== 0) return buildResponse(q, { rcode: RCODE_NOTIMP, maxSize });
    const question = q.questions[0];
    if (q.questions.length !== 1 || !question) return buildResponse(q, { rcode: RCODE_FORMERR, maxSize });
    const orgId = this.orgOf(source);
    if (!orgId) return buildResponse(q, { rcode: RCODE_REFUSED, maxSize });
    const name = question.name;
    if (name === ZONE || name.endsWith(`.${ZONE}`)) {
      const { rcode, answers } = this.lookup(orgId, name, question.type);
      return buildResponse(q, { rcode, answers, authoritative: true, maxSize });
    }
    const upstream = await this.#forward(msg, transport);
    return upstream ?? buildResponse(q, { rcode: RCODE_SERVFAIL, maxSize });
  }

  /**
   * lookup answers a `.internal` name for one org. NXDOMAIN for names that do not exist in that org
   * (whatever other orgs hold: the answer says nothing about them), NOERROR with no answers for names
   * that exist but hold no record of the asked type.
   */
  lookup(orgId: string, name: string, type: number): { rcode: number; answers: ResourceRecord[] } {
    const labels = name === ZONE ? [] : name.slice(0, -ZONE.length - 1).split('.');
    const local = new Set(this.#records.map((r) => r.instanceId));
    const mine = [...this.#records, ...this.#remote.filter((r) => !local.has(r.instanceId))].filter((r) => r.orgId === orgId);
    const ttl = this.#o.ttl;
    const wants = (t: number) => type === t || type === TYPE_ANY;
    if (labels.length === 1 && labels[0] === '_apps') {
      const apps = [...new Set(mine.map((r) => r.app))].sort();
      // TXT strings are at most 255 octets: the list is split across strings, comma-separated as Fly does.
      const strings: string[] = [];
      let current = '';
      for (const a of apps) {
        const next = current ? `${current},${a}` : a;
        if (Buffer.byteLength(next) > 255) {
          strings.push(current);
          current = a;
        } else current = next;
      }
      if (current) strings.push(current);
      return { rcode: RCODE_NOERROR, answers: wants(TYPE_TXT) && strings.length ? [{ name, type: TYPE_TXT, ttl, data: strings }] : [] };
    }
    let matches: DnsRecord[] | undefined;
    if (labels.length === 1) matches = mine.filter((r) => r.app === labels[0]);
    else if (labels.length === 2) matches = mine.filter((r) => r.app === labels[1] && r.region === labels[0]);
    else if (labels.length === 3 && labels[1] === 'vm') matches = mine.filter((r) => r.app === labels[2] && r.instanceId === labels[0]);
    if (!matches || matches.length === 0) return { rcode: RCODE_NXDOMAIN, answers: [] };
    const sorted = [...matches].sort((a, b) => a.ipv6.localeCompare(b.ipv6));
    return { rcode: RCODE_NOERROR, answers: wants(TYPE_AAAA) ? sorted.map((r) => ({ name, type: TYPE_AAAA, ttl, data: r.ipv6 })) : [] };
  }

  async #forward(msg: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    for (const u of this.#o.upstreams) {
      try {
        const reply = transport === 'udp' ? await this.#forwardUdp(msg, u) : await this.#forwardTcp(msg, u);
        if (reply) return reply;
      } catch {
        // The next upstream, if any.
      }
    }
    return undefined;
  }

  #forwardUdp(msg: Buffer, u: Upstream): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const s = createSocket(isIPv4(u.address) ? 'udp4' : 'udp6');
      const done = (b: Buffer | undefined) => {
        clearTimeout(timer);
        s.close();
        resolve(b);
      };
      const timer = setTimeout(() => done(undefined), this.#o.timeoutMs);
      s.on('error', () => done(undefined));
      s.on('message', (reply, rinfo) => {
        // Only the upstream's answer to this query (same id) is relayed: a stray datagram is ignored.
        if (rinfo.address === u.address && rinfo.port === u.port && reply.length >= 12 && reply.readUInt16BE(0) === msg.readUInt16BE(0)) done(reply);
      });
      s.send(msg, u.port, u.address);
    });
  }

  #forwardTcp(msg: Buffer, u: Upstream): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const s = connect({ host: u.address, port: u.port });
      let buf = Buffer.alloc(0);
      const done = (b: Buffer | undefined) => {
        clearTimeout(timer);
        s.destroy();
        resolve(b);
      };
      const timer = setTimeout(() => done(undefined), this.#o.timeoutMs);
      s.on('error', () => done(undefined));
      s.on('connect', () => {
        const framed = Buffer.alloc(2 + msg.length);
        framed.writeUInt16BE(msg.length, 0);
        msg.copy(framed, 2);
        s.write(framed);
      });
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      });
    });
  }

  /** close stops every listener and open TCP connection. */
  async close(): Promise<void> {
    for (const c of this.#tcpClients) c.destroy();
    for (const { udp, tcp } of this.#listeners.values()) {
      udp.close();
      await new Promise<void>((r) => tcp.close(() => r()));
    }
    this.#listeners.clear();
  }
}
