// The runtime's public surface: the Runtime contract, its crun implementation and the process-level fake.
export * from './types.ts';
export { CrunRuntime, DEFAULT_INIT, detectCgroupLayout, type CrunRuntimeOptions, type CgroupLayout } from './crun/index.ts';
export { ProcessRuntime, type ProcessRuntimeOptions } from './process-runtime.ts';
export { MIN_MEMORY_BYTES, MIN_PIDS } from './validate.ts';
// Images: references, the content-addressed store and the safe unpacker. IdMapping and
// DEFAULT_ID_MAPPING are the runtime's own (same shape), so they are not re-exported from images.
export {
  ImageStore,
  parseReference,
  formatReference,
  DEFAULT_LIMITS,
  hostPlatform,
  formatPlatform,
  isLoopbackHost,
  transportPolicy,
  type GcResult,
  type Image,
  type ImageEvent,
  type ImageStoreOptions,
  type PullOptions,
  type ArchiveReference,
  type ImageReference,
  type RegistryReference,
  type UnpackLimits,
  type ImageConfig,
  type Platform,
  type RegistryCredentials,
  type RegistryOptions,
  type TransportPolicy,
} from './images/index.ts';
