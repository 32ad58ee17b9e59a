/**
 * The commands the volume backends run, as argv arrays built by pure functions (tested by equality in
 * commands.test.ts) and run through src/exec. A volume's key never appears here: it goes to the
 * command's stdin (cryptsetup `--key-file -`, fscrypt-ioctl.py add-key).
 */
import { fileURLToPath } from 'node:url';
import type { Argv } from '../../exec/index.ts';

/** FSCRYPT_IOCTL is the helper that makes the kernel's fscrypt v2 ioctls (see the file's header). */
export const FSCRYPT_IOCTL = fileURLToPath(new URL('./fscrypt-ioctl.py', import.meta.url));

/** PYTHON is Debian's interpreter (scripts/bootstrap installs python3); an absolute path, not whatever PATH finds. */
export const PYTHON = '/usr/bin/python3';

/**
 * mkfsExt4Argv formats a volume: ext4 with every block for the app (`-m 0`), its root owned by host
 * root, and, for fscrypt, the `encrypt` feature. `-F` because the target is a regular file (or a
 * dm-crypt device); `-q` keeps the output short. The label says what it is to anyone who finds it.
 */
export function mkfsExt4Argv(target: string, options: { encrypt: boolean }): Argv {
  return ['mkfs.ext4', '-q', '-F', ...(options.encrypt ? ['-O', 'encrypt'] : []), '-m', '0', '-E', 'root_owner=0:0', '-L', 'ward-volume', target];
}

/**
 * mountLoopArgv mounts an ext4 loop file. `-o loop` lets mount allocate the loop device with the
 * autoclear flag: the device is freed by the unmount itself, so no failure path leaves one behind.
 * nosuid and nodev: a volume is data, never a way to gain privileges on the host or in the instance.
 */
export function mountLoopArgv(file: string, target: string): Argv {
  return ['mount', '-t', 'ext4', '-o', 'loop,nosuid,nodev', file, target];
}

/** mountDeviceArgv mounts an ext4 block device (the opened dm-crypt mapping). */
export function mountDeviceArgv(device: string, target: string): Argv {
  return ['mount', '-t', 'ext4', '-o', 'nosuid,nodev', device, target];
}

/** umountArgv unmounts; lazy detaches a busy mount now and frees it when its last user goes. */
export function umountArgv(target: string, options: { lazy?: boolean } = {}): Argv {
  return options.lazy ? ['umount', '--lazy', target] : ['umount', target];
}

/**
 * luksFormatArgv formats a loop file as LUKS2 with AES-XTS (512-bit key: AES-256 in XTS mode). The
 * passphrase is the volume's random 256-bit key on stdin, so the key slot needs no slow KDF: PBKDF2
 * with the minimum iterations (argon2's memory cost buys nothing against a random key).
 */
export function luksFormatArgv(file: string): Argv {
  return [
    'cryptsetup', 'luksFormat', '--batch-mode', '--type', 'luks2', '--cipher', 'aes-xts-plain64', '--key-size', '512',
    '--hash', 'sha256', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', '-', file,
  ];
}

/** luksOpenArgv opens the LUKS2 file as /dev/mapper/<name>; cryptsetup attaches an autoclear loop device. */
export function luksOpenArgv(file: string, name: string): Argv {
  return ['cryptsetup', 'open', '--type', 'luks2', '--key-file', '-', file, name];
}

/** luksCloseArgv closes the mapping: the kernel forgets the key. */
export function luksCloseArgv(name: string): Argv {
  return ['cryptsetup', 'close', name];
}

/** fscryptArgv runs one operation of the fscrypt helper (add-key reads the key on stdin). */
export function fscryptArgv(op: 'add-key', mountPoint: string): Argv;
export function fscryptArgv(op: 'get-policy', dir: string): Argv;
export function fscryptArgv(op: 'set-policy', dir: string, identifier: string): Argv;
export function fscryptArgv(op: 'key-status' | 'remove-key', mountPoint: string, identifier: string): Argv;
export function fscryptArgv(op: string, path: string, identifier?: string): Argv {
  return [PYTHON, FSCRYPT_IOCTL, op, path, ...(identifier === undefined ? [] : [identifier])];
}
