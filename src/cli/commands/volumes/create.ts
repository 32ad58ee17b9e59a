import { UserError } from '../../../core/index.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { printVolume, type ApiVolume } from './shared.ts';

export default defineCommand({
  name: 'create',
  summary: 'Create an encrypted volume for the app',
  description: [
    'The volume gets its own random 256-bit key, stored only sealed under the app\'s data key (which',
    'the master key wraps). Its host makes and formats the loop file when an instance first mounts it',
    '([[mounts]] in ward.toml); instances that mount it always run on that host.',
  ].join('\n'),
  args: [{ name: 'NAME', required: true, description: 'The volume\'s name, as [[mounts]] source names it' }],
  flags: {
    size: { type: 'string', placeholder: 'SIZE', description: 'Its size: 1gb, 512mb … (64mb to 16tb)' },
    region: { type: 'string', placeholder: 'REGION', description: 'The region of the host to hold it (default: any)' },
    json: jsonFlag,
  },
  requireSession: true,
  requireApp: true,
  examples: ['ward volumes create pgdata --size 10gb -a patient-portal'],
  check({ flags }) {
    if (!flags.size) throw new UserError('usage', 'a volume needs --size', { hint: 'ward volumes create NAME --size 1gb' });
  },
  async run(ctx, { args, flags, app }) {
    const body = { name: args.NAME, size: flags.size!, ...(flags.region ? { region: flags.region } : {}) };
    const { volume } = await ctx.api.request<{ volume: ApiVolume }>('POST', apiPath`/v1/apps/${app}/volumes`, { body });
    ctx.out.result(volume, () => {
      ctx.out.info(`Created volume ${volume.name} (${volume.size}) on host ${volume.host}.`);
      ctx.out.info(`Mount it with [[mounts]] source = "${volume.name}" and a destination, then deploy.`);
    });
  },
});
