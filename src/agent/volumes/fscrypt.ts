/**
 * FscryptBackend: ext4 with kernel fscrypt on a loop file, for hosts without device-mapper (this
 * project's machines). The loop file's size is the volume's size; its file system has the `encrypt`
 * feature, and the instances' directory (`data/`) carries a v2 policy: AES-256-XTS for contents,
 * AES-256-CTS for names, 32-byte name padding. The key lives in the file system's own keyring
 * (FS_IOC_ADD_ENCRYPTION_KEY): the kernel derives a key per file from it (HKDF-SHA512), and removing
 * it (FS_IOC_REMOVE_ENCRYPTION_KEY) evicts every unlocked inode, leaving only ciphertext names and
 * contents. What fscrypt does not hide: file sizes, timestamps, permissions and the tree's shape.
 *
 * The ioctls are made by fscrypt-ioctl.py (Python's fcntl.ioctl) through src/exec: Debian 12 packages
 * no tool that adds a v2 key, and Ward loads no native addon. The key goes to it on stdin.
 */
import { hkdfSync } from 'node:crypto';
import { chmod, chown, lstat, mkdir, open, rmdir } from 'node:fs/promises';
import { run } from '../../exec/index.ts';
import { fscryptArgv, mkfsExt4Argv, mountLoopArgv } from './commands.ts';
import { mounted, unmount } from './mounts.ts';
import type { EncryptionBackend, Owner, VolumePaths } from './types.ts';

/** EXT4_MAGIC is the ext4 superblock's s_magic (little-endian 0xEF53 at byte 1080 of the file system). */
const EXT4_MAGIC_OFFSET = 1024 + 0x38;

/**
 * fscryptMasterKey is the 64-byte fscrypt master key of a volume, derived from its 256-bit key with
 * HKDF-SHA512: the kernel wants a master key at least as long as the AES-256-XTS key it protects.
 */
export function fscryptMasterKey(volumeKey: Buffer): Buffer {
  if (volumeKey.length !== 32) throw new RangeError('a volume key has 32 bytes');
  return Buffer.from(hkdfSync('sha512', volumeKey, Buffer.alloc(0), 'ward/volume/fscrypt-v2-master-key', 64));
}

/** hasExt4Superblock reads the loop file's superblock magic (an unformatted file is zeros). */
export async function hasExt4Superblock(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, EXT4_MAGIC_OFFSET);
    return bytesRead === 2 && b.readUInt16LE(0) === 0xef53;
  } finally {
    await fh.close();
  }
}

export class FscryptBackend implements EncryptionBackend {
  readonly kind = 'fscrypt' as const;
  readonly description = 'ext4 with kernel fscrypt (v2 policy: AES-256-XTS contents, AES-256-CTS names) on a loop file';

  isFormatted(paths: VolumePaths): Promise<boolean> {
    return hasExt4Superblock(paths.file);
  }

  async open(paths: VolumePaths, key: Buffer, owner: Owner): Promise<void> {
    if (!(await this.isFormatted(paths))) await run(mkfsExt4Argv(paths.file, { encrypt: true }), { timeoutMs: 600_000 });
    await mkdir(paths.mountPoint, { recursive: true, mode: 0o711 });
    if (!mounted(paths.mountPoint)) await run(mountLoopArgv(paths.file, paths.mountPoint));
    const master = fscryptMasterKey(key);
    try {
      // Instances reach data/ through the bind mount; the mapped root needs to pass the top directory.
      await chmod(paths.mountPoint, 0o711);
      const identifier = (await run(fscryptArgv('add-key', paths.mountPoint), { input: master })).stdout.trim();
      const existing = await lstat(paths.data).catch(() => undefined);
      if (!existing) {
        await mkdir(paths.data, { mode: 0o700 });
        // An unencrypted data directory must never be left for a later open to find.
        await run(fscryptArgv('set-policy', paths.data, identifier)).catch(async (e: unknown) => {
          await rmdir(paths.data).catch(() => {});
          throw e;
        });
        await chown(paths.data, owner.uid, owner.gid);
      } else {
        if (!existing.isDirectory()) throw new Error(`${paths.data} is not a directory`);
        const policy = (await run(fscryptArgv('get-policy', paths.data))).stdout.trim().split(' ');
        if (policy[0] !== '2' || policy[4] !== identifier) {
          throw new Error(`the volume's data directory is not encrypted with this volume's key (policy ${policy.join(' ')})`);
        }
      }
    } catch (e) {
      await this.close(paths).catch(() => {});
      throw e;
    } finally {
      master.fill(0);
    }
  }

  async close(paths: VolumePaths): Promise<void> {
    if (!mounted(paths.mountPoint)) return;
    const policy = await run(fscryptArgv('get-policy', paths.data), { allowFailure: true });
    const identifier = policy.code === 0 ? policy.stdout.trim().split(' ')[4] : undefined;
    // Removing the key evicts the unlocked inodes from the caches; the unmount then drops the keyring.
    if (identifier && /^[0-9a-f]{32}$/.test(identifier)) await run(fscryptArgv('remove-key', paths.mountPoint, identifier), { allowFailure: true });
    await unmount(paths.mountPoint);
  }
}
