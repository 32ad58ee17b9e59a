/**
 * The image hook: makes sure the release's image is on this host and puts it in the context.
 *
 * prestart / recover: the image by its manifest digest from the store; a registry image that is not
 * here yet is pulled by digest (`repo@sha256:…`), so a moved tag can never change what a release runs.
 * An uploaded archive exists only where it was uploaded: missing here, it is `image_not_found`. A
 * pulled image must have the release's digest. Nothing to release afterwards: images stay in the store
 * (its gc frees what no release uses).
 */
import { UserError } from '../../core/index.ts';
import { parseReference, formatReference } from '../runtime/index.ts';
import type { ImageProvider } from '../types.ts';
import type { HookContext, InstanceHook } from './types.ts';

/** pinnedRef is a registry reference pinned to digest, or undefined for an image that only came from an upload or archive. */
export function pinnedRef(imageRef: string, digest: string): string | undefined {
  if (imageRef.startsWith('sha256:')) return undefined;
  let ref;
  try {
    ref = parseReference(imageRef);
  } catch {
    return undefined;
  }
  if (ref.transport !== 'registry') return undefined;
  return formatReference({ ...ref, tag: undefined, digest });
}

export function imageHook(images: ImageProvider): InstanceHook {
  const resolve = async (ctx: HookContext) => {
    const { imageRef, imageDigest } = ctx.assignment.release;
    let image = await images.get(imageDigest);
    if (!image) {
      const ref = pinnedRef(imageRef, imageDigest);
      if (!ref) {
        throw new UserError('image_not_found', `image ${imageDigest} is not on host ${ctx.host.name}`, { hint: 'deploy again with --image, so the image is uploaded again' });
      }
      ctx.note(`pulling ${ref}`);
      image = await images.pull(ref);
    }
    if (image.digest !== imageDigest && image.indexDigest !== imageDigest) {
      throw new UserError('image_invalid', `the image pulled for ${imageRef} has digest ${image.digest}, not the release's ${imageDigest}`);
    }
    ctx.image = image;
  };
  return {
    name: 'image',
    prestart: resolve,
    recover: (ctx) => resolve(ctx),
  };
}
