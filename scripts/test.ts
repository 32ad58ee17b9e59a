// scripts/test.ts is `npm test`: the type check, then every test file (unit tests beside their code,
// integration and e2e tests under test/) in parallel worker processes. Extra arguments are passed to
// `node --test` (for example a file path or `--test-name-pattern`).
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

const args = process.argv.slice(2);
const node = process.execPath;

function step(name: string, argv: string[]): void {
  const started = Date.now();
  process.stderr.write(`\n== ${name}\n`);
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'inherit' });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.status !== 0) {
    process.stderr.write(`== ${name} failed after ${secs}s\n`);
    process.exit(r.status ?? 1);
  }
  process.stderr.write(`== ${name} ok in ${secs}s\n`);
}

if (!args.length && process.env.WARD_SKIP_TYPECHECK !== '1') {
  step('typecheck (tsc --noEmit)', [node, 'node_modules/typescript/bin/tsc', '--noEmit', '-p', '.']);
}

// Most suites wait on I/O (databases, processes, sockets), so run more files at once than there are cores.
const concurrency = process.env.WARD_TEST_CONCURRENCY ?? String(Math.max(4, availableParallelism() * 2));
const files = args.some((a) => !a.startsWith('-'))
  ? []
  : ['src/**/*.test.ts', 'bin/**/*.test.ts', 'test/**/*.test.ts'];
step('tests (node --test)', [node, '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files, ...args]);
