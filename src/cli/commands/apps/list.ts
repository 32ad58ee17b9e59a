import type { ApiApp } from '../../api-types.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { formatTime } from '../../output.ts';

export default defineCommand({
  name: 'list',
  summary: 'List the apps of your orgs',
  flags: {
    org: { type: 'string', placeholder: 'ORG', description: 'Only the apps of this org' },
    json: jsonFlag,
  },
  requireSession: true,
  async run(ctx, { flags }) {
    const query = flags.org ? `?${new URLSearchParams({ org: flags.org })}` : '';
    const { apps } = await ctx.api.get<{ apps: ApiApp[] }>(`/v1/apps${query}`);
    ctx.out.result(apps, () => {
      if (!apps.length) return ctx.out.info('No apps yet. Create one: ward apps create NAME');
      ctx.out.table(apps, [
        { header: 'name', value: (a) => a.name },
        { header: 'org', value: (a) => a.org.name },
        { header: 'id', value: (a) => a.id },
        { header: 'created', value: (a) => formatTime(a.created_at) },
      ]);
    });
  },
});
