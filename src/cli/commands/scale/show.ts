import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { printScale, type ApiScale } from './fields.ts';

export default defineCommand({
  name: 'show',
  summary: 'Show how many instances the app runs, per region',
  flags: { json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward scale show', 'ward scale show -a patient-portal --json'],
  async run(ctx, { app }) {
    const s = await ctx.api.get<ApiScale>(apiPath`/v1/apps/${app}/scale`);
    ctx.out.result(s, () => printScale(ctx.out, s));
  },
});
