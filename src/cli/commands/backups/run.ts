import { UserError } from '../../../core/index.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { describeRun, LONG_MS, type ApiBackupRun } from './shared.ts';

export default defineCommand({
  name: 'run',
  summary: 'Back a volume up now (encrypted, to the org\'s target), then apply its retention',
  description: 'Waits for the backup to finish. When an instance has the volume mounted, the mount\'s backup_command runs inside it first; without one the live files are copied, and the run says so. Exit code 1 when the backup failed (it is recorded: ward backups list). Needs the developer role or higher.',
  args: [{ name: 'VOLUME', description: 'The volume (or --volume NAME)' }],
  flags: { volume: { type: 'string', placeholder: 'NAME', description: 'The volume' }, json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward backups run pgdata -a patient-portal', 'ward backups run --volume pgdata'],
  check({ args, flags }) {
    if (!args.VOLUME && !flags.volume) throw new UserError('usage', 'which volume? give VOLUME (or --volume NAME)', { hint: 'ward volumes list shows them' });
    if (args.VOLUME && flags.volume && args.VOLUME !== flags.volume) throw new UserError('usage', 'give the volume once');
  },
  async run(ctx, { args, flags, app }) {
    const volume = (flags.volume ?? args.VOLUME)!;
    ctx.out.info(`Backing up ${volume} of ${app}…`);
    const r = await ctx.api.post<{ run: ApiBackupRun }>(apiPath`/v1/apps/${app}/volumes/${volume}/backups`, {}, { timeoutMs: LONG_MS });
    ctx.out.result(r.run, () => ctx.out.info(describeRun(r.run)));
  },
});
