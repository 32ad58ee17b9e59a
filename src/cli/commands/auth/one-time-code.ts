import { UserError } from '../../../core/index.ts';
import type { Context } from '../../command.ts';
import { promptHidden } from '../../password.ts';

/**
 * canPrompt reports whether the CLI may ask the person at the terminal: stdin is a terminal and was not
 * used for a piped password.
 */
export function canPrompt(ctx: Context, stdinUsed: boolean): boolean {
  return !stdinUsed && ctx.io.stdin.isTTY === true && typeof ctx.io.stdin.setRawMode === 'function';
}

/** promptCode asks for a one-time code (or a recovery code) at the terminal, with echo off. */
export async function promptCode(ctx: Context): Promise<string> {
  const code = (await promptHidden(ctx.io, 'One-time code (or a recovery code): ')).trim();
  if (code === '') throw new UserError('bad_request', 'no code entered');
  return code;
}

/**
 * tooManyLogins rewords a 429 from the API the way shared/CLI.md says it: "too many failed logins; try
 * again in N s", N from the answer's retry_after_s.
 */
export function tooManyLogins(e: unknown): unknown {
  if (!(e instanceof UserError) || e.code !== 'too_many_requests') return e;
  const wait = Number(e.details?.retry_after_s);
  const n = Number.isFinite(wait) && wait > 0 ? Math.ceil(wait) : undefined;
  return new UserError('too_many_requests', n === undefined ? 'too many failed logins; try again later' : `too many failed logins; try again in ${n} s`, {
    hint: 'wait that long before trying again; if you forgot your password, ask an org owner or admin',
    details: e.details,
    cause: e,
  });
}
