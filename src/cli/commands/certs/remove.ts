import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';

export default defineCommand({
  name: 'remove',
  summary: 'Stop managing a hostname\'s certificate and delete it',
  description: 'A name the app\'s ward.toml still lists stays routed (and gets a new certificate); remove it from hostnames and deploy to stop serving it.',
  args: [{ name: 'HOSTNAME', required: true, description: 'The certificate\'s hostname' }],
  flags: { json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward certs remove www.example.com -a patient-portal'],
  async run(ctx, { args, app }) {
    const r = await ctx.api.delete<{ removed: string }>(apiPath`/v1/apps/${app}/certs/${args.HOSTNAME.toLowerCase()}`);
    ctx.out.result(r, () => ctx.out.info(`Removed the certificate for ${r.removed} from ${app}.`));
  },
});
