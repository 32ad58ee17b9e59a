/**
 * The backups folder's public surface: encrypted off-site backups of volumes with restic, restores and
 * restore drills (docs/backups.md). The engine drives restic and checks what it reports; the control
 * plane's BackupService (src/services/backups.ts) decides what to run, records it and raises failures.
 */
export { cronProblem, CronError, parseCron, type CronSchedule } from './cron.ts';
export { DEFAULT_RETENTION, MAX_KEEP, retentionArgs, retentionProblem, type RetentionPolicy } from './retention.ts';
export { redactRepository, repositoryKind, ResticError, volumeTag, type RepositoryKind, type ResticSnapshot, type ResticSummary } from './restic.ts';
export { compareWithListing, ResticEngine, treeDigestOf, type BackupResult, type BackupTarget, type DrillResult, type EngineOptions, type ForgetResult } from './engine.ts';
export { directoryScratch, tmpfsScratch, type Scratch } from './scratch.ts';
export { BackupMetrics } from './metrics.ts';
export { BackupScheduler, type BackupSchedulerOptions } from './scheduler.ts';
