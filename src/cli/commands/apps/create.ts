import { nameProblem, UserError } from '../../../core/index.ts';
import type { ApiApp } from '../../api-types.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { printApp } from './fields.ts';

export default defineCommand({
  name: 'create',
  summary: 'Create an app',
  description: 'Without --org, the app goes into your org when you belong to exactly one.',
  args: [{ name: 'NAME', required: true, description: 'The app name, which becomes a DNS label: a–z, 0–9 and "-", 2–63 characters' }],
  flags: {
    org: { type: 'string', placeholder: 'ORG', description: 'The org that owns the app' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: ['ward apps create patient-portal', 'ward apps create patient-portal --org acme --json'],
  check({ args }) {
    const problem = nameProblem(args.NAME);
    if (problem) throw new UserError('invalid_name', `invalid app name "${args.NAME}": ${problem}`);
  },
  async run(ctx, { args, flags }) {
    const body: Record<string, string> = { name: args.NAME };
    if (flags.org) body.org = flags.org;
    const { app } = await ctx.api.post<{ app: ApiApp }>('/v1/apps', body);
    ctx.out.result(app, () => {
      ctx.out.info(`Created app ${app.name} in org ${app.org.name}.`);
      printApp(ctx.out, app);
    });
  },
});
