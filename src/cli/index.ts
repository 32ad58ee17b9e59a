import { isUserError, UserError } from '../core/index.ts';
import { resolveApp } from './app-name.ts';
import { createApiClient } from './client.ts';
import type { CliIo, Context, Env, TextSink } from './command.ts';
import { commandTree } from './commands/index.ts';
import { commandHelp, groupHelp, rootHelp, type CommandTree } from './help.ts';
import { createOutput } from './output.ts';
import { parseInvocation, resolveCommand } from './parse.ts';
import { Interrupted } from './password.ts';
import { configDirFrom, fileSessionStore } from './session.ts';

export type { CliIo, Command, Context, Group } from './command.ts';
export { defineCommand, jsonFlag } from './command.ts';

/** MainOptions replace what main() would otherwise take from the process; tests set them. */
export interface MainOptions {
  env?: Env;
  cwd?: string;
  fetch?: typeof globalThis.fetch;
  tree?: CommandTree;
  untilSignal?: () => Promise<NodeJS.Signals>;
  apiTimeoutMs?: number;
}

/**
 * main runs one CLI invocation and returns its exit code:
 * - 0: success, including `--help`.
 * - 1: a user error (`Error:` and `Hint:` on stderr), or a bug (`Error: unexpected: …`, with the stack
 *   only under WARD_DEBUG=1). Bugs share exit 1 because shared/CLI.md promises scripts only "0 or not";
 *   the `unexpected:` prefix is what tells them apart, for people and for tests.
 * - 130: interrupted at a prompt with Ctrl-C.
 * main never calls process.exit and never throws.
 */
export async function main(argv: readonly string[], io: CliIo, options: MainOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const tree = options.tree ?? commandTree;
  try {
    const resolved = resolveCommand(tree, argv);
    if (resolved.kind === 'help') {
      if (resolved.text === 'root') io.stdout.write(rootHelp(tree));
      else if (resolved.text === 'group') io.stdout.write(groupHelp(resolved.group));
      else io.stdout.write(commandHelp(resolved.command, resolved.path));
      return 0;
    }
    const { command, path } = resolved;
    const parsed = parseInvocation(command, resolved.rest, path);
    if (parsed.help) {
      io.stdout.write(commandHelp(command, path));
      return 0;
    }
    command.check({ flags: parsed.flags, args: parsed.args });
    const configDir = configDirFrom(env);
    const session = fileSessionStore(configDir);
    const ctx: Context = {
      io,
      env,
      cwd: options.cwd ?? process.cwd(),
      configDir,
      session,
      api: createApiClient({ env, session, fetch: options.fetch, timeoutMs: options.apiTimeoutMs }),
      out: createOutput(io.stdout, io.stderr, { json: parsed.flags.json === true }),
      commandPath: path,
      untilSignal: options.untilSignal ?? untilProcessSignal,
    };
    if (command.requireSession) {
      const target = await ctx.api.target();
      if (!target.credential) throw target.missing ?? new UserError('not_logged_in', 'you are not logged in', { hint: 'run `ward auth login`' });
    }
    let app: string | undefined;
    if (command.requireApp !== undefined) {
      const flag = parsed.flags.app as string | undefined;
      const positional = typeof command.requireApp === 'object' ? (parsed.args[command.requireApp.positional] as string | undefined) : undefined;
      if (flag !== undefined && positional !== undefined && flag !== positional) {
        throw new UserError('usage', `two apps named: "${positional}" and -a ${flag}`, { hint: `name the app once; see ${path} --help` });
      }
      app = await resolveApp(positional ?? flag, ctx.cwd);
    }
    const code = await command.run(ctx, { flags: parsed.flags, args: parsed.args, app });
    return code ?? 0;
  } catch (e) {
    return reportError(e, io.stderr, env.WARD_DEBUG === '1');
  }
}

/** reportError prints an error the way shared/CLI.md asks and returns the exit code for it. */
export function reportError(e: unknown, stderr: TextSink, debug: boolean): number {
  if (e instanceof Interrupted) return 130;
  if (isUserError(e)) {
    stderr.write(`Error: ${e.message}\n`);
    if (e.hint) stderr.write(`Hint: ${e.hint}\n`);
    if (debug) stderr.write(`Debug: code ${e.code}${e.cause ? `; cause: ${stackOf(e.cause)}` : ''}\n`);
    return 1;
  }
  stderr.write(`Error: unexpected: ${e instanceof Error ? e.message : String(e)}\n`);
  if (debug) stderr.write(`${stackOf(e)}\n`);
  else stderr.write('Hint: this is a bug in Ward; run again with WARD_DEBUG=1 to see the stack trace, and report it\n');
  return 1;
}

function stackOf(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  let text = e.stack ?? `${e.name}: ${e.message}`;
  if (e.cause !== undefined) text += `\nCaused by: ${stackOf(e.cause)}`;
  return text;
}

/** untilProcessSignal resolves on the first SIGINT or SIGTERM, then stops catching either. */
function untilProcessSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
  });
}
