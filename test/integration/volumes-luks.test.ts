// The LUKS2 backend against the real cryptsetup: the format command Ward runs makes a LUKS2 header with
// aes-xts-plain64 and a 512-bit key from the key on stdin, and the backend recognises it. Opening needs
// device-mapper, which these machines lack (PLATFORM-NOTES.md): there the backend is not chosen, and an
// attempt fails with cryptsetup's error and leaves nothing mounted or mapped.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostCrypto, luksFormatArgv, Luks2Backend, type VolumePaths } from '../../src/agent/volumes/index.ts';
import { mounted } from '../../src/agent/volumes/mounts.ts';
import { run } from '../../src/exec/index.ts';

const skip = !existsSync('/usr/sbin/cryptsetup') ? 'cryptsetup is missing: run scripts/bootstrap' : process.getuid?.() !== 0 ? 'needs root' : false;
let root = '';
let paths: VolumePaths;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ward-luks-'));
  const dir = join(root, 'vol_01jtestluks');
  await mkdir(dir);
  paths = { dir, file: join(dir, 'volume.img'), mountPoint: join(dir, 'mnt'), data: join(dir, 'mnt', 'data') };
  const fh = await open(paths.file, 'w', 0o600);
  await fh.truncate(32 * 1024 ** 2);
  await fh.close();
});
after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test('luksFormat makes LUKS2 aes-xts-plain64 with a 512-bit key, the key given on stdin only', { skip }, async () => {
  const backend = new Luks2Backend();
  assert.equal(await backend.isFormatted(paths), false);
  const key = randomBytes(32);
  await run(luksFormatArgv(paths.file), { input: key, timeoutMs: 120_000 });
  assert.equal(await backend.isFormatted(paths), true);
  const dump = (await run(['cryptsetup', 'luksDump', paths.file])).stdout;
  assert.match(dump, /Version:\s+2/);
  assert.match(dump, /cipher:\s+aes-xts-plain64/);
  assert.match(dump, /Key:\s+512 bits/);
  // The key opens the header's key slot (checked without device-mapper) and another key does not.
  assert.equal((await run(['cryptsetup', 'open', '--test-passphrase', '--type', 'luks2', '--key-file', '-', paths.file], { input: key, allowFailure: true })).code, 0);
  assert.notEqual((await run(['cryptsetup', 'open', '--test-passphrase', '--type', 'luks2', '--key-file', '-', paths.file], { input: randomBytes(32), allowFailure: true })).code, 0);

  if (!hostCrypto().deviceMapper) {
    // No device-mapper here: open fails loudly and leaves nothing behind.
    await assert.rejects(backend.open(paths, key, { uid: 100_000, gid: 100_000 }), /cryptsetup/);
    assert.equal(mounted(paths.mountPoint), false);
    assert.equal(existsSync('/dev/mapper/ward-vol_01jtestluks'), false);
  }
});
