/**
 * Retention: how many snapshots of a volume `restic forget --prune` keeps after each backup. The default
 * follows the anchor (Aptible): 7 daily, 4 weekly, 12 monthly, 6 yearly. restic counts the
 * buckets back from the newest snapshot, not from "now", so a volume whose backups stopped does not
 * lose its last snapshots to the passing of time.
 */
export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}

/** DEFAULT_RETENTION is the policy of a volume that has not set its own. */
export const DEFAULT_RETENTION: RetentionPolicy = Object.freeze({ daily: 7, weekly: 4, monthly: 12, yearly: 6 });

/** MAX_KEEP bounds each count: 10 000 of anything is a typo, not a policy. */
export const MAX_KEEP = 10_000;

/**
 * retentionProblem says what is wrong with a policy, or undefined: every count a whole number from 0 to
 * MAX_KEEP, and at least one above 0 (a policy keeping nothing would delete every snapshot).
 */
export function retentionProblem(p: RetentionPolicy): string | undefined {
  for (const k of ['daily', 'weekly', 'monthly', 'yearly'] as const) {
    const v = p[k];
    if (!Number.isInteger(v) || v < 0 || v > MAX_KEEP) return `keep ${k} must be a whole number from 0 to ${MAX_KEEP}`;
  }
  if (p.daily + p.weekly + p.monthly + p.yearly === 0) return 'a retention policy that keeps nothing would delete every snapshot; keep at least one';
  return undefined;
}

/** retentionArgs are restic's --keep-* flags for a policy (counts of 0 are left out). */
export function retentionArgs(p: RetentionPolicy): string[] {
  const out: string[] = [];
  if (p.daily > 0) out.push('--keep-daily', String(p.daily));
  if (p.weekly > 0) out.push('--keep-weekly', String(p.weekly));
  if (p.monthly > 0) out.push('--keep-monthly', String(p.monthly));
  if (p.yearly > 0) out.push('--keep-yearly', String(p.yearly));
  return out;
}
