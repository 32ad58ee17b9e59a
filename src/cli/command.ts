import type { ApiClient } from './client.ts';
import type { Output } from './output.ts';
import type { SessionStore } from './session.ts';

/**
 * The command framework's vocabulary. A command is a plain object made by defineCommand in its own file
 * (`commands/<noun>/<verb>.ts`); it declares its arguments, flags and preconditions, and its run function
 * gets everything it touches through a Context, never from globals, so tests can run the whole CLI
 * in-process with fake streams, a fake environment and a real HTTP server on port 0.
 */

/** TextSink is where the CLI writes text: process.stdout/stderr, or a buffer in tests. */
export interface TextSink {
  write(chunk: string): unknown;
  /** isTTY is true when the stream is a terminal (then the CLI may draw, e.g. a QR code). */
  isTTY?: boolean;
}

/**
 * InputStream is the CLI's stdin: readable as a stream of chunks; when it is a terminal (isTTY), the
 * password prompt turns echo off with setRawMode.
 */
export interface InputStream extends AsyncIterable<string | Buffer> {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
  setEncoding?(encoding: BufferEncoding): unknown;
  on(event: 'data', listener: (chunk: string | Buffer) => void): unknown;
  removeListener(event: 'data', listener: (chunk: string | Buffer) => void): unknown;
  resume?(): unknown;
  pause?(): unknown;
}

/** CliIo is the three standard streams main() reads and writes. */
export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  stdin: InputStream;
}

/** Env is the environment the CLI reads (WARD_API_URL, WARD_API_TOKEN, WARD_CONFIG_DIR, …). */
export type Env = Readonly<Record<string, string | undefined>>;

/** Context is everything a command may use. One is made per invocation by main(). */
export interface Context {
  io: CliIo;
  env: Env;
  /** cwd is where ./ward.toml is looked for. */
  cwd: string;
  /** configDir holds session.json: WARD_CONFIG_DIR, or ~/.config/ward. */
  configDir: string;
  session: SessionStore;
  api: ApiClient;
  /** out prints results: JSON when the command got --json, tables otherwise; prose to stderr. */
  out: Output;
  /** commandPath is how the user called this command, e.g. "ward apps show", for messages. */
  commandPath: string;
  /**
   * untilSignal resolves with the first SIGINT or SIGTERM that arrives after it is called; only
   * long-running commands (ward server) use it. After it resolves, a second signal is not caught, so it
   * ends the process the default way: a stuck shutdown can always be interrupted.
   */
  untilSignal(): Promise<NodeJS.Signals>;
}

/** FlagSpec declares one `--flag`. Flag names are kebab-case, as the user types them. */
export interface FlagSpec {
  type: 'string' | 'boolean';
  /** short is a one-letter alias, e.g. `a` for `-a`. */
  short?: string;
  /** description is one line for the help text. */
  description: string;
  /** placeholder names a string flag's value in help, e.g. EMAIL; default VALUE. */
  placeholder?: string;
  /** multiple makes a string flag repeatable; its value is then an array. */
  multiple?: boolean;
  /** required makes a string flag mandatory; the parser reports it missing, not the command. */
  required?: boolean;
  /** choices restrict a string flag's values; the parser reports anything else. */
  choices?: readonly string[];
}

/** ArgSpec declares one positional argument. Names are upper-case, as help shows them. */
export interface ArgSpec {
  name: string;
  description: string;
  required?: boolean;
  /** variadic takes every remaining positional; only the last argument may be variadic. */
  variadic?: boolean;
}

/**
 * AppPrecondition declares that a command works on one app: `true` resolves it from `-a/--app` or the
 * `app` of ./ward.toml; `{ positional: 'NAME' }` lets that positional, when given, win over both.
 */
export type AppPrecondition = true | { positional: string };

type FlagValue<F extends FlagSpec> = F['type'] extends 'boolean'
  ? boolean
  : F['multiple'] extends true
    ? string[]
    : F['required'] extends true
      ? string
      : string | undefined;

/** FlagValues is the parsed form of a command's flags: booleans default to false, lists to []. */
export type FlagValues<F extends Record<string, FlagSpec>> = { [K in keyof F]: FlagValue<F[K]> };

type ArgValue<A extends ArgSpec> = A['variadic'] extends true ? string[] : A['required'] extends true ? string : string | undefined;

/** ArgValues is the parsed form of a command's positionals, keyed by their names. */
export type ArgValues<A extends readonly ArgSpec[]> = { [E in A[number] as E['name']]: ArgValue<E> };

/** RunInput is what a command's run function receives besides the Context. */
export interface RunInput<F extends Record<string, FlagSpec>, A extends readonly ArgSpec[], P extends AppPrecondition | undefined> {
  flags: FlagValues<F>;
  args: ArgValues<A>;
  /** app is the resolved app name when the command declares requireApp. */
  app: P extends undefined ? undefined : string;
}

