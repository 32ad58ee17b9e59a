import type { Assignment } from '../types.ts';

/** VolumeRef is what the agent needs of a volume (a VolumeRecord of the store has all of it). */
export interface VolumeRef {
  id: string;
  orgId: string;
  appId: string;
  name: string;
  sizeBytes: number;
}

/** EncryptionKind names a backend: LUKS2 (dm-crypt) or ext4 with kernel fscrypt. */
export type EncryptionKind = 'luks2' | 'fscrypt';

/** VolumePaths are one volume's places on its host: the loop file, and where its file system is mounted. */
export interface VolumePaths {
  /** dir holds the volume (`<root>/<vol_…>`). */
  dir: string;
  /** file is the loop file: its size is the volume's size; its contents are ciphertext. */
  file: string;
  /** mountPoint is where the volume's file system is mounted while in use. */
  mountPoint: string;
  /** data is the directory instances see (`<mountPoint>/data`), the encrypted one under fscrypt. */
  data: string;
}

/** Owner is who owns a new volume's data directory on the host: the app's user as the instance's user namespace maps it. */
export interface Owner {
  uid: number;
  gid: number;
}

/**
 * EncryptionBackend makes one kind of encrypted volume available and takes it away again.
 *
 * Contract, for every implementation:
 * - open makes the file system mounted at paths.mountPoint with paths.data readable and writable,
 *   formatting the loop file first when `isFormatted` says it is not. The key (32 random bytes) is
 *   passed on stdin to the tools, never in argv, a file or a log; the caller zeroes it afterwards. A
 *   key that does not match the volume throws, leaving nothing mounted.
 * - close removes the key from the kernel and unmounts; afterwards paths.mountPoint is an empty
 *   directory and the data is ciphertext only. It is idempotent and works in a fresh process (it reads
 *   what to remove from the mounted file system, never from memory).
 * - Neither is called concurrently for one volume (the VolumeManager serialises them).
 */
export interface EncryptionBackend {
  readonly kind: EncryptionKind;
  /** description is what `ward volumes show` says about the encryption. */
  readonly description: string;
  isFormatted(paths: VolumePaths): Promise<boolean>;
  open(paths: VolumePaths, key: Buffer, owner: Owner): Promise<void>;
  close(paths: VolumePaths): Promise<void>;
}

/** VolumeGrant is a volume with its unwrapped key, handed to the host that holds it for one use. */
export interface VolumeGrant {
  volume: VolumeRef;
  /** key is the volume's 32-byte key; the receiver zeroes it once the volume is open. */
  key: Buffer;
}

/** VolumeMountGrant is one `[[mounts]]` entry of an instance: the volume, its key, and where it goes. */
export interface VolumeMountGrant extends VolumeGrant {
  destination: string;
}

/**
 * VolumeSource is the control plane as the volumes hook and the VolumeManager see it. Contract:
 * - grantForInstance returns, for each `[[mounts]]` of the assignment's release, the volume and its
 *   key, unwrapped only for an instance being started on the host asking (`hostId`): the control plane
 *   checks the instance is placed there, the volume belongs to the instance's app and lives on that
 *   host, and records each delivery in the audit log (`volume.key_deliver`, never the key). It throws a
 *   UserError when a mount cannot be served (unknown volume, another host).
 * - resolveForInstance is the same without keys, for recover and poststop (nothing is unlocked).
 * - grantForHost returns one volume of this host with its key, for a backup or restore (audited).
 * - formatted records the backend a volume was formatted with, once (what `ward volumes show` says).
 */
export interface VolumeSource {
  grantForInstance(a: Assignment, hostId: string): Promise<VolumeMountGrant[]>;
  resolveForInstance(a: Assignment, hostId: string): Promise<Array<{ volume: VolumeRef; destination: string }>>;
  grantForHost(volumeId: string, hostId: string, purpose: 'backup' | 'restore'): Promise<VolumeGrant>;
  formatted(volumeId: string, hostId: string, encryption: EncryptionKind): Promise<void>;
}
