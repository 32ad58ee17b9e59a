import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../core/index.ts';
import { ImageStore } from '../agent/runtime/index.ts';
import { localImage, splitLocalRef } from './image-archive.ts';

describe('local images for ward deploy', () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ward-cli-archive-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  test('splitLocalRef reads skopeo\'s forms; registry references are not local', () => {
    assert.deepEqual(splitLocalRef('oci-archive:./app.tar'), { transport: 'oci-archive', path: './app.tar', selector: undefined });
    assert.deepEqual(splitLocalRef('docker-archive:/x/app.tar:team/app:1'), { transport: 'docker-archive', path: '/x/app.tar', selector: 'team/app:1' });
    assert.deepEqual(splitLocalRef('oci:layout:v2'), { transport: 'oci', path: 'layout', selector: 'v2' });
    assert.equal(splitLocalRef('registry.example.com/app:1'), undefined);
    assert.throws(() => splitLocalRef('oci-archive:'), (e: unknown) => e instanceof UserError && e.code === 'usage');
  });

  test('an OCI layout directory is packed on the fly into an oci-archive the image store imports', async () => {
    // A minimal layout: one empty layer, a config, a manifest (writeOciLayout is in test fixtures; this is by hand).
    const { createHash } = await import('node:crypto');
    const { gzipSync } = await import('node:zlib');
    const dir = join(root, 'layout');
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    const put = async (b: Buffer) => {
      const hex = createHash('sha256').update(b).digest('hex');
      await writeFile(join(dir, 'blobs', 'sha256', hex), b);
      return { digest: `sha256:${hex}`, size: b.length };
    };
    const tar = Buffer.alloc(1024);
    const layer = await put(gzipSync(tar));
    const config = await put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(tar).digest('hex')}`] } })));
    const manifest = await put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }] })));
    await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }));
    await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));

    const img = await localImage('oci:layout:v1', root);
    assert.ok(img);
    assert.equal(img.format, 'oci-archive');
    assert.equal(img.selector, 'v1');
    const chunks: Buffer[] = [];
    for await (const c of img.body()) chunks.push(Buffer.from(c));
    const packed = Buffer.concat(chunks);
    assert.equal(packed.length, img.size, 'size is exact, so it can be the Content-Length');
    await writeFile(join(root, 'packed.tar'), packed);
    const store = new ImageStore({ dataDir: join(root, 'store'), idMapping: null });
    const pulled = await store.pull(`oci-archive:${join(root, 'packed.tar')}:v1`);
    assert.equal(pulled.digest, manifest.digest);
    store.close();
  });

  test('archives are streamed as they are; wrong kinds and missing paths are clear errors', async () => {
    await writeFile(join(root, 'a.tar'), 'tar bytes');
    const a = await localImage('docker-archive:a.tar:app:1', root);
    assert.deepEqual([a?.format, a?.selector, a?.size], ['docker-archive', 'app:1', 9]);
    const code = (c: string) => (e: unknown) => e instanceof UserError && e.code === c;
    await assert.rejects(localImage('oci-archive:missing.tar', root), code('image_not_found'));
    await assert.rejects(localImage('oci-archive:.', root), code('usage'));
    await assert.rejects(localImage('oci:a.tar', root), code('usage'));
    await mkdir(join(root, 'notlayout'));
    await assert.rejects(localImage('oci:notlayout', root), code('image_invalid'));
    await mkdir(join(root, 'linky'));
    await writeFile(join(root, 'linky', 'index.json'), '{}');
    await writeFile(join(root, 'linky', 'oci-layout'), '{}');
    await symlink('/etc/passwd', join(root, 'linky', 'evil'));
    await assert.rejects(localImage('oci:linky', root), code('usage'), 'links are not followed out of the layout');
    assert.equal(await localImage('registry.example.com/app:1', root), undefined);
  });
});
