/**
 * Luks2Backend: LUKS2 with aes-xts-plain64 (cryptsetup, dm-crypt) on a loop file, for hosts with
 * device-mapper. The whole block device is encrypted (metadata, names, sizes, free space), unlike
 * fscrypt. The volume's 256-bit key is the LUKS passphrase, on cryptsetup's stdin; LUKS keeps its own
 * random 512-bit master key in the header, and closing the mapping makes the kernel forget it.
 *
 * This machine has no device-mapper (PLATFORM-NOTES.md), so the backend is tested by its argv
 * (commands.test.ts) and by detection; detectBackend never picks it here.
 */
import { chmod, chown, lstat, mkdir, open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { run } from '../../exec/index.ts';
import { luksCloseArgv, luksFormatArgv, luksOpenArgv, mkfsExt4Argv, mountDeviceArgv } from './commands.ts';
import { mounted, unmount } from './mounts.ts';
import type { EncryptionBackend, Owner, VolumePaths } from './types.ts';

/** LUKS_MAGIC starts every LUKS header ("LUKS\xba\xbe"). */
const LUKS_MAGIC = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]);

/** mappingName is the dm-crypt name of a volume: `ward-<vol_…>` (ids are [a-z0-9_]). */
export function mappingName(paths: VolumePaths): string {
  const id = paths.dir.split('/').at(-1)!;
  if (!/^vol_[a-z0-9]+$/.test(id)) throw new TypeError(`not a volume directory: ${paths.dir}`);
  return `ward-${id}`;
}

export class Luks2Backend implements EncryptionBackend {
  readonly kind = 'luks2' as const;
  readonly description = 'LUKS2 (dm-crypt, aes-xts-plain64, 512-bit key) on a loop file, ext4 inside';

  async isFormatted(paths: VolumePaths): Promise<boolean> {
    const fh = await open(paths.file, 'r');
    try {
      const b = Buffer.alloc(LUKS_MAGIC.length);
      await fh.read(b, 0, b.length, 0);
      return b.equals(LUKS_MAGIC);
    } finally {
      await fh.close();
    }
  }

  async open(paths: VolumePaths, key: Buffer, owner: Owner): Promise<void> {
    const name = mappingName(paths);
    const device = `/dev/mapper/${name}`;
    const fresh = !(await this.isFormatted(paths));
    if (fresh) await run(luksFormatArgv(paths.file), { input: key, timeoutMs: 120_000 });
    try {
      if (!existsSync(device)) await run(luksOpenArgv(paths.file, name), { input: key });
      if (fresh) await run(mkfsExt4Argv(device, { encrypt: false }), { timeoutMs: 600_000 });
      await mkdir(paths.mountPoint, { recursive: true, mode: 0o711 });
      if (!mounted(paths.mountPoint)) await run(mountDeviceArgv(device, paths.mountPoint));
      await chmod(paths.mountPoint, 0o711);
      if (!(await lstat(paths.data).catch(() => undefined))) {
        await mkdir(paths.data, { mode: 0o700 });
        await chown(paths.data, owner.uid, owner.gid);
      }
    } catch (e) {
      await this.close(paths).catch(() => {});
      throw e;
    }
  }

  async close(paths: VolumePaths): Promise<void> {
    await unmount(paths.mountPoint);
    const name = mappingName(paths);
    if (existsSync(`/dev/mapper/${name}`)) await run(luksCloseArgv(name));
  }
}
