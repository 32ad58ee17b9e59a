import { isGroup, type Command, type FlagSpec, type Group } from './command.ts';

/**
 * Help text is generated from the command definitions, so it cannot drift from what the parser accepts.
 * Three levels: `ward --help`, `ward <noun> --help`, `ward <noun> <verb> --help`.
 */

export type CommandTree = ReadonlyArray<Command | Group>;

const ENVIRONMENT: ReadonlyArray<readonly [string, string]> = [
  ['WARD_API_URL', 'The Ward API to talk to (default http://127.0.0.1:4280)'],
  ['WARD_API_TOKEN', 'An API token; overrides the stored session'],
  ['WARD_CONFIG_DIR', 'Where the CLI keeps its session (default ~/.config/ward)'],
  ['WARD_PASSWORD', 'The password for signup and login, instead of a prompt'],
  ['WARD_DEBUG', 'Set to 1 to print stack traces of unexpected errors'],
];

/** rootHelp lists every noun and top-level command. */
export function rootHelp(tree: CommandTree): string {
  const entries = [...tree].sort((a, b) => a.name.localeCompare(b.name));
  return [
    'Ward runs apps on your own servers.',
    '',
    'Usage:',
    '  ward <command> [flags]',
    '  ward <noun> <command> [flags]',
    '',
    'Commands:',
    ...twoColumns(entries.map((e) => [e.name, e.summary])),
    '',
    'Environment:',
    ...twoColumns(ENVIRONMENT),
    '',
    'Run `ward <command> --help` for more about a command.',
    '',
  ].join('\n');
}

/** groupHelp lists the verbs of one noun. */
export function groupHelp(group: Group): string {
  return [
    group.summary,
    ...(group.description ? ['', group.description] : []),
    '',
    'Usage:',
    `  ward ${group.name} <command> [flags]`,
    ...(group.default ? [`  ward ${group.name} [flags]          (same as ward ${group.name} ${group.default})`] : []),
    '',
    'Commands:',
    ...twoColumns(group.commands.map((c) => [c.name, c.summary])),
    '',
    `Run \`ward ${group.name} <command> --help\` for more about a command.`,
    '',
  ].join('\n');
}

/** commandHelp describes one command: usage line, description, arguments, flags and examples. */
export function commandHelp(cmd: Command, path: string): string {
  const lines = [cmd.summary, '', 'Usage:', `  ${usageLine(cmd, path)}`];
  if (cmd.description) lines.push('', ...cmd.description.split('\n'));
  if (cmd.args.length) {
    lines.push('', 'Arguments:', ...twoColumns(cmd.args.map((a) => [a.name, a.description])));
  }
  const flagRows: Array<[string, string]> = Object.entries(cmd.flags)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, f]) => [flagLabel(name, f), flagDescription(f)]);
  flagRows.push(['-h, --help', 'Show this help']);
  lines.push('', 'Flags:', ...twoColumns(flagRows));
  if (cmd.examples.length) lines.push('', 'Examples:', ...cmd.examples.map((e) => `  ${e}`));
  lines.push('');
  return lines.join('\n');
}

/** usageLine is `ward apps show [NAME] [flags]`, with required flags spelled out. */
export function usageLine(cmd: Command, path: string): string {
  const parts = [path];
  for (const a of cmd.args) {
    const word = a.variadic ? `${a.name}...` : a.name;
    parts.push(a.required ? word : `[${word}]`);
  }
  for (const [name, f] of Object.entries(cmd.flags)) {
    if (f.required) parts.push(`--${name} ${placeholder(f)}`);
  }
  parts.push('[flags]');
  return parts.join(' ');
}

function flagLabel(name: string, f: FlagSpec): string {
  const short = f.short ? `-${f.short}, ` : '    ';
  return `${short}--${name}${f.type === 'string' ? ` ${placeholder(f)}` : ''}`;
}

function flagDescription(f: FlagSpec): string {
  let d = f.description;
  if (f.choices) d += ` (${f.choices.join('|')})`;
  if (f.required) d += ' (required)';
  if (f.multiple) d += ' (repeatable)';
  return d;
}

function placeholder(f: FlagSpec): string {
  return f.placeholder ?? (f.choices ? f.choices.join('|') : 'VALUE');
}

function twoColumns(rows: ReadonlyArray<readonly [string, string]>): string[] {
  const w = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `  ${a.padEnd(w)}   ${b}`.trimEnd());
}
