import pkg from '../../package.json' with { type: 'json' };

/** VERSION is Ward's version, from package.json. */
export const VERSION: string = pkg.version;
