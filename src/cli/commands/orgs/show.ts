import type { OrgShowAnswer } from '../../api-types.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { formatTime } from '../../output.ts';

export default defineCommand({
  name: 'show',
  summary: 'Show an org and its members',
  args: [{ name: 'ORG', required: true, description: 'The org, by name or id' }],
  flags: { json: jsonFlag },
  requireSession: true,
  async run(ctx, { args }) {
    const answer = await ctx.api.get<OrgShowAnswer>(apiPath`/v1/orgs/${args.ORG}`);
    ctx.out.result(answer, () => {
      ctx.out.fields([
        ['Name', answer.org.name],
        ['ID', answer.org.id],
        ['Created', formatTime(answer.org.created_at)],
        ['Your role', answer.role],
      ]);
      ctx.out.line('');
      ctx.out.table(answer.members, [
        { header: 'member', value: (m) => m.email },
        { header: 'role', value: (m) => m.role },
        { header: 'since', value: (m) => formatTime(m.created_at) },
      ]);
    });
  },
});
