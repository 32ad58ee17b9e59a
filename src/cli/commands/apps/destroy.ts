import { UserError } from '../../../core/index.ts';
import type { ApiApp } from '../../api-types.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';

export default defineCommand({
  name: 'destroy',
  summary: 'Delete an app and everything in it',
  description: 'There is no undo, so the command needs --yes; without it, nothing is deleted.',
  args: [{ name: 'NAME', required: true, description: 'The app, by name or id' }],
  flags: {
    yes: { type: 'boolean', short: 'y', description: 'Confirm the deletion' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: ['ward apps destroy patient-portal --yes'],
  check({ args, flags }) {
    if (!flags.yes) {
      throw new UserError('usage', `not destroying app "${args.NAME}" without --yes: this deletes the app and everything in it, with no undo`, {
        hint: `if you mean it, run: ward apps destroy ${args.NAME} --yes`,
      });
    }
  },
  async run(ctx, { args }) {
    const { app } = await ctx.api.delete<{ app: ApiApp }>(apiPath`/v1/apps/${args.NAME}`);
    ctx.out.result(app, () => ctx.out.info(`Destroyed app ${app.name} of org ${app.org.name}.`));
  },
});
