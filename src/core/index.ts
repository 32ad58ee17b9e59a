export * from './ids.ts';
export * from './errors.ts';
export * from './clock.ts';
export * from './units.ts';
export * from './names.ts';
export * from './types.ts';
export * from './version.ts';
export * from './text.ts';
