import { UserError } from '../../../core/index.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { promptHidden, readAll, stripOneNewline } from '../../password.ts';
import { tooManyLogins } from './one-time-code.ts';

export default defineCommand({
  name: 'password',
  summary: 'Change your password; your other sessions are signed out',
  description: [
    'Asks for the current password and the new one (twice). Without a terminal: --password-stdin reads',
    'two lines, the current password then the new one; or set WARD_PASSWORD (current) and',
    'WARD_NEW_PASSWORD (new). Every other session of your account is revoked; this one stays.',
  ].join('\n'),
  flags: {
    'password-stdin': { type: 'boolean', description: 'Read the current and the new password from stdin, one per line' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: ['ward auth password', 'printf "%s\\n%s\\n" "$OLD" "$NEW" | ward auth password --password-stdin'],
  async run(ctx, { flags }) {
    let current: string;
    let next: string;
    if (flags['password-stdin']) {
      const lines = stripOneNewline(await readAll(ctx.io.stdin)).split(/\r?\n/);
      if (lines.length !== 2 || !lines[0] || !lines[1]) {
        throw new UserError('bad_request', 'stdin must hold two lines: the current password, then the new one');
      }
      [current, next] = [lines[0], lines[1]];
    } else if (ctx.env.WARD_PASSWORD && ctx.env.WARD_NEW_PASSWORD) {
      [current, next] = [ctx.env.WARD_PASSWORD, ctx.env.WARD_NEW_PASSWORD];
    } else if (ctx.io.stdin.isTTY && typeof ctx.io.stdin.setRawMode === 'function') {
      current = await promptHidden(ctx.io, 'Current password: ');
      next = await promptHidden(ctx.io, 'New password: ');
      if ((await promptHidden(ctx.io, 'New password (again): ')) !== next) throw new UserError('bad_request', 'the two new passwords differ', { hint: 'run the command again' });
    } else {
      throw new UserError('usage', 'no passwords given, and stdin is not a terminal to ask for them', {
        hint: 'pipe them in with --password-stdin, or set WARD_PASSWORD and WARD_NEW_PASSWORD',
      });
    }
    let r: { revoked_sessions: number };
    try {
      r = await ctx.api.post<{ revoked_sessions: number }>('/v1/auth/password', { current_password: current, new_password: next });
    } catch (e) {
      throw tooManyLogins(e);
    }
    ctx.out.result(r, () => ctx.out.info(`Password changed. ${r.revoked_sessions} other session(s) were signed out.`));
  },
});
