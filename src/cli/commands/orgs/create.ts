import { nameProblem, UserError } from '../../../core/index.ts';
import type { ApiOrg } from '../../api-types.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { formatTime } from '../../output.ts';

export default defineCommand({
  name: 'create',
  summary: 'Create an org; you become its owner',
  args: [{ name: 'NAME', required: true, description: 'The org name: a–z, 0–9 and "-", 2–63 characters' }],
  flags: { json: jsonFlag },
  requireSession: true,
  examples: ['ward orgs create acme'],
  check({ args }) {
    const problem = nameProblem(args.NAME);
    if (problem) throw new UserError('invalid_name', `invalid org name "${args.NAME}": ${problem}`);
  },
  async run(ctx, { args }) {
    const { org } = await ctx.api.post<{ org: ApiOrg }>(apiPath`/v1/orgs`, { name: args.NAME });
    ctx.out.result(org, () => {
      ctx.out.info(`Created org ${org.name}; you are its owner.`);
      ctx.out.fields([
        ['Name', org.name],
        ['ID', org.id],
        ['Created', formatTime(org.created_at)],
      ]);
    });
  },
});
