import type { ApiOrgWithRole } from '../../api-types.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { formatTime } from '../../output.ts';

export default defineCommand({
  name: 'list',
  summary: 'List the orgs you belong to',
  flags: { json: jsonFlag },
  requireSession: true,
  async run(ctx) {
    const { orgs } = await ctx.api.get<{ orgs: ApiOrgWithRole[] }>('/v1/orgs');
    ctx.out.result(orgs, () => {
      if (!orgs.length) return ctx.out.info('You belong to no org yet. Create one: ward orgs create NAME');
      ctx.out.table(orgs, [
        { header: 'name', value: (o) => o.name },
        { header: 'role', value: (o) => o.role },
        { header: 'id', value: (o) => o.id },
        { header: 'created', value: (o) => formatTime(o.created_at) },
      ]);
    });
  },
});
