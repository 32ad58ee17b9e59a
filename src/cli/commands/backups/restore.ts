import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { describeRun, LONG_MS, volumeAndSnapshot, type ApiBackupRun } from './shared.ts';

export default defineCommand({
  name: 'restore',
  summary: 'Replace a volume\'s files with a snapshot (the newest by default)',
  description: [
    'The snapshot is restored beside the volume\'s files and checked against the snapshot first; only then',
    'are the old files replaced, so a failed restore changes nothing. Refused while an instance has the',
    'volume mounted (restoring under a running database corrupts it): stop the app first, or --force.',
    'Needs the admin role or higher (it overwrites data). Either spelling works:',
    '  ward backups restore VOLUME [--snapshot ID]      ward backups restore ID --to-volume VOLUME',
  ].join('\n'),
  args: [{ name: 'VOLUME_OR_ID', description: 'The volume, or the snapshot when --to-volume names the volume' }],
  flags: {
    'to-volume': { type: 'string', placeholder: 'NAME', description: 'The volume to restore into' },
    volume: { type: 'string', placeholder: 'NAME', description: 'Same as --to-volume' },
    snapshot: { type: 'string', placeholder: 'ID', description: 'The snapshot (default: the volume\'s newest)' },
    force: { type: 'boolean', description: 'Restore even while an instance has the volume mounted' },
    json: jsonFlag,
  },
  requireSession: true,
  requireApp: true,
  examples: ['ward backups restore pgdata -a patient-portal', 'ward backups restore 82987b44 --to-volume pgdata'],
  check({ args, flags }) {
    volumeAndSnapshot(args.VOLUME_OR_ID, flags['to-volume'] ?? flags.volume, flags.snapshot);
  },
  async run(ctx, { args, flags, app }) {
    const { volume, snapshot } = volumeAndSnapshot(args.VOLUME_OR_ID, flags['to-volume'] ?? flags.volume, flags.snapshot);
    ctx.out.info(`Restoring ${volume} of ${app} from ${snapshot ?? 'its newest snapshot'}…`);
    const r = await ctx.api.post<{ run: ApiBackupRun }>(apiPath`/v1/apps/${app}/volumes/${volume}/backups/restore`, { ...(snapshot ? { snapshot } : {}), ...(flags.force ? { force: true } : {}) }, { timeoutMs: LONG_MS });
    ctx.out.result(r.run, () => ctx.out.info(describeRun(r.run)));
  },
});
