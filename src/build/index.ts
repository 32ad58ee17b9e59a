/**
 * Image builds from what the machine has: `buildNodeImage` makes an OCI image archive of a Node.js app
 * from the host's Node.js and its libraries, deterministically and offline (`ward up` builds
 * examples/hello with it). See docs/quickstart.md.
 */
export { buildNodeImage, lddArgv, parseLdd } from './node-image.ts';
export type { BuiltImage, NodeImageOptions } from './node-image.ts';
