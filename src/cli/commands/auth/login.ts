import type { LoginAnswer } from '../../api-types.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { UserError } from '../../../core/index.ts';
import { readPassword } from '../../password.ts';
import { canPrompt, promptCode, tooManyLogins } from './one-time-code.ts';
import { saveSession } from './session-answer.ts';

export default defineCommand({
  name: 'login',
  summary: 'Log in and store the session',
  description: [
    'Logs in to WARD_API_URL (default http://127.0.0.1:4280) and stores the session in',
    'WARD_CONFIG_DIR/session.json, readable only by you. The password comes from --password-stdin,',
    'else WARD_PASSWORD, else a prompt. Once your account has MFA, pass --otp CODE (a code from your',
    'authenticator app, or a recovery code); at a terminal you are asked for it when it is needed.',
  ].join('\n'),
  examples: [
    'ward auth login --email ana@example.com',
    'ward auth login --email ana@example.com --otp 123456',
    'printf %s "$PW" | ward auth login --email ana@example.com --password-stdin --otp 123456',
  ],
  flags: {
    email: { type: 'string', placeholder: 'EMAIL', required: true, description: 'Your email address' },
    'password-stdin': { type: 'boolean', description: 'Read the password from stdin' },
    otp: { type: 'string', placeholder: 'CODE', description: 'A one-time code, when your account uses MFA' },
    json: jsonFlag,
  },
  async run(ctx, { flags }) {
    const password = await readPassword(ctx.io, ctx.env, { fromStdin: flags['password-stdin'] });
    const body: Record<string, string> = { email: flags.email, password, kind: 'cli' };
    if (flags.otp) body.otp = flags.otp;
    let answer: LoginAnswer;
    try {
      answer = await ctx.api.post<LoginAnswer>('/v1/auth/login', body, { auth: false });
    } catch (e) {
      // The right password without a code: ask for one when there is a person at a terminal to answer.
      if (!(e instanceof UserError) || e.code !== 'otp_required' || body.otp || !canPrompt(ctx, flags['password-stdin'])) throw tooManyLogins(e);
      body.otp = await promptCode(ctx);
      try {
        answer = await ctx.api.post<LoginAnswer>('/v1/auth/login', body, { auth: false });
      } catch (again) {
        throw tooManyLogins(again);
      }
    }
    const { apiUrl, shown: session } = await saveSession(ctx, answer.user.email, answer.session);
    if (ctx.env.WARD_API_TOKEN) ctx.out.info('Note: WARD_API_TOKEN is set, and commands use it instead of this login.');
    ctx.out.result({ user: answer.user, session }, () => {
      ctx.out.info(`Logged in to ${apiUrl} as ${answer.user.email}, until ${session.expires_at} at the latest.`);
    });
  },
});
