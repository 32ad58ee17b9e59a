#!/usr/bin/env node
// bin/ward.ts is the `ward` executable: it hands argv and the standard streams to the CLI and sets the
// exit code. Setting process.exitCode instead of calling process.exit lets buffered output to a pipe drain.
import { main } from '../src/cli/index.ts';

// `ward apps list | head -1` closes the pipe early; that is the reader's choice, not an error to report.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });
