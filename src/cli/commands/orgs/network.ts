import { UserError } from '../../../core/index.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';

const ACTIONS = ['show', 'set'] as const;

interface Network {
  org: string;
  prefix: string;
  egress: 'allow' | 'deny';
  updated_at?: string;
}

export default defineCommand({
  name: 'network',
  summary: 'Show or set an org\'s private network: its prefix, and whether its instances reach the outside',
  description: [
    '--egress deny   the org\'s instances can open no connection outside Ward\'s private network',
    '                (their own org and the internal resolver only). Default: allow.',
    '--prefix P      the org\'s IPv6 ULA /48 (fdXX:XXXX:XXXX::/48) instead of the derived one, e.g. to fit',
    '                an addressing plan; only before the org has instances or WireGuard peers.',
    'Owners and admins set it; every member may see it. Running instances get it within seconds.',
  ].join('\n'),
  args: [{ name: 'ACTION', required: true, description: 'show or set' }],
  flags: {
    org: { type: 'string', placeholder: 'ORG', required: true, description: 'The org' },
    egress: { type: 'string', placeholder: 'POLICY', choices: ['allow', 'deny'], description: 'Egress to the outside: allow or deny (set)' },
    prefix: { type: 'string', placeholder: 'PREFIX', description: 'The org\'s ULA /48 (set; before its first deploy)' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: ['ward orgs network set --org acme --egress deny', 'ward orgs network set --org acme --prefix fd5e:1c2d:3b4a::/48', 'ward orgs network show --org acme'],
  check({ args, flags }) {
    if (!(ACTIONS as readonly string[]).includes(args.ACTION)) throw new UserError('usage', `unknown action "${args.ACTION}"; use show or set`, { hint: 'see ward orgs network --help' });
    if (args.ACTION === 'set' && flags.egress === undefined && flags.prefix === undefined) throw new UserError('usage', 'set needs --egress allow|deny or --prefix PREFIX', { hint: 'see ward orgs network --help' });
    if (args.ACTION === 'show' && (flags.egress !== undefined || flags.prefix !== undefined)) throw new UserError('usage', 'show takes no settings; use set');
  },
  async run(ctx, { args, flags }) {
    const r: { network: Network } = args.ACTION === 'show'
      ? await ctx.api.get(apiPath`/v1/orgs/${flags.org}/network`)
      : await ctx.api.request('PUT', apiPath`/v1/orgs/${flags.org}/network`, { body: { ...(flags.egress !== undefined ? { egress: flags.egress } : {}), ...(flags.prefix !== undefined ? { prefix: flags.prefix } : {}) } });
    ctx.out.result(r.network, () => {
      ctx.out.fields([
        ['Org', r.network.org],
        ['Prefix', r.network.prefix],
        ['Egress', r.network.egress === 'deny' ? 'deny (private network only)' : 'allow'],
      ]);
    });
  },
});
