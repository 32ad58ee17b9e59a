/**
 * A small DNS message codec (RFC 1035 §4), enough for an authoritative `.internal` zone and a forwarder:
 * it reads a query's header, questions and EDNS payload size (RFC 6891), and writes answers with A, AAAA
 * and TXT records. Parsing is defensive: every read is bounds-checked, name compression pointers must
 * point backwards and are followed a bounded number of times, and anything malformed is a DnsFormatError
 * (answered FORMERR), never a crash.
 */
import { isIPv4 } from 'node:net';
import { formatIPv6, parseIPv6 } from '../addresses.ts';

export const TYPE_A = 1;
export const TYPE_TXT = 16;
export const TYPE_AAAA = 28;
export const TYPE_OPT = 41;
export const TYPE_ANY = 255;
export const CLASS_IN = 1;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;

/** DnsFormatError is a message this codec cannot read. */
export class DnsFormatError extends Error {
  override name = 'DnsFormatError';
}

export interface Question {
  /** name is lower-cased, without the trailing dot ('' for the root). */
  name: string;
  type: number;
  class: number;
}

export interface Query {
  id: number;
  /** flags is the second header word as sent (opcode, RD…). */
  flags: number;
  opcode: number;
  recursionDesired: boolean;
  isResponse: boolean;
  questions: Question[];
  /** udpSize is the requester's EDNS UDP payload size, or 512 without EDNS. */
  udpSize: number;
  edns: boolean;
}

export interface ResourceRecord {
  name: string;
  type: number;
  ttl: number;
  /** data is an address (A, AAAA) or the strings of a TXT record. */
  data: string | string[];
}

const MAX_POINTERS = 16;

function readName(buf: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let pos = start;
  let end = -1;
  let jumps = 0;
  let length = 0;
  for (;;) {
    if (pos >= buf.length) throw new DnsFormatError('name runs past the message');
    const len = buf[pos]!;
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) throw new DnsFormatError('truncated pointer');
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (target >= pos || ++jumps > MAX_POINTERS) throw new DnsFormatError('bad compression pointer');
      if (end < 0) end = pos + 2;
      pos = target;
      continue;
    }
    if (len & 0xc0) throw new DnsFormatError('unknown label type');
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    if (pos + 1 + len > buf.length) throw new DnsFormatError('label runs past the message');
    length += len + 1;
    if (length > 255) throw new DnsFormatError('name longer than 255 octets');
    labels.push(buf.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  return { name: labels.join('.').toLowerCase(), end };
}

/** parseQuery reads a DNS message's header, questions and OPT record. */
export function parseQuery(buf: Buffer): Query {
  if (buf.length < 12) throw new DnsFormatError('shorter than a header');
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  const ns = buf.readUInt16BE(8);
  const ar = buf.readUInt16BE(10);
  if (qd > 4) throw new DnsFormatError('too many questions');
  let pos = 12;
  const questions: Question[] = [];
  for (let i = 0; i < qd; i++) {
    const { name, end } = readName(buf, pos);
    if (end + 4 > buf.length) throw new DnsFormatError('truncated question');
    questions.push({ name, type: buf.readUInt16BE(end), class: buf.readUInt16BE(end + 2) });
    pos = end + 4;
  }
  let udpSize = 512;
  let edns = false;
  // Skip answers and authority (a query has none, normally), then look for OPT among the additionals.
  for (let i = 0; i < an + ns + ar && i < 64; i++) {
    const { end } = readName(buf, pos);
    if (end + 10 > buf.length) throw new DnsFormatError('truncated record');
    const type = buf.readUInt16BE(end);
    const rdlen = buf.readUInt16BE(end + 8);
    if (end + 10 + rdlen > buf.length) throw new DnsFormatError('record data runs past the message');
    if (i >= an + ns && type === TYPE_OPT) {
      edns = true;
      udpSize = Math.max(512, Math.min(buf.readUInt16BE(end + 2), 1232));
    }
    pos = end + 10 + rdlen;
  }
  return {
    id,
    flags,
    opcode: (flags >> 11) & 0xf,
    recursionDesired: (flags & 0x0100) !== 0,
    isResponse: (flags & 0x8000) !== 0,
    questions,
    udpSize,
    edns,
  };
}

