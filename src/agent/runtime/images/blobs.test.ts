import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../../core/index.ts';
import { BlobStore } from './blobs.ts';
import { sha256 } from './digest.ts';

async function* from(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

test('BlobStore keeps only blobs whose digest and size match, and leaves no temp file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ward-blobs-'));
  try {
    const store = new BlobStore(dir);
    await store.init();
    const d = sha256('hello world');
    assert.deepEqual(await store.put({ digest: d, size: 11 }, from('hello ', 'world')), { digest: d, size: 11 });
    assert.equal(await readFile(store.path(d), 'utf8'), 'hello world');
    assert.equal(await store.has(d, 11), true);
    assert.equal(await store.has(d, 12), false);

    const bad = sha256('something else');
    const invalid = (re: RegExp) => (e: unknown) => e instanceof UserError && e.code === 'image_invalid' && re.test(e.message);
    await assert.rejects(store.put({ digest: bad }, from('hello world')), invalid(/failed verification/));
    await assert.rejects(store.put({ digest: bad, size: 5 }, from('hello world')), invalid(/larger than the 5 bytes/));
    await assert.rejects(store.put({ digest: bad, size: 50 }, from('hello world')), invalid(/has 11 bytes, its descriptor says 50/));
    await assert.rejects(store.put({ digest: bad }, from('x'.repeat(100)), { maxSize: 10 }), invalid(/larger than the 10 bytes allowed/));
    await assert.rejects(store.put({ digest: 'md5:abc' }, from('x')), invalid(/invalid digest/));
    assert.equal(await store.has(bad), false);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.deepEqual(await store.list(), [d]);
    assert.equal(await store.remove(d), 11);
    assert.deepEqual(await store.list(), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
