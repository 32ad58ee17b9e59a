import { apiPath } from '../client.ts';
import { defineCommand, jsonFlag } from '../command.ts';
import { printInstances, type ApiInstance } from './deploy-fields.ts';

export default defineCommand({
  name: 'restart',
  summary: 'Restart the app\'s instances, or one of them',
  description: 'Each instance is stopped with its kill signal (SIGKILL after kill_timeout) and started again on its host. A failed instance starts afresh.',
  args: [{ name: 'INSTANCE', description: 'One instance to restart (ins_…); default every instance' }],
  flags: { json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward restart', 'ward restart ins_01jq…'],
  async run(ctx, { app, args }) {
    const r = await ctx.api.post<{ instances: ApiInstance[] }>(apiPath`/v1/apps/${app}/restart`, args.INSTANCE ? { instance: args.INSTANCE } : {});
    ctx.out.info(`Restarting ${r.instances.length} instance${r.instances.length === 1 ? '' : 's'} of ${app}.`);
    ctx.out.result(r, () => printInstances(ctx.out, r.instances));
  },
});
