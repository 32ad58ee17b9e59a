import type { ApiApp } from '../../api-types.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { printApp } from './fields.ts';

export default defineCommand({
  name: 'show',
  summary: 'Show an app',
  args: [{ name: 'NAME', description: 'The app, by name or id (default: -a APP, or the app of ./ward.toml)' }],
  flags: { json: jsonFlag },
  requireSession: true,
  requireApp: { positional: 'NAME' },
  examples: ['ward apps show patient-portal', 'ward apps show --json   # the app of ./ward.toml'],
  async run(ctx, { app: name }) {
    const { app } = await ctx.api.get<{ app: ApiApp }>(apiPath`/v1/apps/${name}`);
    ctx.out.result(app, () => printApp(ctx.out, app));
  },
});
