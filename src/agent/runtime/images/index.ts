/**
 * Images: references, sources (registries, oci-archive, docker-archive, oci directories), a
 * content-addressed blob store and the safe unpacker, behind one ImageStore. docs/images.md describes
 * the rules; the unpacker (unpack.ts) is security-critical.
 */
export { ImageStore, DEFAULT_ID_MAPPING } from './store.ts';
export type { GcResult, Image, ImageEvent, ImageStoreOptions, PullOptions } from './store.ts';
export { parseReference, formatReference } from './reference.ts';
export type { ArchiveReference, ImageReference, RegistryReference } from './reference.ts';
export { DEFAULT_LIMITS } from './unpack.ts';
export type { IdMapping, UnpackLimits } from './unpack.ts';
export { hostPlatform, formatPlatform } from './manifest.ts';
export type { ImageConfig, Platform } from './manifest.ts';
export { isLoopbackHost, transportPolicy } from './registry.ts';
export type { RegistryCredentials, RegistryOptions, TransportPolicy } from './registry.ts';
// writeTar builds layers for tests and tools (evil ones included: it validates nothing).
export { writeTar } from './tar.ts';
export type { TarWriteEntry } from './tar.ts';
