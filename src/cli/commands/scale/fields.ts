import type { Output } from '../../output.ts';

/** ApiScale is an app's scale as the API sends it (GET/POST /v1/apps/{app}/scale). */
export interface ApiScale {
  count: number;
  regions: Record<string, number>;
  min_instances: number;
  max: number;
  release: number | null;
  started?: string[];
  stopped?: string[];
}

/** printScale prints the count, per region, and the limits. */
export function printScale(out: Output, s: ApiScale): void {
  out.fields([
    ['Instances', String(s.count)],
    ['Regions', Object.keys(s.regions).length === 0 ? 'none' : Object.entries(s.regions).map(([r, n]) => `${r} ${n}`).join(', ')],
    ['Release', s.release === null ? 'none running' : `v${s.release}`],
    ['Limits', `at least ${s.min_instances} (min_instances), at most ${s.max}`],
  ]);
}