function writeName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name ? name.split('.') : []) {
    const b = Buffer.from(label, 'latin1');
    if (b.length === 0 || b.length > 63) throw new RangeError(`bad label in ${name}`);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function rdata(rr: ResourceRecord): Buffer {
  if (rr.type === TYPE_A) {
    if (typeof rr.data !== 'string' || !isIPv4(rr.data)) throw new TypeError(`A record needs an IPv4 address`);
    return Buffer.from(rr.data.split('.').map(Number));
  }
  if (rr.type === TYPE_AAAA) return Buffer.from(parseIPv6(rr.data as string));
  if (rr.type === TYPE_TXT) {
    const strings = Array.isArray(rr.data) ? rr.data : [rr.data];
    return Buffer.concat(
      strings.flatMap((s) => {
        const b = Buffer.from(s, 'utf8');
        if (b.length > 255) throw new RangeError('TXT string longer than 255 octets');
        return [Buffer.from([b.length]), b];
      }),
    );
  }
  throw new TypeError(`record type ${rr.type} is not supported`);
}

function record(rr: ResourceRecord): Buffer {
  const data = rdata(rr);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(rr.type, 0);
  fixed.writeUInt16BE(CLASS_IN, 2);
  fixed.writeUInt32BE(rr.ttl, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([writeName(rr.name), fixed, data]);
}

/**
 * buildResponse answers a query. The first question is echoed (the only one answered: RFC 9619 makes
 * QDCOUNT 1 the norm); answers that do not fit maxSize are left out and TC is set (RFC 1035 §4.2.1), so
 * the client asks again over TCP. An OPT record is added when the query had one (RFC 6891 §7).
 */
export function buildResponse(q: Query, o: { rcode: number; answers?: ResourceRecord[]; authoritative?: boolean; maxSize?: number }): Buffer {
  const question = q.questions[0];
  const qbuf = question ? Buffer.concat([writeName(question.name), Buffer.from([question.type >> 8, question.type & 0xff, question.class >> 8, question.class & 0xff])]) : Buffer.alloc(0);
  const opt = q.edns ? Buffer.from([0, TYPE_OPT >> 8, TYPE_OPT & 0xff, 1232 >> 8, 1232 & 0xff, 0, 0, 0, 0, 0, 0]) : Buffer.alloc(0);
  const maxSize = o.maxSize ?? 65535;
  const answers: Buffer[] = [];
  let size = 12 + qbuf.length + opt.length;
  let truncated = false;
  for (const rr of o.answers ?? []) {
    const b = record(rr);
    if (size + b.length > maxSize) {
      truncated = true;
      break;
    }
    answers.push(b);
    size += b.length;
  }
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  let flags = 0x8000 | (q.opcode << 11) | (q.flags & 0x0100) | 0x0080 | (o.rcode & 0xf);
  if (o.authoritative) flags |= 0x0400;
  if (truncated) flags |= 0x0200;
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(question ? 1 : 0, 4);
  header.writeUInt16BE(answers.length, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(q.edns ? 1 : 0, 10);
  return Buffer.concat([header, qbuf, ...answers, opt]);
}

/** errorResponse answers a message whose header could be read but nothing more. */
export function errorResponse(buf: Buffer, rcode: number): Buffer | undefined {
  if (buf.length < 12) return undefined;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(buf.readUInt16BE(0), 0);
  header.writeUInt16BE(0x8000 | (buf.readUInt16BE(2) & 0x7900) | 0x0080 | rcode, 2);
  return header;
}

/** buildQuery writes a query (for tests and the forwarder's health checks). */
export function buildQuery(id: number, name: string, type: number, o: { edns?: boolean } = {}): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  if (o.edns) header.writeUInt16BE(1, 10);
  const q = Buffer.concat([writeName(name), Buffer.from([type >> 8, type & 0xff, 0, CLASS_IN])]);
  const opt = o.edns ? Buffer.from([0, TYPE_OPT >> 8, TYPE_OPT & 0xff, 1232 >> 8, 1232 & 0xff, 0, 0, 0, 0, 0, 0]) : Buffer.alloc(0);
  return Buffer.concat([header, q, opt]);
}

/** ParsedResponse is a response as a test or client reads it. */
export interface ParsedResponse {
  id: number;
  rcode: number;
  truncated: boolean;
  authoritative: boolean;
  answers: ResourceRecord[];
}

/** parseResponse reads a response's answers (A, AAAA and TXT; other types keep their hex). */
export function parseResponse(buf: Buffer): ParsedResponse {
  const q = parseQuery(Buffer.concat([buf.subarray(0, 6), Buffer.alloc(6), buf.subarray(12)]));
  const flags = buf.readUInt16BE(2);
  let pos = 12;
  for (let i = 0; i < q.questions.length; i++) pos = readName(buf, pos).end + 4;
  const answers: ResourceRecord[] = [];
  for (let i = 0; i < buf.readUInt16BE(6); i++) {
    const { name, end } = readName(buf, pos);
    if (end + 10 > buf.length) throw new DnsFormatError('truncated record');
    const type = buf.readUInt16BE(end);
    const ttl = buf.readUInt32BE(end + 4);
    const len = buf.readUInt16BE(end + 8);
    const d = buf.subarray(end + 10, end + 10 + len);
    if (d.length !== len) throw new DnsFormatError('record data runs past the message');
    let data: string | string[];
    if (type === TYPE_A) data = [...d].join('.');
    else if (type === TYPE_AAAA) data = formatIPv6(new Uint8Array(d));
    else if (type === TYPE_TXT) {
      const strings: string[] = [];
      for (let p = 0; p < d.length; p += 1 + d[p]!) strings.push(d.toString('utf8', p + 1, p + 1 + d[p]!));
      data = strings;
    } else data = d.toString('hex');
    answers.push({ name, type, ttl, data });
    pos = end + 10 + len;
  }
  return { id: q.id, rcode: flags & 0xf, truncated: (flags & 0x0200) !== 0, authoritative: (flags & 0x0400) !== 0, answers };
}
