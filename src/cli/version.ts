import pkg from '../../package.json' with { type: 'json' };

/** VERSION is Ward's version, from package.json: the CLI, the API and the server share one. */
export const VERSION: string = pkg.version;
