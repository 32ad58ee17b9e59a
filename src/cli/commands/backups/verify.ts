import { formatDuration } from '../../../core/index.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { describeRun, LONG_MS, volumeAndSnapshot, type ApiBackupRun } from './shared.ts';

export default defineCommand({
  name: 'verify',
  summary: 'Restore drill: check the repository, restore a snapshot into scratch and compare it',
  description: [
    'restic check reads back every pack file of the repository; the snapshot (the newest by default) is',
    'restored into a scratch area in memory, every file re-read against the snapshot\'s hashes, and the',
    'tree compared with its listing. The result and how long it took (the recovery time) are recorded;',
    'a failed drill exits 1 and is an audit event and a metric. A weekly drill runs by itself.',
    '  ward backups verify VOLUME [--snapshot ID]       ward backups verify ID --volume VOLUME',
  ].join('\n'),
  args: [{ name: 'VOLUME_OR_ID', description: 'The volume, or the snapshot when --volume names the volume' }],
  flags: {
    volume: { type: 'string', placeholder: 'NAME', description: 'The volume' },
    snapshot: { type: 'string', placeholder: 'ID', description: 'The snapshot (default: the volume\'s newest)' },
    json: jsonFlag,
  },
  requireSession: true,
  requireApp: true,
  examples: ['ward backups verify pgdata -a patient-portal', 'ward backups verify 82987b44 --volume pgdata'],
  check({ args, flags }) {
    volumeAndSnapshot(args.VOLUME_OR_ID, flags.volume, flags.snapshot);
  },
  async run(ctx, { args, flags, app }) {
    const { volume, snapshot } = volumeAndSnapshot(args.VOLUME_OR_ID, flags.volume, flags.snapshot);
    ctx.out.info(`Drilling a restore of ${volume} of ${app}…`);
    const r = await ctx.api.post<{ run: ApiBackupRun }>(apiPath`/v1/apps/${app}/volumes/${volume}/backups/verify`, snapshot ? { snapshot } : {}, { timeoutMs: LONG_MS });
    ctx.out.result(r.run, () => {
      ctx.out.info(describeRun(r.run));
      if (r.run.duration_ms !== null) ctx.out.info(`Recovery time measured: ${formatDuration(r.run.duration_ms)} (check, restore and comparison).`);
    });
  },
});
