export { CrunRuntime, DEFAULT_INIT, type CrunRuntimeOptions } from './crun-runtime.ts';
export { detectCgroupLayout, type CgroupLayout } from './cgroups.ts';
export { ociSpec, type OciConfig } from './spec.ts';
export { seccompProfile } from './seccomp.ts';
