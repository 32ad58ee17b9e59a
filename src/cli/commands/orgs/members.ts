import { ROLES, UserError, type Role } from '../../../core/index.ts';
import type { ApiOrg, ApiOrgMember } from '../../api-types.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { formatTime } from '../../output.ts';

const ACTIONS = ['list', 'add', 'remove'] as const;

export default defineCommand({
  name: 'members',
  summary: 'List an org\'s members, add one or change their role, or remove one',
  description: [
    'list            the members, their roles and whether they have MFA.',
    'add EMAIL       adds an existing account with --role, or changes the role of a member.',
    'remove EMAIL    removes a member; their API tokens for the org stop working.',
    'Owners and admins manage members; only owners make, change or remove owners. The last owner of an',
    'org can be neither removed nor demoted. People without an account are invited: ward orgs invite.',
  ].join('\n'),
  args: [
    { name: 'ACTION', required: true, description: `One of ${ACTIONS.join(', ')}` },
    { name: 'EMAIL', description: 'The member (add, remove)' },
  ],
  flags: {
    org: { type: 'string', placeholder: 'ORG', required: true, description: 'The org' },
    role: { type: 'string', placeholder: 'ROLE', choices: ROLES, description: 'The role to give (add): owner, admin, developer, viewer or auditor' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: [
    'ward orgs members list --org acme',
    'ward orgs members add bo@example.com --role developer --org acme',
    'ward orgs members remove bo@example.com --org acme',
  ],
  check({ args, flags }) {
    if (!(ACTIONS as readonly string[]).includes(args.ACTION)) {
      throw new UserError('usage', `unknown action "${args.ACTION}"; use one of ${ACTIONS.join(', ')}`, { hint: 'see ward orgs members --help' });
    }
    if (args.ACTION !== 'list' && !args.EMAIL) throw new UserError('usage', `${args.ACTION} needs the member's EMAIL`, { hint: 'see ward orgs members --help' });
    if (args.ACTION === 'list' && args.EMAIL) throw new UserError('usage', 'list takes no EMAIL');
    if (args.ACTION === 'add' && !flags.role) throw new UserError('usage', 'add needs --role', { hint: `one of ${ROLES.join(', ')}` });
    if (args.ACTION !== 'add' && flags.role) throw new UserError('usage', `--role is for add, not ${args.ACTION}`);
  },
  async run(ctx, { args, flags }) {
    if (args.ACTION === 'list') {
      const { members } = await ctx.api.get<{ org: ApiOrg; members: ApiOrgMember[] }>(apiPath`/v1/orgs/${flags.org}/members`);
      ctx.out.result(members, () => {
        ctx.out.table(members, [
          { header: 'email', value: (m) => m.email },
          { header: 'role', value: (m) => m.role },
          { header: 'mfa', value: (m) => (m.mfa ? 'on' : 'off') },
          { header: 'since', value: (m) => formatTime(m.created_at) },
        ]);
      });
      return;
    }
    if (args.ACTION === 'add') {
      const r = await ctx.api.post<{ org: ApiOrg; member: ApiOrgMember; change: string }>(apiPath`/v1/orgs/${flags.org}/members`, { email: args.EMAIL, role: flags.role as Role });
      ctx.out.result(r, () => {
        const said = { added: `Added ${r.member.email} to org ${r.org.name} as ${r.member.role}.`, role_changed: `${r.member.email} is now ${r.member.role} in org ${r.org.name}.`, unchanged: `${r.member.email} was ${r.member.role} in org ${r.org.name} already.` };
        ctx.out.info(said[r.change as keyof typeof said] ?? `${r.member.email}: ${r.member.role}`);
      });
      return;
    }
    const r = await ctx.api.delete<{ org: ApiOrg; member: ApiOrgMember }>(apiPath`/v1/orgs/${flags.org}/members/${args.EMAIL!}`);
    ctx.out.result(r, () => ctx.out.info(`Removed ${r.member.email} (${r.member.role}) from org ${r.org.name}.`));
  },
});
