import type { LoginAnswer } from '../../api-types.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { readPassword } from '../../password.ts';
import { saveSession } from './session-answer.ts';

export default defineCommand({
  name: 'login',
  summary: 'Log in and store the session',
  description: [
    'Logs in to WARD_API_URL (default http://127.0.0.1:4280) and stores the session in',
    'WARD_CONFIG_DIR/session.json, readable only by you. The password comes from --password-stdin,',
    'else WARD_PASSWORD, else a prompt.',
  ].join('\n'),
  examples: ['ward auth login --email ana@example.com', 'printf %s "$PW" | ward auth login --email ana@example.com --password-stdin'],
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
    const answer = await ctx.api.post<LoginAnswer>('/v1/auth/login', body, { auth: false });
    const { apiUrl, shown: session } = await saveSession(ctx, answer.user.email, answer.session);
    if (ctx.env.WARD_API_TOKEN) ctx.out.info('Note: WARD_API_TOKEN is set, and commands use it instead of this login.');
    ctx.out.result({ user: answer.user, session }, () => {
      ctx.out.info(`Logged in to ${apiUrl} as ${answer.user.email}, until ${session.expires_at} at the latest.`);
    });
  },
});
