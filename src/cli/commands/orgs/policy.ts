import { parseDuration, UserError } from '../../../core/index.ts';
import type { ApiOrg, ApiOrgPolicy } from '../../api-types.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';

const ACTIONS = ['show', 'set'] as const;

export default defineCommand({
  name: 'policy',
  summary: 'Show or set an org\'s security policy: required MFA, session idle time',
  description: [
    '--require-mfa true   every member must set up MFA before doing anything else (you need it first).',
    '--session-idle 15m   members\' sessions end after this long unused (5m to 7d; "default" removes it).',
    'Settings left out keep their value. Owners and admins set the policy; every member may see it.',
  ].join('\n'),
  args: [{ name: 'ACTION', required: true, description: 'show or set' }],
  flags: {
    org: { type: 'string', placeholder: 'ORG', required: true, description: 'The org' },
    'require-mfa': { type: 'string', placeholder: 'BOOL', choices: ['true', 'false'], description: 'Require MFA of every member (set)' },
    'session-idle': { type: 'string', placeholder: 'DURATION', description: 'Longest idle time of members\' sessions, or "default" (set)' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: ['ward orgs policy set --org acme --require-mfa true --session-idle 15m', 'ward orgs policy show --org acme'],
  check({ args, flags }) {
    if (!(ACTIONS as readonly string[]).includes(args.ACTION)) {
      throw new UserError('usage', `unknown action "${args.ACTION}"; use show or set`, { hint: 'see ward orgs policy --help' });
    }
    const setting = flags['require-mfa'] !== undefined || flags['session-idle'] !== undefined;
    if (args.ACTION === 'set' && !setting) throw new UserError('usage', 'set needs --require-mfa or --session-idle', { hint: 'see ward orgs policy --help' });
    if (args.ACTION === 'show' && setting) throw new UserError('usage', 'show takes no settings; use set');
    const idle = flags['session-idle'];
    if (idle !== undefined && idle !== 'default') {
      try {
        parseDuration(idle);
      } catch (e) {
        throw new UserError('usage', `invalid --session-idle: ${(e as Error).message}`);
      }
    }
  },
  async run(ctx, { args, flags }) {
    let r: { org: ApiOrg; policy: ApiOrgPolicy };
    if (args.ACTION === 'show') {
      r = await ctx.api.get(apiPath`/v1/orgs/${flags.org}/policy`);
    } else {
      const body: { require_mfa?: boolean; session_idle?: string | null } = {};
      if (flags['require-mfa'] !== undefined) body.require_mfa = flags['require-mfa'] === 'true';
      if (flags['session-idle'] !== undefined) body.session_idle = flags['session-idle'] === 'default' ? null : flags['session-idle'];
      r = await ctx.api.request('PUT', apiPath`/v1/orgs/${flags.org}/policy`, { body });
    }
    ctx.out.result(r.policy, () => {
      ctx.out.fields([
        ['Org', r.org.name],
        ['Require MFA', r.policy.require_mfa ? 'yes' : 'no'],
        ['Session idle', r.policy.session_idle ?? 'default (15m dashboard, 12h CLI)'],
      ]);
    });
  },
});
