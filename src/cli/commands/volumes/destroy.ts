import { UserError } from '../../../core/index.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import type { ApiVolume } from './shared.ts';

export default defineCommand({
  name: 'destroy',
  summary: 'Destroy a volume: its key first (crypto-erase), then its file',
  description: [
    'The volume\'s key is deleted first, in the same transaction as the audit entry: from then on the',
    'data cannot be read with anything Ward holds, wherever copies of the file went. Then its host',
    'removes the loop file. Refused while an instance of the app mounts it. There is no undo, so the',
    'command needs --yes.',
  ].join('\n'),
  args: [{ name: 'NAME', required: true, description: 'The volume\'s name' }],
  flags: { yes: { type: 'boolean', short: 'y', description: 'Confirm the destruction' }, json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward volumes destroy pgdata -a patient-portal --yes'],
  check({ args, flags }) {
    if (!flags.yes) {
      throw new UserError('usage', `not destroying volume "${args.NAME}" without --yes: its data becomes unreadable for good`, {
        hint: `if you mean it, run: ward volumes destroy ${args.NAME} --yes`,
      });
    }
  },
  async run(ctx, { args, app }) {
    const r = await ctx.api.request<{ volume: ApiVolume; key_destroyed: boolean; file_removed: boolean }>('DELETE', apiPath`/v1/apps/${app}/volumes/${args.NAME}`);
    ctx.out.result(r, () => {
      ctx.out.info(`Destroyed volume ${r.volume.name} of ${r.volume.app}: its key is gone, so its data cannot be read.`);
      if (!r.file_removed) ctx.out.info(`Its loop file on host ${r.volume.host} was not removed yet (the host was not reachable); it is unreadable ciphertext.`);
    });
  },
});
