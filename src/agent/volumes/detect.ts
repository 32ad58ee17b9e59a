import { existsSync, readFileSync } from 'node:fs';
import { FscryptBackend } from './fscrypt.ts';
import { Luks2Backend } from './luks.ts';
import type { EncryptionBackend } from './types.ts';

/** HostCrypto is what a host offers for volume encryption (read from the kernel's files). */
export interface HostCrypto {
  /** deviceMapper: /dev/mapper/control exists and the kernel lists device-mapper in /proc/misc. */
  deviceMapper: boolean;
  /** cryptsetup: the cryptsetup program is installed. */
  cryptsetup: boolean;
}

/** hostCrypto reads what this host offers. */
export function hostCrypto(): HostCrypto {
  let misc = '';
  try {
    misc = readFileSync('/proc/misc', 'utf8');
  } catch {
    // No /proc/misc: no device-mapper either.
  }
  return {
    deviceMapper: existsSync('/dev/mapper/control') && /\bdevice-mapper\b/.test(misc),
    cryptsetup: ['/usr/sbin/cryptsetup', '/sbin/cryptsetup'].some((p) => existsSync(p)),
  };
}

/**
 * chooseBackend picks LUKS2 where device-mapper and cryptsetup exist (the whole device encrypted),
 * fscrypt otherwise (ARCHITECTURE.md §7: no device-mapper on this project's machines).
 */
export function chooseBackend(c: HostCrypto): EncryptionBackend {
  return c.deviceMapper && c.cryptsetup ? new Luks2Backend() : new FscryptBackend();
}

/** backendFor returns the backend of a kind (a volume formatted as LUKS2 opens only as LUKS2). */
export function backendFor(kind: string): EncryptionBackend | undefined {
  if (kind === 'luks2') return new Luks2Backend();
  if (kind === 'fscrypt') return new FscryptBackend();
  return undefined;
}
