import { parseDuration, ROLES, UserError } from '../../../core/index.ts';
import type { ApiInvite } from '../../api-types.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';

export default defineCommand({
  name: 'invite',
  summary: 'Make an invite code that lets one person sign up into an org',
  description: [
    'Prints the code on stdout; it is shown only this once. The invitee runs:',
    '  ward auth signup --email EMAIL --invite CODE',
  ].join('\n'),
  flags: {
    org: { type: 'string', placeholder: 'ORG', required: true, description: 'The org to invite into' },
    role: { type: 'string', placeholder: 'ROLE', required: true, choices: ROLES, description: 'The role the invitee gets' },
    expires: { type: 'string', placeholder: 'DURATION', description: 'How long the code stays valid, like 24h or 7d (default 7d)' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: ['ward orgs invite --org acme --role developer', 'ward orgs invite --org acme --role viewer --expires 24h --json'],
  check({ flags }) {
    if (flags.expires === undefined) return;
    try {
      parseDuration(flags.expires);
    } catch (e) {
      throw new UserError('usage', `invalid --expires: ${(e as Error).message}`, { hint: 'see ward orgs invite --help' });
    }
  },
  async run(ctx, { flags }) {
    const body: Record<string, string> = { role: flags.role };
    if (flags.expires !== undefined) body.expires_in = flags.expires;
    const { invite } = await ctx.api.post<{ invite: ApiInvite }>(apiPath`/v1/orgs/${flags.org}/invites`, body);
    ctx.out.result(invite, () => {
      // The code alone on stdout, so `CODE=$(ward orgs invite …)` works; the explanation on stderr.
      ctx.out.line(invite.code);
      ctx.out.info(`Invite to org ${flags.org} as ${invite.role}, valid until ${invite.expires_at}. It is shown only now.`);
      ctx.out.info(`The invitee runs: ward auth signup --email EMAIL --invite ${invite.code}`);
    });
  },
});
