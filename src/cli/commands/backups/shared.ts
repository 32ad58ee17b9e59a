import { formatDuration, formatSize, UserError } from '../../../core/index.ts';
import type { Context } from '../../command.ts';
import { formatTime } from '../../output.ts';

/** ApiBackupRun is a run as the API answers it (src/api/routes/backups.ts). */
export interface ApiBackupRun {
  id: string;
  volume: string;
  volume_id?: string;
  kind: 'backup' | 'restore' | 'drill';
  trigger: 'manual' | 'schedule';
  status: 'running' | 'succeeded' | 'failed';
  snapshot_id: string | null;
  consistency: 'command' | 'stopped' | 'live' | null;
  files: number | null;
  bytes: number | null;
  duration_ms: number | null;
  error: string | null;
  details: Record<string, unknown> | null;
  started_at: string;
  finished_at: string | null;
  pruned_at: string | null;
}

/** LONG_MS is how long the CLI waits for a backup, restore or drill: they run to completion server-side. */
export const LONG_MS = 24 * 3600_000;

/** SNAPSHOT_RE is what a restic snapshot id looks like (short or full). */
export const SNAPSHOT_RE = /^[0-9a-f]{8,64}$/;

/**
 * volumeAndSnapshot reads the two spellings the docs give: `VOLUME [--snapshot ID]`, and (shared/CLI.md)
 * `ID --to-volume NAME` / `ID --volume NAME`. With a volume flag the positional is the snapshot.
 */
export function volumeAndSnapshot(positional: string | undefined, volumeFlag: string | undefined, snapshotFlag: string | undefined): { volume: string; snapshot: string | undefined } {
  if (volumeFlag) {
    if (positional && snapshotFlag) throw new UserError('usage', 'give the snapshot once: as ID or as --snapshot');
    const snapshot = snapshotFlag ?? positional;
    if (snapshot !== undefined && !SNAPSHOT_RE.test(snapshot)) throw new UserError('usage', `"${snapshot.slice(0, 80)}" is not a snapshot id (8 to 64 hex digits)`, { hint: 'ward backups list shows them' });
    return { volume: volumeFlag, snapshot };
  }
  if (!positional) throw new UserError('usage', 'which volume? give VOLUME (or --volume NAME)', { hint: 'ward volumes list shows them' });
  if (snapshotFlag !== undefined && !SNAPSHOT_RE.test(snapshotFlag)) throw new UserError('usage', `"${snapshotFlag.slice(0, 80)}" is not a snapshot id (8 to 64 hex digits)`);
  return { volume: positional, snapshot: snapshotFlag };
}

/** describeRun is one line about a finished run, for people. */
export function describeRun(r: ApiBackupRun): string {
  const what = `${r.kind} of ${r.volume}`;
  const size = r.bytes !== null ? `, ${formatSize(r.bytes)} in ${r.files ?? 0} files` : '';
  const took = r.duration_ms !== null ? ` in ${formatDuration(r.duration_ms)}` : '';
  if (r.status !== 'succeeded') return `${what} ${r.status}${took}: ${r.error ?? ''}`;
  const how = r.consistency === 'live' ? ' (live files: no backup_command, the instance was running)' : r.consistency === 'command' ? ' (after the backup_command)' : r.consistency === 'stopped' ? ' (files at rest)' : '';
  return `${what} succeeded${took}: snapshot ${r.snapshot_id?.slice(0, 8) ?? '-'}${size}${how}`;
}

/** printRuns prints runs as a table (newest first), failed ones marked. */
export function printRuns(ctx: Context, runs: ApiBackupRun[]): void {
  ctx.out.table(runs, [
    { header: 'started', value: (r) => formatTime(r.started_at) ?? r.started_at },
    { header: 'volume', value: (r) => r.volume },
    { header: 'kind', value: (r) => r.kind },
    { header: 'trigger', value: (r) => r.trigger },
    { header: 'status', value: (r) => (r.status === 'failed' ? 'FAILED' : r.status) },
    { header: 'snapshot', value: (r) => (r.snapshot_id ? r.snapshot_id.slice(0, 8) + (r.pruned_at ? ' (pruned)' : '') : '-') },
    { header: 'consistency', value: (r) => r.consistency ?? '-' },
    { header: 'size', value: (r) => (r.bytes !== null ? formatSize(r.bytes) : '-') },
    { header: 'took', value: (r) => (r.duration_ms !== null ? formatDuration(r.duration_ms) : '-') },
    { header: 'error', value: (r) => (r.error ? r.error.slice(0, 100) : r.details?.retention_error ? `retention: ${String(r.details.retention_error).slice(0, 90)}` : '-') },
  ]);
}
