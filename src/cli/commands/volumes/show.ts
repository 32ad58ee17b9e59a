import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { printVolume, type ApiVolume } from './shared.ts';

export default defineCommand({
  name: 'show',
  summary: 'Show one volume: size, host, and which encryption it uses (LUKS2 or fscrypt)',
  args: [{ name: 'NAME', required: true, description: 'The volume\'s name' }],
  flags: { json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward volumes show pgdata -a patient-portal'],
  async run(ctx, { args, app }) {
    const { volume } = await ctx.api.get<{ volume: ApiVolume }>(apiPath`/v1/apps/${app}/volumes/${args.NAME}`);
    ctx.out.result(volume, () => printVolume(ctx, volume));
  },
});
