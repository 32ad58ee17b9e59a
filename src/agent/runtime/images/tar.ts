import { UserError } from '../../../core/index.ts';
import type { FileHandle } from 'node:fs/promises';

/**
 * A small tar reader and writer. Image layers and archives are untrusted input, so the reader is strict
 * about framing (checksums, numeric fields, sizes, truncation) and bounded (meta headers are capped), and
 * it knows the extensions real tools write: POSIX ustar with its prefix field, pax extended headers
 * (path, linkpath, size, uid, gid, mtime) and GNU long names (`L`/`K`). It only parses: what an entry may
 * do to a file system is the unpacker's decision (unpack.ts).
 */

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** MAX_META_SIZE caps a pax header or GNU long name body: real ones are a few hundred bytes. */
const MAX_META_SIZE = 1024 * 1024;

/** TarEntryType is what an entry makes; `other` types (sparse files, volume labels…) are refused by the unpacker. */
export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo' | 'other';

/** TarHeader is one entry after its pax and GNU meta headers were applied. */
export interface TarHeader {
  /** path is the entry's name as stored (not yet cleaned: may hold `..`, a leading `/`, `./`). */
  path: string;
  type: TarEntryType;
  /** typeflag is the raw type byte, for messages about `other` entries. */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  /** size is the number of body bytes that follow (0 for header-only types, as Go's archive/tar reads them). */
  size: number;
  /** mtime is in seconds since the epoch. */
  mtime: number;
  /** linkpath is the target of a symlink or hardlink, '' otherwise. */
  linkpath: string;
  devmajor: number;
  devminor: number;
}

/** TarInput is where the reader gets bytes: a stream (layers) or positional reads of a file (archives). */
export interface TarInput {
  /** position is the offset of the next unread byte. */
  readonly position: number;
  /** read returns exactly n bytes, null at a clean end (no byte left), and throws on a short read. */
  read(n: number): Promise<Buffer | null>;
  /** body yields the next n bytes in chunks; the caller must consume all of them. */
  body(n: number): AsyncIterable<Buffer>;
  /** skip drops the next n bytes. */
  skip(n: number): Promise<void>;
  /** skipAtMost drops up to n bytes, fewer at the end of the input, and returns how many it dropped. */
  skipAtMost(n: number): Promise<number>;
}

/** TarEntry is a header and, for files, its body (readable once, before the next entry is requested). */
export interface TarEntry {
  header: TarHeader;
  /** offset is where the body starts in the input (for archive indexes). */
  offset: number;
  body(): AsyncIterable<Buffer>;
}

function invalid(label: string, message: string): UserError {
  return new UserError('image_invalid', `${label}: ${message}`, {
    hint: 'the archive or layer is corrupt, truncated or not a tar file; rebuild or re-export the image',
  });
}

/** StreamInput reads a tar from chunks (a decompressed layer), counting what passes. */
export class StreamInput implements TarInput {
  #it: AsyncIterator<Buffer | Uint8Array>;
  #buf: Buffer = Buffer.alloc(0);
  #done = false;
  #position = 0;
  readonly #label: string;

  constructor(source: AsyncIterable<Buffer | Uint8Array>, label: string) {
    this.#it = source[Symbol.asyncIterator]();
    this.#label = label;
  }

