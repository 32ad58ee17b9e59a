import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run } from '../exec/index.ts';
import { ImageStore } from '../agent/runtime/images/index.ts';
import { buildNodeImage, parseLdd } from './index.ts';

describe('buildNodeImage', () => {
  let dir = '';
  let app = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-build-'));
    app = join(dir, 'app');
    await mkdir(join(app, 'lib'), { recursive: true });
    await writeFile(join(app, 'server.js'), "require('./lib/greet.js')();\n");
    await writeFile(join(app, 'lib', 'greet.js'), "module.exports = () => console.log('hello from ' + process.version + ' in ' + process.cwd());\n");
    await symlink('lib/greet.js', join(app, 'greet.js'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('parseLdd keeps resolved libraries and the loader, not the vDSO', () => {
    const out = [
      '\tlinux-vdso.so.1 (0x00007ffd)',
      '\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f1)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f3)',
    ].join('\n');
    assert.deepEqual(parseLdd(out), ['/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
  });

  test('the same inputs give the same bytes and digest; a changed app changes only the app layer', async () => {
    const a = await buildNodeImage({ appDir: app }, join(dir, 'a.tar'));
    const b = await buildNodeImage({ appDir: app }, join(dir, 'b.tar'));
    assert.match(a.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(a.digest, b.digest);
    assert.ok((await readFile(a.archive)).equals(await readFile(b.archive)), 'archives differ byte for byte');
    assert.equal(a.size, (await stat(a.archive)).size);
    await writeFile(join(app, 'extra.txt'), 'new\n');
    try {
      const c = await buildNodeImage({ appDir: app }, join(dir, 'c.tar'));
      assert.notEqual(c.digest, a.digest);
      assert.equal(c.layers[0], a.layers[0], 'the runtime layer is shared');
      assert.notEqual(c.layers[1], a.layers[1]);
    } finally {
      await rm(join(app, 'extra.txt'));
    }
  });

  test('skopeo reads the archive, and Ward\'s image store imports it with the digest the builder reported', async () => {
    const built = await buildNodeImage({ appDir: app, env: { NODE_ENV: 'production' }, compression: 'gzip' }, join(dir, 'gz.tar'));
    const inspected = JSON.parse((await run(['skopeo', 'inspect', '--raw', `oci-archive:${built.archive}`])).stdout) as { layers: { mediaType: string }[] };
    assert.deepEqual(inspected.layers.map((l) => l.mediaType), ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+gzip']);

    const store = new ImageStore({ dataDir: join(dir, 'store'), idMapping: null });
    try {
      const image = await store.pull(`oci-archive:${built.archive}`);
      assert.equal(image.digest, built.digest);
      assert.deepEqual(image.config.Cmd, ['/usr/bin/node', '/app/server.js']);
      assert.deepEqual(image.config.Env, ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_ENV=production']);
      assert.equal(image.config.WorkingDir, '/app');
      assert.equal((await stat(join(image.rootfs, 'usr/bin/node'))).mode & 0o777, 0o755);
      assert.equal((await stat(join(image.rootfs, 'tmp'))).mode & 0o7777, 0o1777);
      // The image runs on its own: Node.js finds every library it needs inside it.
      if (process.getuid?.() === 0) {
        const r = await run(['chroot', image.rootfs, '/usr/bin/node', '/app/server.js']);
        assert.equal(r.stdout, `hello from ${process.version} in /\n`);
      }
    } finally {
      store.close();
    }
  });

  test('refuses an app without its entry script, or with a link out of its folder', async () => {
    await assert.rejects(buildNodeImage({ appDir: app, entry: 'main.js' }, join(dir, 'x.tar')), /main\.js does not exist/);
    await symlink('/etc/passwd', join(app, 'passwd'));
    try {
      await assert.rejects(buildNodeImage({ appDir: app }, join(dir, 'x.tar')), /links outside the app folder/);
    } finally {
      await rm(join(app, 'passwd'));
    }
  });
});
