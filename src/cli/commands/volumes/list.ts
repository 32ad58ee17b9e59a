import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import type { ApiVolume } from './shared.ts';

export default defineCommand({
  name: 'list',
  summary: 'List the app\'s volumes',
  flags: { json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward volumes list -a patient-portal'],
  async run(ctx, { app }) {
    const { volumes } = await ctx.api.get<{ volumes: ApiVolume[] }>(apiPath`/v1/apps/${app}/volumes`);
    ctx.out.result(volumes, () => {
      if (!volumes.length) return ctx.out.info(`${app} has no volumes. Create one: ward volumes create NAME --size 1gb -a ${app}`);
      ctx.out.table(volumes, [
        { header: 'name', value: (v) => v.name },
        { header: 'size', value: (v) => v.size },
        { header: 'region', value: (v) => v.region },
        { header: 'host', value: (v) => v.host },
        { header: 'encryption', value: (v) => v.encryption ?? 'pending' },
        { header: 'attached', value: (v) => (v.attached.length ? v.attached.join(',') : '-') },
      ]);
    });
  },
});