/** CommandSpec is what a command file passes to defineCommand. */
export interface CommandSpec<F extends Record<string, FlagSpec>, A extends readonly ArgSpec[], P extends AppPrecondition | undefined> {
  /** name is the word the user types: the verb, or the whole command for top-level ones. */
  name: string;
  /** summary is one line, shown in lists of commands. */
  summary: string;
  /** description is shown in the command's own help, below the usage line. */
  description?: string;
  examples?: readonly string[];
  args?: A;
  flags?: F;
  /** requireSession: the command needs a stored session or WARD_API_TOKEN; checked before run. */
  requireSession?: boolean;
  /** requireApp: the command needs an app; adds `-a, --app` and resolves it before run. */
  requireApp?: P;
  /**
   * check validates the input before the preconditions and run: mistakes that need no server, such as
   * a malformed name or a missing --yes, are reported before "you are not logged in". It throws UserError.
   */
  check?(input: Omit<RunInput<F, A, P>, 'app'>): void;
  /** run does the work. It returns the exit code, or nothing for 0; failures throw (UserError for the user's). */
  run(ctx: Context, input: RunInput<F, A, P>): Promise<number | void>;
}

/** Command is a defined command, with its types erased so commands can sit in one list. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly description: string | undefined;
  readonly examples: readonly string[];
  readonly args: readonly ArgSpec[];
  readonly flags: Readonly<Record<string, FlagSpec>>;
  readonly requireSession: boolean;
  readonly requireApp: AppPrecondition | undefined;
  check(input: { flags: Record<string, unknown>; args: Record<string, unknown> }): void;
  run(ctx: Context, input: { flags: Record<string, unknown>; args: Record<string, unknown>; app: string | undefined }): Promise<number | void>;
}

/** Group is a noun (`apps`, `orgs`) holding its verbs. */
export interface Group {
  readonly name: string;
  readonly summary: string;
  readonly description?: string;
  readonly commands: readonly Command[];
  /**
   * default is the verb `ward <noun>` runs when no verb follows (nothing, or a flag): `ward releases`
   * lists, as `ward releases list` does. It must be one of commands.
   */
  readonly default?: string;
}

/** isGroup tells a noun from a top-level command in the command tree. */
export function isGroup(entry: Command | Group): entry is Group {
  return 'commands' in entry;
}

/** jsonFlag is the `--json` flag every command that prints data declares. */
export const jsonFlag = { type: 'boolean', description: 'Print one JSON document on stdout instead of a table' } as const satisfies FlagSpec;

/**
 * defineCommand checks a command's declaration and returns it in the erased form the registry holds.
 * The generic parameters exist only so run() sees precisely typed flags and args.
 */
export function defineCommand<
  const F extends Record<string, FlagSpec> = {},
  const A extends readonly ArgSpec[] = [],
  const P extends AppPrecondition | undefined = undefined,
>(spec: CommandSpec<F, A, P>): Command {
  const args: readonly ArgSpec[] = spec.args ?? [];
  const flags: Record<string, FlagSpec> = { ...(spec.flags ?? {}) };
  // Declaration mistakes are bugs, caught by the first test that loads the command: fail loudly.
  args.forEach((a, i) => {
    if (a.variadic && i !== args.length - 1) throw new Error(`${spec.name}: only the last argument may be variadic`);
    if (a.required && args.slice(0, i).some((b) => !b.required)) throw new Error(`${spec.name}: a required argument follows an optional one`);
  });
  if (spec.requireApp !== undefined) {
    if ('app' in flags) throw new Error(`${spec.name}: requireApp adds --app itself`);
    flags.app = { type: 'string', short: 'a', placeholder: 'APP', description: 'The app (default: the app of ./ward.toml)' };
    if (typeof spec.requireApp === 'object' && !args.some((a) => a.name === (spec.requireApp as { positional: string }).positional)) {
      throw new Error(`${spec.name}: requireApp names an argument it does not declare`);
    }
  }
  if ('help' in flags) throw new Error(`${spec.name}: --help is built in`);
  const shorts = new Set<string>(['h']);
  for (const [name, f] of Object.entries(flags)) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`${spec.name}: flag --${name} is not kebab-case`);
    if (f.short !== undefined) {
      if (f.short.length !== 1 || shorts.has(f.short)) throw new Error(`${spec.name}: short flag -${f.short} is invalid or taken`);
      shorts.add(f.short);
    }
    if (f.type === 'boolean' && (f.multiple || f.required || f.choices)) throw new Error(`${spec.name}: --${name} is boolean`);
  }
  return {
    name: spec.name,
    summary: spec.summary,
    description: spec.description,
    examples: spec.examples ?? [],
    args,
    flags,
    requireSession: spec.requireSession ?? false,
    requireApp: spec.requireApp,
    check: (spec.check ?? (() => {})) as Command['check'],
    run: spec.run as Command['run'],
  };
}
