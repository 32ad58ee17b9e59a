import { chmod, chown, lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../../core/index.ts';
import { openLocalSource } from './archive.ts';
import { BlobStore } from './blobs.ts';
import { chainId, checkDigest, digestHex, shortDigest } from './digest.ts';
import {
  checkConfigMatches, formatPlatform, hostPlatform, MAX_CONFIG_SIZE, parseConfig,
  type Descriptor, type ImageConfig, type Platform,
} from './manifest.ts';
import { formatReference, parseReference } from './reference.ts';
import { RegistryClient, type RegistryOptions } from './registry.ts';
import type { ImageSource } from './source.ts';
import { DEFAULT_LIMITS, unpackLayers, type IdMapping, type UnpackLimits } from './unpack.ts';

/**
 * The image store: `<dataDir>/images` holds
 *
 *   blobs/sha256/<hex>          every manifest, index, config and layer, by content (BlobStore)
 *   images/<hex>.json           one record per image, by manifest digest: refs, config, layers, snapshot
 *   snapshots/<hex>/rootfs      an unpacked rootfs, keyed by the ChainID of its layers; never written
 *                               again once renamed into place
 *   snapshots/<hex>/snapshot.json
 *   tmp/                        blobs and snapshots being written; renamed into place when complete
 *
 * Everything is written to tmp/ first and renamed, so a crash leaves only tmp/ entries (gc removes them)
 * and a failed pull leaves no partial blob or snapshot behind.
 */

/** DEFAULT_ID_MAPPING matches the runtime's: container uid 0 is host uid 100000, 65536 ids. */
export const DEFAULT_ID_MAPPING: IdMapping = { containerId: 0, hostId: 100_000, size: 65_536 };

export interface ImageStoreOptions {
  /** dataDir is Ward's data directory; the store lives in `<dataDir>/images`. */
  dataDir: string;
  registry?: RegistryOptions;
  limits?: Partial<UnpackLimits>;
  /** idMapping owns unpacked files (default DEFAULT_ID_MAPPING); null keeps the caller's ids (non-root development). */
  idMapping?: IdMapping | null;
  /** platform to pull for; default this host's (linux/amd64 here). */
  platform?: Platform;
  /** blobConcurrency is how many blobs one pull fetches at once; default 3. */
  blobConcurrency?: number;
}

/** ImageEvent reports a pull's progress (for the CLI's progress lines and the agent's log). */
export type ImageEvent =
  | { type: 'resolved'; ref: string; digest: string; layers: number; downloadSize: number }
  | { type: 'blob'; kind: 'config' | 'layer'; digest: string; size: number; cached: boolean }
  | { type: 'progress'; digest: string; bytes: number; total: number }
  | { type: 'blob-done'; digest: string; size: number }
  | { type: 'unpacking'; chainId: string; layers: number }
  | { type: 'layer'; index: number; digest: string }
  | { type: 'unpacked'; chainId: string; size: number; entries: number; stripped: string[] }
  | { type: 'snapshot-cached'; chainId: string }
  | { type: 'done'; digest: string; rootfs: string };

export interface PullOptions {
  onEvent?: (e: ImageEvent) => void;
  /**
   * policy `always` (default) resolves the reference at its source every time (a tag may have moved) and
   * fetches only missing blobs; `missing` uses a stored image with this reference when there is one.
   * A reference by digest never needs the source once stored.
   */
  policy?: 'always' | 'missing';
}

/** Image is a stored image, ready to run: its config and the path of its read-only rootfs. */
export interface Image {
  /** ref is the reference it was last pulled by (canonical form). */
  ref: string;
  refs: string[];
  /** digest is the manifest's digest (for a multi-platform image, this platform's manifest). */
  digest: string;
  /** indexDigest is the digest of the index the manifest was chosen from, when there was one. */
  indexDigest?: string;
  config: ImageConfig;
  platform: string;
  rootfs: string;
  chainId: string;
  /** size is the bytes of file content in the rootfs; downloadSize the stored (compressed) layers. */
  size: number;
  downloadSize: number;
  layers: number;
  pulledAt: string;
}

interface ImageRecord {
  version: 1;
  digest: string;
  indexDigest?: string;
  refs: string[];
  configDigest: string;
  layers: Descriptor[];
  diffIds: string[];
  chainId: string;
  platform: string;
  config: ImageConfig;
  size: number;
  pulledAt: string;
}

interface SnapshotMeta {
  chainId: string;
  size: number;
  entries: number;
  createdAt: string;
}

/** GcResult says what gc removed. */
export interface GcResult {
  blobs: number;
  snapshots: number;
  temp: number;
  bytes: number;
}

const TMP_MAX_AGE_MS = 60 * 60 * 1000;

/**
 * ImageStore pulls images from registries and local archives into the data dir, verifies every blob and
 * unpacks each layer stack once into a read-only rootfs snapshot. Safe for concurrent pulls within one
 * process; one store per data dir per host.
 */
export class ImageStore {
  readonly dir: string;
  readonly #blobs: BlobStore;
  readonly #records: string;
  readonly #snapshots: string;
  readonly #tmp: string;
  readonly #opts: ImageStoreOptions;
  readonly #limits: UnpackLimits;
  readonly #idMapping: IdMapping | null;
  #registry: RegistryClient | undefined;
  /** #pinned holds digests and chain ids that pulls in progress use, so gc keeps them. */
  readonly #pinned = new Set<Set<string>>();
  readonly #unpacking = new Map<string, Promise<SnapshotMeta>>();
  #ready: Promise<void> | undefined;

  constructor(opts: ImageStoreOptions) {
    this.#opts = opts;
    this.dir = join(opts.dataDir, 'images');
    this.#blobs = new BlobStore(this.dir);
    this.#records = join(this.dir, 'images');
    this.#snapshots = join(this.dir, 'snapshots');
    this.#tmp = join(this.dir, 'tmp');
    this.#limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.#idMapping = opts.idMapping === undefined ? DEFAULT_ID_MAPPING : opts.idMapping;
  }

  #init(): Promise<void> {
    this.#ready ??= (async () => {
      // The store and snapshot folders are traversable (0711) so the runtime, entering the instance's
      // user namespace, can reach a rootfs; blobs and temp files are root's alone.
      await mkdir(this.dir, { recursive: true, mode: 0o711 });
      await chmod(this.dir, 0o711);
      await this.#blobs.init();
      await mkdir(this.#records, { recursive: true, mode: 0o700 });
      await mkdir(this.#snapshots, { recursive: true, mode: 0o711 });
    })().catch((e) => {
      this.#ready = undefined;
      throw new UserError('data_dir', `cannot create the image store in ${this.dir}: ${(e as Error).message}`, { hint: 'check the data directory and its permissions', cause: e });
    });
    return this.#ready;
  }

  /** close ends registry connections. */
  close(): void {
    this.#registry?.close();
    this.#registry = undefined;
  }

  /**
   * pull resolves a reference (registry or local archive), stores and verifies its blobs, unpacks its
   * rootfs unless a snapshot of the same layers exists, and records it. Errors are UserErrors
   * (`invalid_image_ref`, `image_not_found`, `image_invalid`, `registry_*`); nothing partial is kept.
   */
  async pull(refInput: string, opts: PullOptions = {}): Promise<Image> {
    const parsed = parseReference(refInput);
    const ref = formatReference(parsed);
    await this.#init();
    const emit = opts.onEvent ?? (() => {});
    const platform = this.#opts.platform ?? hostPlatform();

    if (parsed.transport === 'registry' && parsed.digest) {
      const stored = await this.#findRecord((r) => r.digest === parsed.digest || r.indexDigest === parsed.digest);
      if (stored) return this.#finish(stored, ref, emit);
    }
    if (opts.policy === 'missing') {
      const stored = await this.#findRecord((r) => r.refs.includes(ref));
      if (stored) return this.#finish(stored, ref, emit);
    }

    const pins = new Set<string>();
    this.#pinned.add(pins);
    let source: ImageSource | undefined;
    try {
      source = parsed.transport === 'registry'
        ? this.#registryClient().source(parsed)
        : await openLocalSource(parsed.transport, parsed.path, parsed.selector, { tempPath: () => this.#blobs.tempPath('archive'), maxBytes: this.#limits.maxBytes });
      const resolved = await source.resolve(platform);
      const { manifest } = resolved;
      const what = `${source.label} (${shortDigest(resolved.manifestDigest)})`;
      for (const d of [resolved.manifestDigest, resolved.index?.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) if (d) pins.add(d);
      const downloadSize = manifest.layers.reduce((n, l) => n + l.size, 0);
      emit({ type: 'resolved', ref, digest: resolved.manifestDigest, layers: manifest.layers.length, downloadSize });
      if (downloadSize > this.#limits.maxBytes) {
        throw new UserError('image_invalid', `${what}: its layers are ${downloadSize} bytes compressed, over the ${this.#limits.maxBytes}-byte limit`, {
          hint: 'raise the image size limit, or make the image smaller',
        });
      }
      if (manifest.config.size > MAX_CONFIG_SIZE) throw new UserError('image_invalid', `${what}: the config is ${manifest.config.size} bytes, over the ${MAX_CONFIG_SIZE}-byte limit`);

      if (resolved.index && !(await this.#blobs.has(resolved.index.digest))) {
        await this.#blobs.putBytes({ digest: resolved.index.digest }, resolved.index.bytes);
      }
      if (!(await this.#blobs.has(resolved.manifestDigest))) {
        await this.#blobs.putBytes({ digest: resolved.manifestDigest }, resolved.manifestBytes);
      }
      await this.#fetchBlob(source, manifest.config, 'config', emit);
      const parsedConfig = parseConfig(await this.#blobs.read(manifest.config.digest, MAX_CONFIG_SIZE), manifest.config.digest);
      checkConfigMatches(parsedConfig, manifest, platform, what);
      const chain = chainId(parsedConfig.diffIds);
      pins.add(chain);

      await pool(manifest.layers, this.#opts.blobConcurrency ?? 3, (l) => this.#fetchBlob(source!, l, 'layer', emit));

      const record: ImageRecord = {
        version: 1,
        digest: resolved.manifestDigest,
        refs: [ref],
        configDigest: manifest.config.digest,
        layers: manifest.layers,
        diffIds: parsedConfig.diffIds,
        chainId: chain,
        platform: formatPlatform(parsedConfig),
        config: parsedConfig.config,
        size: 0,
        pulledAt: new Date().toISOString(),
      };
      if (resolved.index) record.indexDigest = resolved.index.digest;
      const snap = await this.#ensureSnapshot(record, emit);
      record.size = snap.size;
      const saved = await this.#saveRecord(record, ref);
      return this.#toImage(saved, ref, emit);
    } finally {
      this.#pinned.delete(pins);
      await source?.close();
    }
  }

  #registryClient(): RegistryClient {
    this.#registry ??= new RegistryClient(this.#opts.registry);
    return this.#registry;
  }

  async #fetchBlob(source: ImageSource, d: Descriptor, kind: 'config' | 'layer', emit: (e: ImageEvent) => void): Promise<void> {
    if (await this.#blobs.has(d.digest, d.size)) {
      emit({ type: 'blob', kind, digest: d.digest, size: d.size, cached: true });
      return;
    }
    emit({ type: 'blob', kind, digest: d.digest, size: d.size, cached: false });
    let last = 0;
    const step = Math.max(1024 * 1024, Math.floor(d.size / 100));
    const stream = await source.blob(d);
    const { size } = await this.#blobs.put({ digest: d.digest, size: d.size }, stream, {
      what: `${source.label}: ${kind} ${shortDigest(d.digest)}`,
      onProgress: (bytes) => {
        if (bytes - last >= step) {
          last = bytes;
          emit({ type: 'progress', digest: d.digest, bytes, total: d.size });
        }
      },
    });
    emit({ type: 'blob-done', digest: d.digest, size });
  }

  #snapshotDir(chain: string): string {
    return join(this.#snapshots, digestHex(chain));
  }

  async #readSnapshot(chain: string): Promise<SnapshotMeta | undefined> {
    try {
      const meta = JSON.parse(await readFile(join(this.#snapshotDir(chain), 'snapshot.json'), 'utf8')) as SnapshotMeta;
      return meta.chainId === chain ? meta : undefined;
    } catch {
      return undefined;
    }
  }

  /** #ensureSnapshot returns the snapshot of the record's layers, unpacking it (once per process) when missing. */
  #ensureSnapshot(record: ImageRecord, emit: (e: ImageEvent) => void): Promise<SnapshotMeta> {
    const running = this.#unpacking.get(record.chainId);
    if (running) return running;
    const p = (async () => {
      const existing = await this.#readSnapshot(record.chainId);
      if (existing) {
        emit({ type: 'snapshot-cached', chainId: record.chainId });
        return existing;
      }
      for (const l of record.layers) {
        if (!(await this.#blobs.has(l.digest))) throw new UserError('image_not_found', `layer ${shortDigest(l.digest)} is not in the store`, { hint: 'pull the image again' });
      }
      const work = this.#blobs.tempPath('unpack');
      try {
        await mkdir(work, { mode: 0o711 });
        const rootfs = join(work, 'rootfs');
        await mkdir(rootfs, { mode: 0o755 });
        if (this.#idMapping) await chown(rootfs, this.#idMapping.hostId, this.#idMapping.hostId);
        await chmod(rootfs, 0o755);
        emit({ type: 'unpacking', chainId: record.chainId, layers: record.layers.length });
        const result = await unpackLayers(rootfs, record.layers.map((l, i) => ({ digest: l.digest, path: this.#blobs.path(l.digest), diffId: record.diffIds[i]! })), {
          limits: this.#limits,
          idMapping: this.#idMapping,
          onLayer: (index, layer) => emit({ type: 'layer', index, digest: layer.digest }),
        });
        const meta: SnapshotMeta = { chainId: record.chainId, size: result.size, entries: result.entries, createdAt: new Date().toISOString() };
        await writeFile(join(work, 'snapshot.json'), JSON.stringify(meta, null, 2) + '\n', { mode: 0o644 });
        await chmod(work, 0o711);
        try {
          await rename(work, this.#snapshotDir(record.chainId));
        } catch (e) {
          // Another process published the same layers first; its snapshot is identical.
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
        }
        emit({ type: 'unpacked', chainId: record.chainId, size: result.size, entries: result.entries, stripped: result.stripped });
        return meta;
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    })();
    this.#unpacking.set(record.chainId, p);
    return p.finally(() => this.#unpacking.delete(record.chainId));
  }

  #recordPath(digest: string): string {
    return join(this.#records, `${digestHex(checkDigest(digest, 'image'))}.json`);
  }

  async #saveRecord(record: ImageRecord, ref: string): Promise<ImageRecord> {
    const old = await this.#readRecord(record.digest);
    const out: ImageRecord = { ...record, refs: [ref, ...(old?.refs ?? []).filter((r) => r !== ref)] };
    // A tag names one image: move it off any other record that had it.
    for (const other of await this.#allRecords()) {
      if (other.digest !== record.digest && other.refs.includes(ref) && !ref.includes('@')) {
        await this.#writeRecord({ ...other, refs: other.refs.filter((r) => r !== ref) });
      }
    }
    await this.#writeRecord(out);
    return out;
  }

  async #writeRecord(record: ImageRecord): Promise<void> {
    const tmp = this.#blobs.tempPath('record');
    await writeFile(tmp, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, this.#recordPath(record.digest));
  }

  async #readRecord(digest: string): Promise<ImageRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.#recordPath(digest), 'utf8')) as ImageRecord;
    } catch {
      return undefined;
    }
  }

  async #allRecords(): Promise<ImageRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.#records);
    } catch {
      return [];
    }
    const out: ImageRecord[] = [];
    for (const n of names.sort()) {
      const m = /^([a-f0-9]{64})\.json$/.exec(n);
      if (!m) continue;
      const r = await this.#readRecord(`sha256:${m[1]}`);
      if (r) out.push(r);
    }
    return out;
  }

  async #findRecord(pred: (r: ImageRecord) => boolean): Promise<ImageRecord | undefined> {
    return (await this.#allRecords()).find(pred);
  }

  async #finish(record: ImageRecord, ref: string, emit: (e: ImageEvent) => void): Promise<Image> {
    await this.#ensureSnapshot(record, emit);
    return this.#toImage(record, ref, emit);
  }

  #toImage(r: ImageRecord, ref: string, emit?: (e: ImageEvent) => void): Image {
    const rootfs = join(this.#snapshotDir(r.chainId), 'rootfs');
    const img: Image = {
      ref,
      refs: r.refs,
      digest: r.digest,
      config: r.config,
      platform: r.platform,
      rootfs,
      chainId: r.chainId,
      size: r.size,
      downloadSize: r.layers.reduce((n, l) => n + l.size, 0),
      layers: r.layers.length,
      pulledAt: r.pulledAt,
    };
    if (r.indexDigest) img.indexDigest = r.indexDigest;
    emit?.({ type: 'done', digest: r.digest, rootfs });
    return img;
  }

  /**
   * get returns a stored image by manifest digest (or index digest), or by a reference it was pulled
   * by; undefined when there is none. A snapshot that went missing is unpacked again from the blobs.
   */
  async get(digestOrRef: string): Promise<Image | undefined> {
    await this.#init();
    let record: ImageRecord | undefined;
    if (/^sha256:[a-f0-9]{64}$/.test(digestOrRef)) {
      record = await this.#findRecord((r) => r.digest === digestOrRef || r.indexDigest === digestOrRef);
    } else {
      const ref = formatReference(parseReference(digestOrRef));
      record = await this.#findRecord((r) => r.refs.includes(ref));
    }
    if (!record) return undefined;
    await this.#ensureSnapshot(record, () => {});
    return this.#toImage(record, record.refs[0] ?? record.digest);
  }

  /** list returns every stored image, oldest digest first (stable order). */
  async list(): Promise<Image[]> {
    await this.#init();
    return (await this.#allRecords()).map((r) => this.#toImage(r, r.refs[0] ?? r.digest));
  }

  /**
   * remove forgets an image (by manifest digest); its blobs and snapshot stay until gc, which frees what
   * no image uses any more. The caller must not remove an image an instance still runs.
   */
  async remove(digest: string): Promise<boolean> {
    await this.#init();
    if (!(await this.#readRecord(checkDigest(digest, 'image')))) return false;
    await rm(this.#recordPath(digest), { force: true });
    return true;
  }

  /**
   * gc removes blobs and snapshots no image record (and no pull in progress) uses, and temp files older
   * than an hour (left by a crash). Run it when no instance uses a removed image's rootfs.
   */
  async gc(): Promise<GcResult> {
    await this.#init();
    const keep = new Set<string>();
    for (const pins of this.#pinned) for (const p of pins) keep.add(p);
    for (const r of await this.#allRecords()) {
      keep.add(r.digest);
      if (r.indexDigest) keep.add(r.indexDigest);
      keep.add(r.configDigest);
      keep.add(r.chainId);
      for (const l of r.layers) keep.add(l.digest);
    }
    const out: GcResult = { blobs: 0, snapshots: 0, temp: 0, bytes: 0 };
    for (const d of await this.#blobs.list()) {
      if (keep.has(d)) continue;
      out.bytes += await this.#blobs.remove(d);
      out.blobs++;
    }
    for (const name of await readdir(this.#snapshots)) {
      if (/^[a-f0-9]{64}$/.test(name) && keep.has(`sha256:${name}`)) continue;
      const meta = await this.#readSnapshot(`sha256:${name}`);
      await rm(join(this.#snapshots, name), { recursive: true, force: true });
      out.bytes += meta?.size ?? 0;
      out.snapshots++;
    }
    const now = Date.now();
    for (const name of await readdir(this.#tmp)) {
      const p = join(this.#tmp, name);
      const s = await lstat(p).catch(() => undefined);
      if (!s || now - s.mtimeMs < TMP_MAX_AGE_MS) continue;
      await rm(p, { recursive: true, force: true });
      out.temp++;
    }
    return out;
  }
}

/** pool runs fn over items, at most n at once, and fails with the first error (after the rest settle). */
async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  if (failed !== undefined) throw failed;
}
