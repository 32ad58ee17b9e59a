import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../../core/index.ts';
import { MemoryImages, testContext } from '../testing.ts';
import { imageHook, pinnedRef } from './image.ts';

describe('image hook', () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ward-hook-image-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  test('pinnedRef pins registry references to the digest; uploads and archives have none', () => {
    const d = `sha256:${'b'.repeat(64)}`;
    assert.equal(pinnedRef('registry.example.com/team/app:1.2', d), `registry.example.com/team/app@${d}`);
    assert.equal(pinnedRef('127.0.0.1:5000/app', d), `127.0.0.1:5000/app@${d}`);
    assert.equal(pinnedRef(d, d), undefined);
    assert.equal(pinnedRef('oci-archive:/x.tar', d), undefined);
    assert.equal(pinnedRef('not a ref', d), undefined);
  });

  test('prestart uses the stored image, or pulls a registry image by digest', async () => {
    const images = new MemoryImages();
    const img = await images.add(root);
    const ctx = testContext({ imageDigest: img.digest });
    images.images.delete(img.digest);
    images.images.set('pull-only', img);
    // Not stored: pulled by digest, never by the tag.
    images.get = async (d) => (d === img.digest && images.pulls.length ? img : undefined);
    images.pull = async (ref) => {
      images.pulls.push(ref);
      return img;
    };
    await imageHook(images).prestart!(ctx);
    assert.deepEqual(images.pulls, [`registry.example.com/team/app@${img.digest}`]);
    assert.equal(ctx.image, img);
    const again = testContext({ imageDigest: img.digest });
    await imageHook(images).recover!(again, undefined as never);
    assert.equal(again.image, img);
  });

  test('an uploaded image missing on this host is image_not_found; a wrong digest is image_invalid', async () => {
    const images = new MemoryImages();
    const img = await images.add(root);
    const upload = testContext({ imageRef: `sha256:${'c'.repeat(64)}`, imageDigest: `sha256:${'c'.repeat(64)}` });
    await assert.rejects(imageHook(images).prestart!(upload), (e: unknown) => e instanceof UserError && e.code === 'image_not_found');
    const lying = testContext({ imageDigest: `sha256:${'d'.repeat(64)}` });
    images.pull = async () => img;
    await assert.rejects(imageHook(images).prestart!(lying), (e: unknown) => e instanceof UserError && e.code === 'image_invalid');
  });
});
