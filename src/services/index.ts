export * from './orgs.ts';
export * from './apps.ts';
export { authorizeAudited, contextOf } from './audited.ts';
export type { AuditedTarget } from './audited.ts';
export * from './audit.ts';
export * from './secrets.ts';
export * from './deploys.ts';
export * from './secrets-rollout.ts';
export * from './network.ts';
