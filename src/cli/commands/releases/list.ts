import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { printReleases, type ApiRelease } from '../deploy-fields.ts';

export default defineCommand({
  name: 'list',
  summary: 'List the app\'s releases, newest first',
  flags: { json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward releases', 'ward releases -a patient-portal --json'],
  async run(ctx, { app }) {
    const r = await ctx.api.get<{ releases: ApiRelease[] }>(apiPath`/v1/apps/${app}/releases`);
    ctx.out.result(r.releases, () => printReleases(ctx.out, r.releases));
  },
});
