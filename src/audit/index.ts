export * from './types.ts';
export * from './chain.ts';
export { canonicalJson } from './canonical.ts';
