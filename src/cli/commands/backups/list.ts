import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { printRuns, type ApiBackupRun } from './shared.ts';

export default defineCommand({
  name: 'list',
  summary: 'List the app\'s backups (snapshots), restores and restore drills, failed attempts included',
  description: 'Newest first. A failed run says FAILED and why; a snapshot that retention removed says (pruned). consistency says how a backup was taken: command (after the mount\'s backup_command), stopped (no instance had the volume), live (files copied while the app ran).',
  flags: {
    volume: { type: 'string', placeholder: 'NAME', description: 'Only this volume' },
    limit: { type: 'string', placeholder: 'N', description: 'At most N runs (default 50, up to 500)' },
    json: jsonFlag,
  },
  requireSession: true,
  requireApp: true,
  examples: ['ward backups list -a patient-portal', 'ward backups list --volume pgdata --json'],
  async run(ctx, { flags, app }) {
    const q = new URLSearchParams();
    if (flags.volume) q.set('volume', flags.volume);
    if (flags.limit) q.set('limit', flags.limit);
    const r = await ctx.api.get<{ runs: ApiBackupRun[] }>(apiPath`/v1/apps/${app}/backups` + (q.size ? `?${q}` : ''));
    ctx.out.result(r.runs, () => {
      if (!r.runs.length) return ctx.out.info(`${app} has no backups yet. Make one: ward backups run VOLUME -a ${app}`);
      printRuns(ctx, r.runs);
    });
  },
});
