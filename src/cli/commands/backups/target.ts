import { UserError } from '../../../core/index.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { orgOrDefault } from '../wireguard/org.ts';

interface ApiTarget {
  org: string;
  repository: string;
  kind: string;
  next_drill_at: string;
  updated_at: string;
}

const ACTIONS = ['set', 'show'] as const;

export default defineCommand({
  name: 'target',
  summary: 'Set or show the org\'s backup target: a restic repository',
  description: [
    'set --repository URL   an absolute path, sftp:USER@HOST:/PATH, s3:HOST/BUCKET/PATH or rest:https://HOST/PATH.',
    '                       An empty repository is initialized with the org\'s backup key (random, kept',
    '                       sealed by the server, never shown); one made with another key is refused.',
    '                       Needs the admin role or higher.',
    'show                   the target (a password in its URL shown as ***) and the next restore drill.',
  ].join('\n'),
  args: [{ name: 'ACTION', required: true, description: `One of ${ACTIONS.join(', ')}` }],
  flags: {
    repository: { type: 'string', placeholder: 'URL', description: 'The restic repository (set)' },
    org: { type: 'string', placeholder: 'ORG', description: 'The org (default: your only or oldest org)' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: ['ward backups target set --repository sftp:backup@vault.example.com:/srv/ward/acme --org acme', 'ward backups target show'],
  check({ args, flags }) {
    if (!(ACTIONS as readonly string[]).includes(args.ACTION)) throw new UserError('usage', `unknown action "${args.ACTION}"; use one of ${ACTIONS.join(', ')}`);
    if (args.ACTION === 'set' && !flags.repository) throw new UserError('usage', 'set needs --repository URL', { hint: 'ward backups target --help lists the forms' });
    if (args.ACTION === 'show' && flags.repository) throw new UserError('usage', 'show takes no --repository');
  },
  async run(ctx, { args, flags }) {
    const org = await orgOrDefault(ctx, flags.org);
    if (args.ACTION === 'set') {
      const r = await ctx.api.request<{ target: ApiTarget; initialized: boolean }>('PUT', apiPath`/v1/orgs/${org}/backups/target`, { body: { repository: flags.repository } });
      ctx.out.result(r, () => ctx.out.info(`Backups of ${org} go to ${r.target.repository}${r.initialized ? ' (initialized a new encrypted repository)' : ' (an existing repository of this org)'}.`));
      return;
    }
    const r = await ctx.api.get<{ target: ApiTarget }>(apiPath`/v1/orgs/${org}/backups/target`);
    ctx.out.result(r.target, () => {
      ctx.out.fields([['org', r.target.org], ['repository', r.target.repository], ['kind', r.target.kind], ['next drill', r.target.next_drill_at], ['updated', r.target.updated_at]]);
    });
  },
});
