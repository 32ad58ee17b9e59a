export * from './orgs.ts';
export * from './apps.ts';
