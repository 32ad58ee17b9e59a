import { nameProblem, UserError } from '../../../core/index.ts';
import type { SignupAnswer } from '../../api-types.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { readPassword } from '../../password.ts';
import { saveSession } from './session-answer.ts';

export default defineCommand({
  name: 'signup',
  summary: 'Create an account and log in',
  description: [
    'On a new server, the first account creates an org (--org) and becomes its owner. After that, signing',
    'up needs an invite code (--invite) from an org owner or admin, and the account joins that org.',
    'The password comes from --password-stdin, else WARD_PASSWORD, else a prompt.',
  ].join('\n'),
  examples: [
    'ward auth signup --email ana@example.com --org acme',
    'printf %s "$PW" | ward auth signup --email bo@example.com --invite CODE --password-stdin',
  ],
  flags: {
    email: { type: 'string', placeholder: 'EMAIL', required: true, description: 'Your email address' },
    org: { type: 'string', placeholder: 'ORG', description: 'The org to create (first account on a server)' },
    invite: { type: 'string', placeholder: 'CODE', description: 'An invite code (every later account)' },
    'password-stdin': { type: 'boolean', description: 'Read the password from stdin' },
    json: jsonFlag,
  },
  check({ flags }) {
    if (!flags.org && !flags.invite) {
      throw new UserError('usage', 'signup needs --org ORG (the first account on a server) or --invite CODE', {
        hint: 'ask an org owner for an invite: ward orgs invite --org ORG --role developer',
      });
    }
    if (flags.org && !flags.invite) {
      const problem = nameProblem(flags.org);
      if (problem) throw new UserError('invalid_name', `invalid org name "${flags.org}": ${problem}`);
    }
  },
  async run(ctx, { flags }) {
    const password = await readPassword(ctx.io, ctx.env, { fromStdin: flags['password-stdin'], confirm: true });
    const body: Record<string, string> = { email: flags.email, password };
    if (flags.org) body.org = flags.org;
    if (flags.invite) body.invite = flags.invite;
    const answer = await ctx.api.post<SignupAnswer>('/v1/auth/signup', body, { auth: false });
    const { apiUrl, shown: session } = await saveSession(ctx, answer.user.email, answer.session);
    ctx.out.result({ user: answer.user, org: answer.org, role: answer.role, session }, () => {
      ctx.out.info(`Signed up at ${apiUrl} as ${answer.user.email}, ${answer.role} of org ${answer.org.name}.`);
      ctx.out.info(`Logged in until ${session.expires_at} at the latest.`);
    });
  },
});
