#!/usr/bin/env node
// bin/ward.ts is the `ward` executable: it hands argv and the standard streams to the CLI and sets the
// exit code. Setting process.exitCode instead of calling process.exit lets buffered output to a pipe drain.
import { enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

// Node keeps the compiled (and type-stripped) code of every module it loads in this cache, so a `ward`
// command after the first starts in about a third of the time. The cache is in the user's own cache
// directory, not the shared /tmp Node would pick: code from it runs with this user's rights.
// NODE_DISABLE_COMPILE_CACHE=1 turns it off.
try {
  enableCompileCache(join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ward', 'node-compile-cache'));
} catch {
  // No cache: slower starts, same behaviour.
}
const { main } = await import('../src/cli/index.ts');

// `ward apps list | head -1` closes the pipe early; that is the reader's choice, not an error to report.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });
