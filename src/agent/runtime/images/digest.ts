import { createHash } from 'node:crypto';
import { UserError } from '../../../core/index.ts';

/**
 * Digests as OCI writes them: `sha256:<64 lowercase hex>`. Only sha256 is accepted: it is what every
 * registry and builder uses, and accepting fewer algorithms means fewer ways to be confused.
 */
export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** isDigest tells whether s is a well-formed sha256 digest. */
export function isDigest(s: unknown): s is string {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

/** checkDigest returns s when it is a sha256 digest, else throws UserError `image_invalid` naming `what`. */
export function checkDigest(s: unknown, what: string): string {
  if (isDigest(s)) return s;
  const shown = typeof s === 'string' ? JSON.stringify(s.slice(0, 100)) : String(s);
  const hint = typeof s === 'string' && /^sha(384|512):/.test(s)
    ? 'Ward accepts sha256 digests only; push the image with sha256'
    : 'a digest is `sha256:` and 64 lowercase hex digits';
  throw new UserError('image_invalid', `${what} has an invalid digest ${shown}`, { hint });
}

/** digestHex is the hex part of a digest (its file name in the blob store). */
export function digestHex(digest: string): string {
  return digest.slice('sha256:'.length);
}

/** sha256 digests bytes. */
export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * chainId is the OCI ChainID of a layer stack: the first layer's DiffID, then
 * sha256(parent ChainID + " " + DiffID) for each next one. It names a snapshot: two images with the same
 * layers in the same order share it.
 */
export function chainId(diffIds: readonly string[]): string {
  if (diffIds.length === 0) return sha256('');
  let id = diffIds[0]!;
  for (const d of diffIds.slice(1)) id = sha256(`${id} ${d}`);
  return id;
}

/** shortDigest is a digest cut for messages (`sha256:0123456789ab`). */
export function shortDigest(digest: string): string {
  return digest.slice(0, 'sha256:'.length + 12);
}
