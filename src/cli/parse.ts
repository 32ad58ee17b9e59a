import { parseArgs } from 'node:util';
import { UserError } from '../core/index.ts';
import { isGroup, type Command, type Group } from './command.ts';
import type { CommandTree } from './help.ts';
import { closest } from './suggest.ts';

/**
 * Turning argv into a command and its inputs. Command words come first (`ward <noun> <verb>` or
 * `ward <command>`), flags and arguments after them. Every mistake is a UserError with code `usage`
 * that names the problem and points at the right `--help`.
 */

export type Resolved =
  | { kind: 'help'; text: 'root' }
  | { kind: 'help'; text: 'group'; group: Group }
  | { kind: 'help'; text: 'command'; command: Command; path: string }
  | { kind: 'command'; command: Command; path: string; rest: string[] };

const isHelp = (a: string | undefined) => a === '--help' || a === '-h';

/** resolveCommand finds the command argv names; it throws UserError for an unknown or missing one. */
export function resolveCommand(tree: CommandTree, argv: readonly string[]): Resolved {
  const [first, second] = argv;
  if (first === undefined || isHelp(first)) return { kind: 'help', text: 'root' };
  if (first === 'help') return helpFor(tree, argv.slice(1));
  if (first === '--version' || first === '-v') {
    const version = tree.find((e): e is Command => e.name === 'version' && !isGroup(e));
    if (version) return { kind: 'command', command: version, path: 'ward version', rest: argv.slice(1) };
  }
  if (first.startsWith('-')) {
    throw new UserError('usage', `unexpected flag ${first} before the command`, { hint: 'flags go after the command: ward <command> [flags]; see ward --help' });
  }
  const entry = tree.find((e) => e.name === first);
  if (!entry) throw unknownCommand(tree, argv);
  if (!isGroup(entry)) return { kind: 'command', command: entry, path: `ward ${entry.name}`, rest: argv.slice(1) };
  const fallback = entry.default === undefined ? undefined : entry.commands.find((c) => c.name === entry.default);
  if (fallback && (second === undefined || (second.startsWith('-') && !isHelp(second)))) {
    return { kind: 'command', command: fallback, path: `ward ${entry.name}`, rest: argv.slice(1) };
  }
  if (second === undefined || isHelp(second)) return { kind: 'help', text: 'group', group: entry };
  if (second.startsWith('-')) {
    throw new UserError('usage', `"ward ${entry.name}" needs a command before its flags`, { hint: `see ward ${entry.name} --help` });
  }
  const cmd = entry.commands.find((c) => c.name === second);
  if (!cmd) throw unknownCommand(tree, argv);
  return { kind: 'command', command: cmd, path: `ward ${entry.name} ${cmd.name}`, rest: argv.slice(2) };
}

/** helpFor answers `ward help [noun [verb]]` like the matching `--help`. */
function helpFor(tree: CommandTree, words: readonly string[]): Resolved {
  if (words.length === 0) return { kind: 'help', text: 'root' };
  const r = resolveCommand(tree, [...words.slice(0, 2), '--help']);
  return r.kind === 'command' ? { kind: 'help', text: 'command', command: r.command, path: r.path } : r;
}

function unknownCommand(tree: CommandTree, argv: readonly string[]): UserError {
  const [first = '', second] = argv;
  const group = tree.find((e): e is Group => e.name === first && isGroup(e));
  if (group) {
    const verb = closest(second ?? '', group.commands.map((c) => c.name));
    return new UserError('usage', `unknown command "ward ${first} ${second}"`, {
      hint: verb ? `did you mean "ward ${first} ${verb}"?` : `see ward ${first} --help`,
    });
  }
  let suggestion: string | undefined;
  // `ward list apps`: the words swapped.
  const swapped = tree.find((e): e is Group => isGroup(e) && e.name === second && e.commands.some((c) => c.name === first));
  if (swapped) suggestion = `ward ${swapped.name} ${first}`;
  if (!suggestion) {
    const name = closest(first, tree.map((e) => e.name));
    const near = tree.find((e) => e.name === name);
    if (near && isGroup(near) && second !== undefined && near.commands.some((c) => c.name === second)) suggestion = `ward ${near.name} ${second}`;
    else if (near) suggestion = `ward ${near.name}`;
  }
  return new UserError('usage', `unknown command "ward ${first}"`, {
    hint: suggestion ? `did you mean "${suggestion}"?` : 'see ward --help for the list of commands',
  });
}

/** Parsed is a command's validated input, before preconditions. */
export interface Parsed {
  help: boolean;
  flags: Record<string, unknown>;
  args: Record<string, unknown>;
}

/**
 * parseInvocation reads a command's flags and positionals with node:util parseArgs. A first lenient
 * pass over parseArgs' tokens finds mistakes and reports them in our words (unknown flag with a
 * suggestion, missing value, flag given twice, bad choice); the strict pass then produces the values, so
 * anything the first pass missed is still refused.
 */
export function parseInvocation(cmd: Command, argv: readonly string[], path: string): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, f] of Object.entries(cmd.flags)) {
    options[name] = { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  }
  const helpHint = `see ${path} --help`;
  const usage = (message: string, hint = helpHint) => new UserError('usage', message, { hint });

  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return { help: true, flags: {}, args: {} };

  const seen = new Set<string>();
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'positional') {
      positionals.push(t.value);
      continue;
    }
    if (t.kind !== 'option') continue;
    const spec = cmd.flags[t.name];
    if (!spec) {
      const near = closest(t.name, Object.keys(cmd.flags));
      throw usage(`unknown flag ${t.rawName} for ${path}`, near ? `did you mean --${near}? ${helpHint}` : helpHint);
    }
    const label = `--${t.name}`;
    if (spec.type === 'boolean') {
      if (t.value !== undefined) throw usage(`flag ${label} takes no value`);
    } else {
      if (t.value === undefined || (!t.inlineValue && t.value.startsWith('-') && t.value !== '-')) {
        // A value that starts with "-" must be attached (--email=-x): `--email --otp 1` is a forgotten value.
        throw usage(`flag ${label} needs a value`);
      }
      if (spec.choices && !spec.choices.includes(t.value)) {
        throw usage(`invalid value ${JSON.stringify(t.value)} for ${label}`, `use one of: ${spec.choices.join(', ')}`);
      }
    }
    if (seen.has(t.name) && !spec.multiple) throw usage(`flag ${label} is given more than once`);
    seen.add(t.name);
  }
  for (const [name, f] of Object.entries(cmd.flags)) {
    if (f.required && !seen.has(name)) throw usage(`${path} needs --${name} ${f.placeholder ?? 'VALUE'}`);
  }

  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true }).values;
  } catch (e) {
    throw usage((e as Error).message);
  }
  const flags: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(cmd.flags)) {
    flags[name] = values[name] ?? (f.type === 'boolean' ? false : f.multiple ? [] : undefined);
  }

  const args: Record<string, unknown> = {};
  let i = 0;
  for (const a of cmd.args) {
    if (a.variadic) {
      args[a.name] = positionals.slice(i);
      if (a.required && positionals.length <= i) throw usage(`${path} needs ${a.name}`);
      i = positionals.length;
    } else if (i < positionals.length) {
      args[a.name] = positionals[i++];
    } else if (a.required) {
      throw usage(`${path} needs ${a.name}`);
    } else {
      args[a.name] = undefined;
    }
  }
  if (i < positionals.length) throw usage(`unexpected argument ${JSON.stringify(positionals[i])} for ${path}`);
  return { help: false, flags, args };
}