  get position(): number {
    return this.#position;
  }

  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    for (;;) {
      const r = await this.#it.next();
      if (r.done) {
        this.#done = true;
        return false;
      }
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      if (chunk.length === 0) continue;
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      return true;
    }
  }

  async read(n: number): Promise<Buffer | null> {
    while (this.#buf.length < n) {
      if (!(await this.#fill())) {
        if (this.#buf.length === 0) return null;
        throw invalid(this.#label, `truncated at byte ${this.#position + this.#buf.length}`);
      }
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    this.#position += n;
    return out;
  }

  async *body(n: number): AsyncIterable<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0 && !(await this.#fill())) {
        throw invalid(this.#label, `truncated at byte ${this.#position}`);
      }
      const take = Math.min(left, this.#buf.length);
      const out = this.#buf.subarray(0, take);
      this.#buf = this.#buf.subarray(take);
      this.#position += take;
      left -= take;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.body(n));
  }

  async skipAtMost(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0 && !(await this.#fill())) break;
      const take = Math.min(left, this.#buf.length);
      this.#buf = this.#buf.subarray(take);
      this.#position += take;
      left -= take;
    }
    return n - left;
  }

  /** drain reads to the end of the source (so a hash over all of it completes). */
  async drain(): Promise<void> {
    this.#position += this.#buf.length;
    this.#buf = Buffer.alloc(0);
    while (await this.#fill()) {
      this.#position += this.#buf.length;
      this.#buf = Buffer.alloc(0);
    }
  }
}

/** FileInput reads a tar file by position: an archive index skips bodies without reading them. */
export class FileInput implements TarInput {
  readonly #fh: FileHandle;
  readonly #size: number;
  readonly #label: string;
  #position: number;

  constructor(fh: FileHandle, size: number, label: string, start = 0) {
    this.#fh = fh;
    this.#size = size;
    this.#label = label;
    this.#position = start;
  }

  get position(): number {
    return this.#position;
  }

  async read(n: number): Promise<Buffer | null> {
    if (this.#position >= this.#size) return null;
    if (this.#position + n > this.#size) throw invalid(this.#label, `truncated at byte ${this.#size}`);
    const buf = Buffer.alloc(n);
    const { bytesRead } = await this.#fh.read(buf, 0, n, this.#position);
    if (bytesRead !== n) throw invalid(this.#label, `truncated at byte ${this.#position + bytesRead}`);
    this.#position += n;
    return buf;
  }

  async *body(n: number): AsyncIterable<Buffer> {
    if (this.#position + n > this.#size) throw invalid(this.#label, `truncated: an entry runs past the end (${this.#size} bytes)`);
    const start = this.#position;
    this.#position += n;
    yield* readRange(this.#fh, start, n);
  }

  async skip(n: number): Promise<void> {
    if (this.#position + n > this.#size) throw invalid(this.#label, `truncated: an entry runs past the end (${this.#size} bytes)`);
    this.#position += n;
  }

  async skipAtMost(n: number): Promise<number> {
    const take = Math.max(0, Math.min(n, this.#size - this.#position));
    this.#position += take;
    return take;
  }
}

/** readRange yields n bytes of a file from offset start, in chunks of at most 1 MiB. */
export async function* readRange(fh: FileHandle, start: number, n: number): AsyncIterable<Buffer> {
  let pos = start;
  let left = n;
  while (left > 0) {
    const buf = Buffer.alloc(Math.min(left, 1024 * 1024));
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) throw new UserError('image_invalid', `file ended at byte ${pos}, expected ${start + n}`, { hint: 'the archive is truncated' });
    pos += bytesRead;
    left -= bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

function cString(buf: Buffer, start: number, len: number): string {
  const field = buf.subarray(start, start + len);
  const nul = field.indexOf(0);
  return (nul === -1 ? field : field.subarray(0, nul)).toString('utf8');
}

/**
 * parseNumber reads a numeric header field: NUL/space-terminated octal, or GNU base-256 (high bit set)
 * for values that do not fit. Negative base-256 values are refused.
 */
function parseNumber(buf: Buffer, start: number, len: number, label: string, field: string): number {
  const f = buf.subarray(start, start + len);
  if (f[0]! & 0x80) {
    if (f[0]! & 0x40) throw invalid(label, `negative ${field} in a tar header`);
    let v = BigInt(f[0]! & 0x3f);
    for (let i = 1; i < f.length; i++) v = (v << 8n) | BigInt(f[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(label, `${field} too large in a tar header`);
    return Number(v);
  }
  const s = f.toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw invalid(label, `bad ${field} ${JSON.stringify(s)} in a tar header`);
  const v = parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw invalid(label, `${field} too large in a tar header`);
  return v;
}

function checksumOk(block: Buffer, label: string): boolean {
  const stored = parseNumber(block, 148, 8, label, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'directory', '6': 'fifo',
};
/** HEADER_ONLY types carry no body whatever their size field says (as Go's archive/tar, which builders use). */
const HEADER_ONLY = new Set<TarEntryType>(['hardlink', 'symlink', 'char', 'block', 'directory', 'fifo']);

/** parsePax reads pax records (`LEN key=value\n`). */
function parsePax(body: Buffer, label: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < body.length) {
    if (body[i] === 0) break; // some writers pad with NULs
    const sp = body.indexOf(0x20, i);
    if (sp === -1) throw invalid(label, 'malformed pax header');
    const len = Number(body.toString('latin1', i, sp));
    if (!Number.isSafeInteger(len) || len <= sp - i || i + len > body.length) throw invalid(label, 'malformed pax record length');
    const rec = body.subarray(sp + 1, i + len);
    if (rec[rec.length - 1] !== 0x0a) throw invalid(label, 'malformed pax record');
    const eq = rec.indexOf(0x3d);
    if (eq === -1) throw invalid(label, 'malformed pax record');
    const key = rec.toString('utf8', 0, eq);
    const value = rec.toString('utf8', eq + 1, rec.length - 1);
    if (value.includes('\0')) throw invalid(label, `pax ${key} holds a NUL byte`);
    out.set(key, value);
    i += len;
  }
  return out;
}

function paxNumber(pax: Map<string, string>, key: string, label: string): number | undefined {
  const v = pax.get(key);
  if (v === undefined) return undefined;
  // mtime may be fractional; the rest are integers.
  if (!/^\d+(\.\d+)?$/.test(v)) throw invalid(label, `bad pax ${key} ${JSON.stringify(v)}`);
  const n = key === 'mtime' ? Math.floor(Number(v)) : Number(v);
  if (!Number.isSafeInteger(n) || (key !== 'mtime' && v.includes('.'))) throw invalid(label, `bad pax ${key} ${JSON.stringify(v)}`);
  return n;
}

async function readMeta(input: TarInput, size: number, label: string, what: string): Promise<Buffer> {
  if (size > MAX_META_SIZE) throw invalid(label, `${what} of ${size} bytes is over the ${MAX_META_SIZE}-byte limit`);
  const padded = size + ((BLOCK - (size % BLOCK)) % BLOCK);
  const buf = size === 0 ? Buffer.alloc(0) : await input.read(padded);
  if (buf === null) throw invalid(label, 'truncated after a meta header');
  return buf.subarray(0, size);
}

/**
 * readTar yields the entries of a tar. Each entry's body must be read (or left: the reader skips what is
 * left) before asking for the next. It stops at the end-of-archive marker (or a clean end of input) and
 * throws UserError `image_invalid` on a bad checksum, a malformed field or truncation. `label` names the
 * input in messages.
 */
export async function* readTar(input: TarInput, label: string): AsyncGenerator<TarEntry> {
  let pax: Map<string, string> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await input.read(BLOCK);
    if (block === null) {
      if (pax || longName !== undefined || longLink !== undefined) throw invalid(label, 'truncated after a meta header');
      return;
    }
    if (block.equals(ZERO_BLOCK)) return; // end-of-archive; a second zero block and padding may follow
    if (!checksumOk(block, label)) throw invalid(label, `bad tar header checksum at byte ${input.position - BLOCK}`);
    const typeflag = String.fromCharCode(block[156]!);
    const rawSize = parseNumber(block, 124, 12, label, 'size');
    if (typeflag === 'x') {
      pax = parsePax(await readMeta(input, rawSize, label, 'a pax header'), label);
      continue;
    }
    if (typeflag === 'g') {
      // Global pax headers set defaults nobody uses in layers; read and drop them (bounded like the rest).
      await readMeta(input, rawSize, label, 'a global pax header');
      continue;
    }
    if (typeflag === 'L' || typeflag === 'K') {
      const body = await readMeta(input, rawSize, label, 'a GNU long name');
      const nul = body.indexOf(0);
      const value = (nul === -1 ? body : body.subarray(0, nul)).toString('utf8');
      if (typeflag === 'L') longName = value;
      else longLink = value;
      continue;
    }
    const magic = block.toString('latin1', 257, 263);
    const ustar = magic === 'ustar\0';
    let name = cString(block, 0, 100);
    if (ustar) {
      const prefix = cString(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    let type: TarEntryType = TYPES[typeflag] ?? 'other';
    let path = pax?.get('path') ?? longName ?? name;
    if (type === 'file' && (typeflag === '\0' || typeflag === '0') && path.endsWith('/')) type = 'directory'; // old tars
    const size = paxNumber(pax ?? new Map(), 'size', label) ?? rawSize;
    const header: TarHeader = {
      path,
      type,
      typeflag,
      mode: parseNumber(block, 100, 8, label, 'mode') & 0o7777,
      uid: paxNumber(pax ?? new Map(), 'uid', label) ?? parseNumber(block, 108, 8, label, 'uid'),
      gid: paxNumber(pax ?? new Map(), 'gid', label) ?? parseNumber(block, 116, 8, label, 'gid'),
      size: HEADER_ONLY.has(type) ? 0 : size,
      mtime: paxNumber(pax ?? new Map(), 'mtime', label) ?? parseNumber(block, 136, 12, label, 'mtime'),
      linkpath: pax?.get('linkpath') ?? longLink ?? cString(block, 157, 100),
      devmajor: type === 'char' || type === 'block' ? parseNumber(block, 329, 8, label, 'devmajor') : 0,
      devminor: type === 'char' || type === 'block' ? parseNumber(block, 337, 8, label, 'devminor') : 0,
    };
    if (path.includes('\0') || header.linkpath.includes('\0')) throw invalid(label, 'a name holds a NUL byte');
    if (pax && [...pax.keys()].some((k) => k.startsWith('GNU.sparse.'))) header.type = 'other'; // sparse files: refused
    pax = undefined;
    longName = undefined;
    longLink = undefined;

    // Header-only types never have a body, whatever their size field says: Go's archive/tar (which
    // builders use) reads them so, and framing must match the tool that wrote the layer.
    const bodySize = header.size;
    const padding = (BLOCK - (bodySize % BLOCK)) % BLOCK;
    const offset = input.position;
    let consumed = false;
    let started = false;
    yield {
      header,
      offset,
      body: () => {
        if (started) throw new Error('tar entry body read twice');
        started = true;
        return (async function* () {
          yield* input.body(bodySize);
          consumed = true;
        })();
      },
    };
    if (!started) await input.skip(bodySize);
    else if (!consumed) throw new Error('tar entry body not fully read before the next entry');
    // umoci ends its layers right after the last body, without padding or end-of-archive blocks; other
    // readers (and the layer's DiffID) accept that, so a short final padding is an end, not a truncation.
    if (padding && (await input.skipAtMost(padding)) < padding) return;
  }
}

/** TarWriteEntry is one entry for writeTar; `data` only for files. */
export interface TarWriteEntry {
  path: string;
  type: Exclude<TarEntryType, 'other'> | { typeflag: string };
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkpath?: string;
  data?: Buffer | string;
  /** size overrides data.length in the header (to write lying headers in tests). */
  size?: number;
  devmajor?: number;
  devminor?: number;
}

const TYPEFLAGS: Record<Exclude<TarEntryType, 'other'>, string> = {
  file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', directory: '5', fifo: '6',
};

function octal(buf: Buffer, start: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, '0') + '\0', start, len, 'latin1');
}

function header(name: string, typeflag: string, e: TarWriteEntry, size: number, linkname: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'utf8');
  octal(b, 100, 8, e.mode ?? (typeflag === '5' ? 0o755 : 0o644));
  octal(b, 108, 8, e.uid ?? 0);
  octal(b, 116, 8, e.gid ?? 0);
  octal(b, 124, 12, size);
  octal(b, 136, 12, e.mtime ?? 0);
  b.write(typeflag, 156, 1, 'latin1');
  b.write(linkname, 157, 100, 'utf8');
  b.write('ustar\0' + '00', 257, 8, 'latin1');
  octal(b, 329, 8, e.devmajor ?? 0);
  octal(b, 337, 8, e.devminor ?? 0);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function pad(n: number): Buffer {
  return Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);
}

/**
 * writeTar builds a tar in memory: ustar headers, with a pax header for names or link targets over 100
 * bytes. Ward uses it to write test images (including evil ones: nothing here is validated).
 */
export function writeTar(entries: readonly TarWriteEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const typeflag = typeof e.type === 'string' ? TYPEFLAGS[e.type] : e.type.typeflag;
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const linkpath = e.linkpath ?? '';
    const records: string[] = [];
    if (Buffer.byteLength(e.path) > 100) records.push(paxRecord('path', e.path));
    if (Buffer.byteLength(linkpath) > 100) records.push(paxRecord('linkpath', linkpath));
    if (records.length) {
      const body = Buffer.from(records.join(''));
      parts.push(header('PaxHeader', 'x', {} as TarWriteEntry, body.length, ''), body, pad(body.length));
    }
    const size = e.size ?? data.length;
    parts.push(header(e.path.slice(0, 100), typeflag, e, size, linkpath.slice(0, 100)));
    if (data.length) parts.push(data, pad(data.length));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
