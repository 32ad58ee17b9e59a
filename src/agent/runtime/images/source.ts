import { UserError } from '../../../core/index.ts';
import { sha256, shortDigest } from './digest.ts';
import {
  MAX_MANIFEST_SIZE, parseManifestOrIndex, selectPlatform, type Descriptor, type ImageIndex, type ImageManifest, type Platform,
} from './manifest.ts';

/**
 * ImageSource is where an image comes from: a registry, an OCI layout (directory or archive) or a
 * docker-archive. It resolves a reference to one manifest for the wanted platform and hands out blobs as
 * streams. A source checks the manifests it resolves (digests and sizes); blob contents are checked by
 * the blob store as they are written, so a source never has to be trusted.
 */
export interface ImageSource {
  /** label names the source in messages (`oci-archive:app.tar`, `localhost:5000/app:1`). */
  readonly label: string;
  /** resolve finds the manifest for the platform, following an index when there is one. */
  resolve(platform: Platform): Promise<ResolvedImage>;
  /** blob opens a blob's bytes (unchecked: the caller verifies digest and size while storing them). */
  blob(descriptor: Descriptor): Promise<AsyncIterable<Buffer>>;
  /** close releases files and connections. */
  close(): Promise<void>;
}

/** ResolvedImage is a verified manifest, and the index it was chosen from when there was one. */
export interface ResolvedImage {
  manifest: ImageManifest;
  manifestBytes: Buffer;
  manifestDigest: string;
  index?: { digest: string; bytes: Buffer; mediaType: string };
}

/** verifyBytes checks bytes against a descriptor's digest and size (for manifests read into memory). */
export function verifyBytes(bytes: Buffer, d: { digest: string; size?: number }, what: string): void {
  if (d.size !== undefined && bytes.length !== d.size) {
    throw new UserError('image_invalid', `${what} has ${bytes.length} bytes, its descriptor says ${d.size}`, { hint: 'the image is corrupt; export or push it again' });
  }
  const actual = sha256(bytes);
  if (actual !== d.digest) {
    throw new UserError('image_invalid', `${what} failed verification: expected ${d.digest}, got ${actual}`, {
      hint: 'the image was altered or corrupted; export or push it again from a trusted source',
      details: { expected: d.digest, actual },
    });
  }
}

/**
 * followToManifest starts from a descriptor (or a document already read), reads and verifies each
 * document with `read`, and walks through indexes (choosing the platform) until it reaches a manifest.
 */
export async function followToManifest(
  start: { descriptor: Descriptor } | { bytes: Buffer; digest: string; mediaType?: string },
  read: (d: Descriptor) => Promise<{ bytes: Buffer; mediaType?: string }>,
  platform: Platform,
  label: string,
): Promise<ResolvedImage> {
  let index: ResolvedImage['index'];
  let doc: { bytes: Buffer; digest: string; mediaType?: string };
  if ('descriptor' in start) {
    doc = { ...(await readVerified(start.descriptor, read, label)), digest: start.descriptor.digest };
  } else {
    doc = start;
  }
  for (let depth = 0; depth < 4; depth++) {
    const what = `${label}: ${depth === 0 && !('descriptor' in start) ? 'manifest' : `manifest ${shortDigest(doc.digest)}`}`;
    const parsed: ImageIndex | ImageManifest = parseManifestOrIndex(doc.bytes, what, doc.mediaType);
    if (parsed.kind === 'manifest') {
      const out: ResolvedImage = { manifest: parsed, manifestBytes: doc.bytes, manifestDigest: doc.digest };
      if (index) out.index = index;
      return out;
    }
    index ??= { digest: doc.digest, bytes: doc.bytes, mediaType: parsed.mediaType };
    const chosen = selectPlatform(parsed, platform, label);
    doc = { ...(await readVerified(chosen, read, label)), digest: chosen.digest };
  }
  throw new UserError('image_invalid', `${label}: indexes nest more than 4 deep`);
}

async function readVerified(d: Descriptor, read: (d: Descriptor) => Promise<{ bytes: Buffer; mediaType?: string }>, label: string) {
  if (d.size > MAX_MANIFEST_SIZE) throw new UserError('image_invalid', `${label}: manifest ${shortDigest(d.digest)} is ${d.size} bytes, over the ${MAX_MANIFEST_SIZE}-byte limit`);
  const got = await read(d);
  verifyBytes(got.bytes, d, `${label}: manifest ${shortDigest(d.digest)}`);
  return { bytes: got.bytes, mediaType: got.mediaType ?? d.mediaType };
}
