import { UserError } from '../core/index.ts';
import type { CliIo, Env, InputStream } from './command.ts';

/**
 * Interrupted is thrown when the user presses Ctrl-C at a prompt. main() exits 130 (128 + SIGINT), as a
 * shell does for an interrupted program, and prints no error: the user knows what they did.
 */
export class Interrupted extends Error {
  constructor() {
    super('interrupted');
    this.name = 'Interrupted';
  }
}

export interface PasswordOptions {
  /** fromStdin: --password-stdin was given. */
  fromStdin: boolean;
  /** confirm asks twice at an interactive prompt (signup), since a typo there would lock the user out. */
  confirm?: boolean;
  /** flag names the command's flag in hints. */
  flag?: string;
}

/**
 * readPassword gets a password the way shared/CLI.md orders it: `--password-stdin`, else WARD_PASSWORD,
 * else a prompt with echo off when stdin is a terminal; else it fails, because waiting on a pipe that
 * will never carry a password would hang a script.
 */
export async function readPassword(io: CliIo, env: Env, opts: PasswordOptions): Promise<string> {
  if (opts.fromStdin) {
    const pw = stripOneNewline(await readAll(io.stdin));
    if (pw === '') throw new UserError('bad_request', 'stdin held no password', { hint: 'pipe it in: printf %s "$PASSWORD" | ward … --password-stdin' });
    return pw;
  }
  const fromEnv = env.WARD_PASSWORD;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (io.stdin.isTTY && typeof io.stdin.setRawMode === 'function') {
    const pw = await promptHidden(io, 'Password: ');
    if (pw === '') throw new UserError('bad_request', 'no password entered');
    if (opts.confirm) {
      const again = await promptHidden(io, 'Password (again): ');
      if (again !== pw) throw new UserError('bad_request', 'the two passwords differ', { hint: 'run the command again' });
    }
    return pw;
  }
  throw new UserError('usage', 'no password given, and stdin is not a terminal to ask for one', {
    hint: 'pass --password-stdin and pipe it in, or set WARD_PASSWORD',
  });
}

/** stripOneNewline removes exactly one trailing newline (`\n` or `\r\n`), as `echo` and editors add one. */
export function stripOneNewline(s: string): string {
  if (s.endsWith('\r\n')) return s.slice(0, -2);
  if (s.endsWith('\n')) return s.slice(0, -1);
  return s;
}

/** readAll reads stdin to its end as UTF-8. */
export async function readAll(stdin: InputStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * promptHidden reads one line from a terminal with echo off (raw mode), so the password never shows on
 * screen or in a terminal's scrollback. It handles backspace, Ctrl-U (erase line), Ctrl-C and Ctrl-D.
 */
export function promptHidden(io: CliIo, label: string): Promise<string> {
  const stdin = io.stdin;
  io.stderr.write(label);
  stdin.setRawMode!(true);
  stdin.setEncoding?.('utf8');
  stdin.resume?.();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (fn: () => void) => {
      stdin.removeListener('data', onData);
      stdin.setRawMode!(false);
      stdin.pause?.();
      io.stderr.write('\n');
      fn();
    };
    const onData = (chunk: string | Buffer) => {
      const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      for (const ch of text) {
        if (ch === '\r' || ch === '\n') return finish(() => resolve(value));
        if (ch === '\u0003') return finish(() => reject(new Interrupted()));
        if (ch === '\u0004') {
          if (value === '') return finish(() => reject(new Interrupted()));
          continue;
        }
        if (ch === '\u007f' || ch === '\b') {
          value = [...value].slice(0, -1).join('');
          continue;
        }
        if (ch === '\u0015') {
          value = '';
          continue;
        }
        // An escape sequence (arrow keys, …) is not part of a password; drop the rest of this chunk.
        if (ch === '\u001b') break;
        if (ch < ' ') continue;
        value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
