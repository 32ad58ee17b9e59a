import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/**
 * src/exec is the only place in Ward that starts processes. Commands are argv arrays — a program and its
 * arguments — never a shell string, so no input is ever interpreted by a shell. Build argv in pure
 * functions elsewhere (tested by equality) and run them here.
 */
export type Argv = readonly [program: string, ...args: string[]];

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** input is written to the process's stdin, then stdin is closed. */
  input?: string | Buffer;
  /** timeoutMs kills the process (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
  /** maxBuffer caps captured stdout and stderr each; default 16 MiB. */
  maxBuffer?: number;
  /** allowFailure returns a non-zero exit as a result instead of throwing ExecError. */
  allowFailure?: boolean;
}

export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** ExecError is a process that could not start, timed out, or exited non-zero. */
export class ExecError extends Error {
  readonly argv: Argv;
  readonly result: RunResult | undefined;
  constructor(argv: Argv, message: string, result?: RunResult, cause?: unknown) {
    super(`${argv[0]}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = 'ExecError';
    this.argv = argv;
    this.result = result;
  }
}

/** run executes argv to completion and returns its exit code and output. */
export function run(argv: Argv, options: RunOptions = {}): Promise<RunResult> {
  const [program, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      args,
      {
        cwd: options.cwd,
        env: options.env,
        timeout: options.timeoutMs ?? 60_000,
        killSignal: 'SIGKILL',
        maxBuffer: options.maxBuffer ?? 16 * 1024 * 1024,
        encoding: 'utf8',
        shell: false,
      },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: NodeJS.Signals }) | null;
        if (e && typeof e.code === 'string') {
          // Spawn failure (ENOENT, EACCES): the program never ran.
          reject(new ExecError(argv, `could not start (${e.code})`, undefined, e));
          return;
        }
        const result: RunResult = {
          code: e ? (typeof e.code === 'number' ? e.code : -1) : 0,
          signal: e?.signal ?? null,
          stdout,
          stderr,
        };
        if (e?.killed) {
          reject(new ExecError(argv, `timed out after ${options.timeoutMs ?? 60_000} ms`, result, e));
        } else if (result.code !== 0 && !options.allowFailure) {
          const tail = stderr.trim().split('\n').slice(-3).join(' | ');
          reject(new ExecError(argv, `exited with ${result.signal ?? result.code}${tail ? `: ${tail}` : ''}`, result, e));
        } else {
          resolve(result);
        }
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** start launches a long-running process (a daemon, a container supervisor) and returns its handle. */
export function start(argv: Argv, options: SpawnOptions = {}): ChildProcess {
  const [program, ...args] = argv;
  return spawn(program, args, { ...options, shell: false });
}

/**
 * processExists says whether a process with this pid exists (signal 0: nothing is sent). A pid alone
 * may have been reused since it was recorded: check what the process is before signalling it.
 */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
