import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseBackend, fscryptArgv, fscryptMasterKey, luksCloseArgv, luksFormatArgv, luksOpenArgv, mkfsExt4Argv, mountDeviceArgv, mountLoopArgv, umountArgv } from './index.ts';
import { FSCRYPT_IOCTL, PYTHON } from './commands.ts';
import { mappingName } from './luks.ts';
import { mountPoints } from './mounts.ts';

test('LUKS2 commands: aes-xts-plain64 with a 512-bit key, the key on stdin, never in argv', () => {
  assert.deepEqual(luksFormatArgv('/d/volumes/vol_1/volume.img'), [
    'cryptsetup', 'luksFormat', '--batch-mode', '--type', 'luks2', '--cipher', 'aes-xts-plain64', '--key-size', '512',
    '--hash', 'sha256', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', '-', '/d/volumes/vol_1/volume.img',
  ]);
  assert.deepEqual(luksOpenArgv('/d/v.img', 'ward-vol_1'), ['cryptsetup', 'open', '--type', 'luks2', '--key-file', '-', '/d/v.img', 'ward-vol_1']);
  assert.deepEqual(luksCloseArgv('ward-vol_1'), ['cryptsetup', 'close', 'ward-vol_1']);
  assert.deepEqual(mkfsExt4Argv('/dev/mapper/ward-vol_1', { encrypt: false }), ['mkfs.ext4', '-q', '-F', '-m', '0', '-E', 'root_owner=0:0', '-L', 'ward-volume', '/dev/mapper/ward-vol_1']);
  assert.deepEqual(mountDeviceArgv('/dev/mapper/ward-vol_1', '/d/mnt'), ['mount', '-t', 'ext4', '-o', 'nosuid,nodev', '/dev/mapper/ward-vol_1', '/d/mnt']);
  assert.equal(mappingName({ dir: '/d/volumes/vol_01abc', file: '', mountPoint: '', data: '' }), 'ward-vol_01abc');
  assert.throws(() => mappingName({ dir: '/d/volumes/../etc', file: '', mountPoint: '', data: '' }), /not a volume directory/);
});

test('fscrypt commands: ext4 with the encrypt feature on a loop file that mount frees itself', () => {
  assert.deepEqual(mkfsExt4Argv('/d/v.img', { encrypt: true }), ['mkfs.ext4', '-q', '-F', '-O', 'encrypt', '-m', '0', '-E', 'root_owner=0:0', '-L', 'ward-volume', '/d/v.img']);
  assert.deepEqual(mountLoopArgv('/d/v.img', '/d/mnt'), ['mount', '-t', 'ext4', '-o', 'loop,nosuid,nodev', '/d/v.img', '/d/mnt']);
  assert.deepEqual(umountArgv('/d/mnt'), ['umount', '/d/mnt']);
  assert.deepEqual(umountArgv('/d/mnt', { lazy: true }), ['umount', '--lazy', '/d/mnt']);
  assert.deepEqual(fscryptArgv('add-key', '/d/mnt'), [PYTHON, FSCRYPT_IOCTL, 'add-key', '/d/mnt']);
  assert.deepEqual(fscryptArgv('set-policy', '/d/mnt/data', 'ab'.repeat(16)), [PYTHON, FSCRYPT_IOCTL, 'set-policy', '/d/mnt/data', 'ab'.repeat(16)]);
  assert.deepEqual(fscryptArgv('remove-key', '/d/mnt', 'ab'.repeat(16)), [PYTHON, FSCRYPT_IOCTL, 'remove-key', '/d/mnt', 'ab'.repeat(16)]);
  assert.match(FSCRYPT_IOCTL, /\/src\/agent\/volumes\/fscrypt-ioctl\.py$/);
});

test('the backend: LUKS2 where device-mapper and cryptsetup exist, fscrypt otherwise', () => {
  assert.equal(chooseBackend({ deviceMapper: true, cryptsetup: true }).kind, 'luks2');
  assert.equal(chooseBackend({ deviceMapper: false, cryptsetup: true }).kind, 'fscrypt');
  assert.equal(chooseBackend({ deviceMapper: true, cryptsetup: false }).kind, 'fscrypt');
  assert.equal(chooseBackend({ deviceMapper: false, cryptsetup: false }).kind, 'fscrypt');
});

test('the fscrypt master key: 64 bytes derived from the 256-bit volume key, one per volume key', () => {
  const a = fscryptMasterKey(Buffer.alloc(32, 1));
  assert.equal(a.length, 64);
  assert.deepEqual(a, fscryptMasterKey(Buffer.alloc(32, 1)));
  assert.notDeepEqual(a, fscryptMasterKey(Buffer.alloc(32, 2)));
  assert.throws(() => fscryptMasterKey(Buffer.alloc(16)), /32 bytes/);
});

test('mount points are read from mountinfo with their escapes undone', () => {
  const info = '36 35 98:0 / /mnt/my\\040disk rw,noatime master:1 - ext4 /dev/loop0 rw\n37 35 0:5 / /run rw - tmpfs tmpfs rw\n';
  assert.deepEqual(mountPoints(info), ['/mnt/my disk', '/run']);
});
