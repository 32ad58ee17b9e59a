import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../../../core/index.ts';
import { checkDigest, digestHex, sha256, shortDigest } from './digest.ts';
import {
  MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, MEDIA_TYPES, parseJson, parseManifestOrIndex, selectPlatform,
  type Descriptor, type ImageIndex, type Platform,
} from './manifest.ts';
import { followToManifest, type ImageSource, type ResolvedImage } from './source.ts';
import { FileInput, readRange, readTar } from './tar.ts';
import { decompressed, detectCompression } from './unpack.ts';

/**
 * Local image sources, in the forms skopeo and podman write: `oci:DIR` (an OCI image layout),
 * `oci-archive:PATH` (a tar of one) and `docker-archive:PATH` (`docker save`: manifest.json, a config and
 * layer tars; newer Docker adds an OCI layout beside them). Archives are indexed once by reading tar
 * headers, then read by offset. A compressed archive (`docker save | gzip`) is decompressed to a temp
 * file in the store first.
 */

/** Files reads named files of a layout, in a directory or an archive. */
interface Files {
  read(name: string, max: number): Promise<Buffer>;
  open(name: string): Promise<{ size: number; stream: AsyncIterable<Buffer> }>;
  has(name: string): Promise<boolean>;
  close(): Promise<void>;
}

const OCI_REF_NAME = 'org.opencontainers.image.ref.name';
/** MAX_ARCHIVE_ENTRIES caps the files indexed in an archive (a layout has a handful per layer). */
const MAX_ARCHIVE_ENTRIES = 100_000;

function notFound(label: string, what: string, hint: string): UserError {
  return new UserError('image_not_found', `${label}: ${what}`, { hint });
}

function invalid(label: string, what: string, hint = 'the archive is corrupt or not in the format its prefix says'): UserError {
  return new UserError('image_invalid', `${label}: ${what}`, { hint });
}

