import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../../core/index.ts';
import { checkDigest, digestHex, shortDigest } from './digest.ts';

/** BlobProgress reports bytes written so far for one blob. */
export type BlobProgress = (bytes: number) => void;

/** Expected is what a blob must be: its digest, and its size when the source says it. */
export interface Expected {
  digest: string;
  size?: number;
}

/**
 * BlobStore keeps blobs (manifests, configs, layers) by content: `<dir>/blobs/sha256/<hex>`. A blob is
 * written to a temp file in `<dir>/tmp` while its sha256 and size are checked, and renamed into place
 * only when both match, so a blob file that exists is always whole and correct; a mismatch removes the
 * temp file and throws UserError `image_invalid`. Files are never changed after the rename.
 */
export class BlobStore {
  readonly dir: string;
  readonly #blobs: string;
  readonly #tmp: string;

  constructor(dir: string) {
    this.dir = dir;
    this.#blobs = join(dir, 'blobs', 'sha256');
    this.#tmp = join(dir, 'tmp');
  }

  /** init creates the store's folders. */
  async init(): Promise<void> {
    await mkdir(this.#blobs, { recursive: true, mode: 0o700 });
    await mkdir(this.#tmp, { recursive: true, mode: 0o700 });
  }

  /** path is where a blob lives (whether or not it is there). */
  path(digest: string): string {
    return join(this.#blobs, digestHex(checkDigest(digest, 'blob')));
  }

  /** tempPath returns a fresh path in the store's temp folder (same file system as the blobs). */
  tempPath(prefix: string): string {
    return join(this.#tmp, `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /** has tells whether the blob is stored (with the expected size, when given). */
  async has(digest: string, size?: number): Promise<boolean> {
    try {
      const s = await stat(this.path(digest));
      return s.isFile() && (size === undefined || s.size === size);
    } catch {
      return false;
    }
  }

  /** size returns a stored blob's size. */
  async size(digest: string): Promise<number> {
    return (await stat(this.path(digest))).size;
  }

  /**
   * put streams source into the store, checking digest and size as it goes: more bytes than expected
   * stop the copy at once, and `maxSize` bounds blobs of unknown size.
   */
  async put(expected: Expected, source: AsyncIterable<Buffer | Uint8Array>, opts: { maxSize?: number; onProgress?: BlobProgress; what?: string } = {}): Promise<{ digest: string; size: number }> {
    const digest = checkDigest(expected.digest, opts.what ?? 'blob');
    const what = opts.what ?? `blob ${shortDigest(digest)}`;
    const limit = Math.min(expected.size ?? Infinity, opts.maxSize ?? Infinity);
    const tmp = this.tempPath('blob');
    const fh = await open(tmp, 'wx', 0o600);
    const hash = createHash('sha256');
    let size = 0;
    let ok = false;
    try {
      try {
        for await (const chunk of source) {
          size += chunk.length;
          if (size > limit) {
            throw new UserError('image_invalid', expected.size !== undefined && size > expected.size
              ? `${what} is larger than the ${expected.size} bytes its descriptor says`
              : `${what} is larger than the ${opts.maxSize} bytes allowed`, { hint: 'the image is corrupt, or larger than Ward accepts' });
          }
          hash.update(chunk);
          await fh.write(chunk);
          opts.onProgress?.(size);
        }
      } finally {
        await fh.close();
      }
      const actual = `sha256:${hash.digest('hex')}`;
      if (expected.size !== undefined && size !== expected.size) {
        throw new UserError('image_invalid', `${what} has ${size} bytes, its descriptor says ${expected.size}`, { hint: 'the blob is truncated or the image is corrupt; pull or export it again' });
      }
      if (actual !== digest) {
        throw new UserError('image_invalid', `${what} failed verification: its content has digest ${actual}`, {
          hint: 'the blob was altered or corrupted; pull or export the image again from a trusted source',
          details: { expected: digest, actual },
        });
      }
      await rename(tmp, this.path(digest));
      ok = true;
      return { digest, size };
    } finally {
      if (!ok) await rm(tmp, { force: true });
    }
  }

  /** putBytes stores bytes already in memory (a manifest whose digest was checked by the caller or here). */
  putBytes(expected: Expected, bytes: Buffer, what?: string): Promise<{ digest: string; size: number }> {
    const once = (async function* () {
      yield bytes;
    })();
    return this.put(expected, once, what === undefined ? {} : { what });
  }

  /** read returns a stored blob's bytes, refusing blobs over max bytes. */
  async read(digest: string, max: number): Promise<Buffer> {
    const p = this.path(digest);
    const s = await stat(p);
    if (s.size > max) throw new UserError('image_invalid', `blob ${shortDigest(digest)} is ${s.size} bytes, over the ${max}-byte limit`);
    return readFile(p);
  }

  /** list returns the digests of every stored blob. */
  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.#blobs);
    } catch {
      return [];
    }
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  /** remove deletes a blob; it returns the bytes freed (0 when it was not there). */
  async remove(digest: string): Promise<number> {
    const p = this.path(digest);
    try {
      const s = await stat(p);
      await rm(p, { force: true });
      return s.size;
    } catch {
      return 0;
    }
  }
}
