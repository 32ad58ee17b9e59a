/**
 * The volumes folder's public surface: encrypted volumes on loop files (docs/volumes.md). The
 * VolumeManager opens and closes them; its backends are LUKS2 (dm-crypt) and ext4 with fscrypt v2.
 */
export { VolumeManager, type VolumeManagerOptions } from './manager.ts';
export { backendFor, chooseBackend, hostCrypto, type HostCrypto } from './detect.ts';
export { FscryptBackend, fscryptMasterKey } from './fscrypt.ts';
export { Luks2Backend } from './luks.ts';
export { fscryptArgv, luksCloseArgv, luksFormatArgv, luksOpenArgv, mkfsExt4Argv, mountDeviceArgv, mountLoopArgv, umountArgv } from './commands.ts';
export type { EncryptionBackend, EncryptionKind, Owner, VolumeGrant, VolumeMountGrant, VolumePaths, VolumeRef, VolumeSource } from './types.ts';
