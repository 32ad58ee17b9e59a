import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * BackupMetrics are the Prometheus metrics of backups, restores and drills, registered in the registry
 * the caller gives (the API's, so they appear on /metrics). Alert on `ward_backup_failures_total`
 * increasing, and on `ward_backup_last_success_timestamp_seconds` falling behind the schedule: the two
 * together catch a backup that fails and one that silently stops running.
 */
export class BackupMetrics {
  readonly runs: Counter<'kind' | 'outcome'>;
  readonly failures: Counter<'kind'>;
  readonly duration: Histogram<'kind'>;
  readonly lastSuccess: Gauge<'kind' | 'volume'>;
  readonly drillSeconds: Gauge<'volume'>;

  constructor(registry: Registry) {
    this.runs = new Counter({
      name: 'ward_backup_runs_total',
      help: 'Backups, restores, restore drills and retention runs finished, by kind and outcome (succeeded, failed).',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    });
    this.failures = new Counter({
      name: 'ward_backup_failures_total',
      help: 'Failed backups, restores, restore drills and retention runs, by kind. Any increase needs a person.',
      labelNames: ['kind'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'ward_backup_duration_seconds',
      help: 'How long backups, restores and drills took, by kind.',
      labelNames: ['kind'],
      buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
      registers: [registry],
    });
    this.lastSuccess = new Gauge({
      name: 'ward_backup_last_success_timestamp_seconds',
      help: 'When the last successful backup or drill of each volume finished (Unix time), by kind and volume id.',
      labelNames: ['kind', 'volume'],
      registers: [registry],
    });
    this.drillSeconds = new Gauge({
      name: 'ward_backup_drill_recovery_seconds',
      help: 'How long the last restore drill of each volume took end to end: the measured recovery time.',
      labelNames: ['volume'],
      registers: [registry],
    });
  }

  /** finished records one finished run. */
  finished(kind: string, ok: boolean, seconds: number, volumeId: string | undefined, at: Date): void {
    this.runs.inc({ kind, outcome: ok ? 'succeeded' : 'failed' });
    if (!ok) this.failures.inc({ kind });
    if (kind !== 'retention') this.duration.observe({ kind }, seconds);
    if (ok && volumeId) this.lastSuccess.set({ kind, volume: volumeId }, at.getTime() / 1000);
    if (ok && volumeId && kind === 'drill') this.drillSeconds.set({ volume: volumeId }, seconds);
  }
}