/** DirFiles reads an OCI layout directory; names are the fixed layout names and digest paths Ward builds. */
class DirFiles implements Files {
  readonly #dir: string;
  readonly #label: string;
  constructor(dir: string, label: string) {
    this.#dir = dir;
    this.#label = label;
  }
  async read(name: string, max: number): Promise<Buffer> {
    const { size, stream } = await this.open(name);
    if (size > max) throw invalid(this.#label, `${name} is ${size} bytes, over the ${max}-byte limit`);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c);
    return Buffer.concat(chunks);
  }
  async open(name: string): Promise<{ size: number; stream: AsyncIterable<Buffer> }> {
    const p = join(this.#dir, name);
    let s;
    try {
      s = await stat(p);
    } catch {
      throw invalid(this.#label, `${name} is missing`, 'the OCI layout is incomplete');
    }
    if (!s.isFile()) throw invalid(this.#label, `${name} is not a file`);
    return { size: s.size, stream: createReadStream(p, { highWaterMark: 1024 * 1024 }) };
  }
  async has(name: string): Promise<boolean> {
    return stat(join(this.#dir, name)).then((s) => s.isFile(), () => false);
  }
  async close(): Promise<void> {}
}

interface IndexedFile {
  offset: number;
  size: number;
  linkpath?: string;
}

/** cleanArchiveName normalizes a member name (`./blobs//x` → `blobs/x`); names with `..` are dropped (undefined). */
function cleanArchiveName(name: string): string | undefined {
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) return undefined;
  return parts.join('/');
}

/** TarFiles reads members of a tar archive by offset, after one pass over its headers. */
class TarFiles implements Files {
  readonly #fh: FileHandle;
  readonly #files: Map<string, IndexedFile>;
  readonly #label: string;
  readonly #temp: string | undefined;

  private constructor(fh: FileHandle, files: Map<string, IndexedFile>, label: string, temp: string | undefined) {
    this.#fh = fh;
    this.#files = files;
    this.#label = label;
    this.#temp = temp;
  }

  static async open(path: string, label: string, tempPath: () => string, maxBytes: number): Promise<TarFiles> {
    let s;
    try {
      s = await stat(path);
    } catch {
      throw notFound(label, `no such file ${path}`, 'check the path; create the archive with `skopeo copy … oci-archive:PATH` or `docker save -o PATH`');
    }
    if (!s.isFile()) throw notFound(label, `${path} is not a file`, 'oci-archive: and docker-archive: name a tar file; use oci: for a directory');
    let file = path;
    let temp: string | undefined;
    const compression = await detectCompression(path);
    if (compression !== 'none') {
      temp = tempPath();
      file = temp;
      try {
        await pipeline(decompressed(path, compression), capped(maxBytes, label), createWriteStream(temp, { mode: 0o600 }));
      } catch (e) {
        await rm(temp, { force: true });
        if (e instanceof UserError) throw e;
        throw invalid(label, `cannot decompress the archive (${(e as Error).message})`);
      }
    }
    const fh = await open(file, 'r');
    try {
      const size = (await fh.stat()).size;
      const files = new Map<string, IndexedFile>();
      for await (const entry of readTar(new FileInput(fh, size, label), label)) {
        const name = cleanArchiveName(entry.header.path);
        if (name === undefined) continue;
        if (files.size >= MAX_ARCHIVE_ENTRIES) throw invalid(label, `more than ${MAX_ARCHIVE_ENTRIES} files`);
        if (entry.header.type === 'file') files.set(name, { offset: entry.offset, size: entry.header.size });
        else if (entry.header.type === 'symlink' || entry.header.type === 'hardlink') {
          // docker save links repeated layers to the first copy: relative symlinks, or hardlinks by member name.
          const target = entry.header.type === 'symlink' ? posix.join(posix.dirname(name), entry.header.linkpath) : entry.header.linkpath;
          files.set(name, { offset: 0, size: 0, linkpath: target });
        }
      }
      return new TarFiles(fh, files, label, temp);
    } catch (e) {
      await fh.close();
      if (temp) await rm(temp, { force: true });
      throw e;
    }
  }

  #lookup(name: string): IndexedFile | undefined {
    let f = this.#files.get(name);
    for (let hops = 0; f?.linkpath !== undefined && hops < 8; hops++) {
      const target = cleanArchiveName(f.linkpath);
      f = target === undefined ? undefined : this.#files.get(target);
    }
    return f?.linkpath === undefined ? f : undefined;
  }

  async read(name: string, max: number): Promise<Buffer> {
    const { size, stream } = await this.open(name);
    if (size > max) throw invalid(this.#label, `${name} is ${size} bytes, over the ${max}-byte limit`);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c);
    return Buffer.concat(chunks);
  }
  async open(name: string): Promise<{ size: number; stream: AsyncIterable<Buffer> }> {
    const f = this.#lookup(name);
    if (!f) throw invalid(this.#label, `${name} is missing from the archive`, 'the archive is incomplete or truncated; export it again');
    return { size: f.size, stream: readRange(this.#fh, f.offset, f.size) };
  }
  async has(name: string): Promise<boolean> {
    return this.#lookup(name) !== undefined;
  }
  async close(): Promise<void> {
    await this.#fh.close();
    if (this.#temp) await rm(this.#temp, { force: true });
  }
}

function capped(max: number, label: string) {
  return async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    let n = 0;
    for await (const c of source) {
      n += c.length;
      if (n > max) throw invalid(label, `decompresses to more than ${max} bytes`, 'raise the image size limit, or make the image smaller');
      yield c;
    }
  };
}

function blobName(digest: string): string {
  return `blobs/sha256/${digestHex(digest)}`;
}

/** LayoutSource reads an OCI image layout (oci: and oci-archive:). */
class LayoutSource implements ImageSource {
  readonly label: string;
  readonly #files: Files;
  readonly #selector: string | undefined;

  constructor(files: Files, label: string, selector: string | undefined) {
    this.#files = files;
    this.label = label;
    this.#selector = selector;
  }

  async resolve(platform: Platform): Promise<ResolvedImage> {
    if (!(await this.#files.has('oci-layout'))) {
      throw invalid(this.label, 'this is not an OCI image layout (no oci-layout file)', 'for `docker save` output use docker-archive:');
    }
    const layout = parseJson(await this.#files.read('oci-layout', 64 * 1024), `${this.label}: oci-layout`);
    if (typeof layout.imageLayoutVersion !== 'string' || !layout.imageLayoutVersion.startsWith('1.')) {
      throw invalid(this.label, `unsupported imageLayoutVersion ${JSON.stringify(layout.imageLayoutVersion)}`);
    }
    const indexBytes = await this.#files.read('index.json', MAX_MANIFEST_SIZE);
    const index = parseManifestOrIndex(indexBytes, `${this.label}: index.json`, MEDIA_TYPES.ociIndex);
    if (index.kind !== 'index') throw invalid(this.label, 'index.json is not an image index');
    const read = async (d: Descriptor) => ({ bytes: await this.#files.read(blobName(d.digest), MAX_MANIFEST_SIZE), mediaType: d.mediaType });
    const chosen = this.#choose(index, platform);
    return followToManifest({ descriptor: chosen }, read, platform, this.label);
  }

  #choose(index: ImageIndex, platform: Platform): Descriptor {
    const named = (d: Descriptor) => d.annotations?.[OCI_REF_NAME];
    if (this.#selector !== undefined) {
      const sel = this.#selector;
      const hits = index.manifests.filter((d) => named(d) === sel);
      if (hits.length === 0) {
        const names = index.manifests.map(named).filter((n) => n !== undefined);
        throw notFound(this.label, `no image named ${JSON.stringify(sel)}`, names.length ? `the layout has ${names.map((n) => JSON.stringify(n)).join(', ')}` : 'the layout names no images; leave the name out');
      }
      return hits.length === 1 ? hits[0]! : selectPlatform({ ...index, manifests: hits }, platform, this.label);
    }
    if (index.manifests.length === 1) return index.manifests[0]!;
    if (index.manifests.length === 0) throw notFound(this.label, 'the layout holds no image', 'export an image into it');
    const names = new Set(index.manifests.map(named));
    if (names.size > 1) {
      throw invalid(this.label, 'the layout holds several images', `name one: ${[...names].filter(Boolean).map((n) => `…:${n}`).join(', ')}`);
    }
    // Several manifests under one name (or none): the index.json itself is a multi-platform index.
    return selectPlatform(index, platform, this.label);
  }

  async blob(d: Descriptor): Promise<AsyncIterable<Buffer>> {
    return (await this.#files.open(blobName(checkDigest(d.digest, this.label)))).stream;
  }

  close(): Promise<void> {
    return this.#files.close();
  }
}

interface DockerManifestEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/**
 * DockerArchiveSource reads `docker save` output. It has no registry manifest, so one is made: an OCI
 * manifest whose config digest is the config file's and whose layer digests are those of the layer files
 * (a layer tar named by its digest, or an uncompressed one, whose digest is its DiffID; any other layer is
 * hashed once here). The blob store verifies every blob against these while importing, and the unpacker
 * checks each layer against the config's DiffIDs.
 */
class DockerArchiveSource implements ImageSource {
  readonly label: string;
  readonly #files: TarFiles;
  readonly #selector: string | undefined;
  readonly #paths = new Map<string, string>();

  constructor(files: TarFiles, label: string, selector: string | undefined) {
    this.#files = files;
    this.label = label;
    this.#selector = selector;
  }

  async resolve(platform: Platform): Promise<ResolvedImage> {
    void platform; // checked against the config by the store, like every other source
    if (!(await this.#files.has('manifest.json'))) {
      const hint = (await this.#files.has('index.json')) ? 'this is an OCI archive: use oci-archive:' : 'create it with `docker save -o PATH IMAGE` or `skopeo copy … docker-archive:PATH`';
      throw invalid(this.label, 'this is not a docker-archive (no manifest.json)', hint);
    }
    const raw: unknown = JSON.parse((await this.#files.read('manifest.json', MAX_MANIFEST_SIZE)).toString('utf8'));
    if (!Array.isArray(raw) || raw.length === 0) throw invalid(this.label, 'manifest.json lists no image');
    const entries = raw.map((e, i): DockerManifestEntry => {
      const ok = typeof e === 'object' && e !== null && typeof e.Config === 'string' && Array.isArray(e.Layers) && e.Layers.every((l: unknown) => typeof l === 'string');
      if (!ok) throw invalid(this.label, `manifest.json entry ${i} is malformed`);
      return { Config: e.Config, Layers: e.Layers, RepoTags: Array.isArray(e.RepoTags) ? e.RepoTags.filter((t: unknown) => typeof t === 'string') : [] };
    });
    const entry = this.#choose(entries);

    const configBytes = await this.#files.read(entry.Config, MAX_CONFIG_SIZE);
    const configDigest = sha256(configBytes);
    const named = /(?:^|\/)(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(entry.Config)?.[1];
    if (named !== undefined && `sha256:${named}` !== configDigest) {
      throw new UserError('image_invalid', `${this.label}: config ${entry.Config} failed verification: its content has digest ${configDigest}`, {
        hint: 'the archive was altered or corrupted; export it again',
      });
    }
    const config = parseJson(configBytes, `${this.label}: config`);
    const diffIds = (config.rootfs as { diff_ids?: unknown } | undefined)?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== entry.Layers.length) {
      throw invalid(this.label, `the config lists ${Array.isArray(diffIds) ? diffIds.length : 'no'} DiffIDs for ${entry.Layers.length} layers`);
    }
    this.#paths.set(configDigest, entry.Config);
    const layers: Descriptor[] = [];
    for (const [i, path] of entry.Layers.entries()) {
      const { size, stream } = await this.#files.open(path);
      const head = await peek(stream, 4);
      const compression = head[0] === 0x1f && head[1] === 0x8b ? 'gzip' : head.length === 4 && head.readUInt32LE(0) === 0xfd2fb528 ? 'zstd' : 'none';
      const byName = /(?:^|\/)blobs\/sha256\/([a-f0-9]{64})$/.exec(path)?.[1];
      let digest: string;
      if (byName !== undefined) digest = `sha256:${byName}`;
      else if (compression === 'none') digest = checkDigest(diffIds[i], `${this.label}: config rootfs.diff_ids[${i}]`);
      else digest = await hashStream((await this.#files.open(path)).stream);
      this.#paths.set(digest, path);
      layers.push({
        mediaType: compression === 'gzip' ? MEDIA_TYPES.ociLayerGzip : compression === 'zstd' ? MEDIA_TYPES.ociLayerZstd : MEDIA_TYPES.ociLayer,
        digest,
        size,
      });
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: MEDIA_TYPES.ociConfig, digest: configDigest, size: configBytes.length },
      layers,
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const parsed = parseManifestOrIndex(manifestBytes, `${this.label}: manifest`);
    if (parsed.kind !== 'manifest') throw new Error('unreachable: a made manifest parsed as an index');
    return { manifest: parsed, manifestBytes, manifestDigest: sha256(manifestBytes) };
  }

  #choose(entries: DockerManifestEntry[]): DockerManifestEntry {
    const sel = this.#selector;
    if (sel === undefined) {
      if (entries.length === 1) return entries[0]!;
      throw invalid(this.label, `the archive holds ${entries.length} images`, `name one: docker-archive:PATH:NAME:TAG or docker-archive:PATH:@N (${entries.flatMap((e) => e.RepoTags).join(', ')})`);
    }
    if (sel.startsWith('@')) {
      const e = entries[Number(sel.slice(1))];
      if (!e) throw notFound(this.label, `no image ${sel} (the archive holds ${entries.length})`, 'images are counted from @0');
      return e;
    }
    const short = (t: string) => t.replace(/^docker\.io\/(library\/)?/, '');
    const e = entries.find((x) => x.RepoTags.some((t) => t === sel || short(t) === short(sel)));
    if (!e) throw notFound(this.label, `no image tagged ${JSON.stringify(sel)}`, `the archive has ${entries.flatMap((x) => x.RepoTags).join(', ') || 'no tags'}`);
    return e;
  }

  async blob(d: Descriptor): Promise<AsyncIterable<Buffer>> {
    const path = this.#paths.get(d.digest);
    if (path === undefined) throw invalid(this.label, `no blob ${shortDigest(d.digest)} in the archive`);
    return (await this.#files.open(path)).stream;
  }

  close(): Promise<void> {
    return this.#files.close();
  }
}

/** peek returns the first n bytes of a stream and closes it. */
async function peek(stream: AsyncIterable<Buffer>, n: number): Promise<Buffer> {
  const it = stream[Symbol.asyncIterator]();
  const r = await it.next();
  await it.return?.();
  return r.done ? Buffer.alloc(0) : r.value.subarray(0, n);
}

async function hashStream(stream: AsyncIterable<Buffer>): Promise<string> {
  const h = createHash('sha256');
  for await (const c of stream) h.update(c);
  return `sha256:${h.digest('hex')}`;
}

/** LocalSourceOptions say where a compressed archive may be decompressed, and how large it may get. */
export interface LocalSourceOptions {
  tempPath: () => string;
  maxBytes: number;
}

/** openLocalSource opens an oci:, oci-archive: or docker-archive: reference. */
export async function openLocalSource(transport: 'oci' | 'oci-archive' | 'docker-archive', path: string, selector: string | undefined, opts: LocalSourceOptions): Promise<ImageSource> {
  const label = `${transport}:${path}`;
  if (transport === 'oci') {
    const s = await stat(path).catch(() => undefined);
    if (!s) throw notFound(label, `no such directory ${path}`, 'create the layout with `skopeo copy … oci:DIR` or `umoci init`');
    if (!s.isDirectory()) throw notFound(label, `${path} is not a directory`, 'oci: names a directory; use oci-archive: for a tar file');
    return new LayoutSource(new DirFiles(path, label), label, selector);
  }
  const files = await TarFiles.open(path, label, opts.tempPath, opts.maxBytes);
  return transport === 'oci-archive' ? new LayoutSource(files, label, selector) : new DockerArchiveSource(files, label, selector);
}
