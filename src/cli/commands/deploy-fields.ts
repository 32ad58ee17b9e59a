import { formatTime, type Output } from '../output.ts';

/** ApiRelease is a release as the API sends it (docs/api.md). */
export interface ApiRelease {
  id: string;
  version: number;
  status: 'pending' | 'running' | 'succeeded' | 'failed' | 'rolled_back';
  reason: string | null;
  image: string;
  digest: string;
  strategy: string;
  secrets_version: number | null;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

/** ApiInstance is an instance as the API sends it. */
export interface ApiInstance {
  id: string;
  release: number;
  region: string;
  host: string;
  state: 'pending' | 'starting' | 'running' | 'restarting' | 'failed' | 'stopped';
  desired_state: 'running' | 'stopped';
  health: 'unknown' | 'passing' | 'failing';
  private_ip: string | null;
  private_ipv4: string | null;
  restarts: number;
  started_at: string | null;
  last_exit: { code: number | null; reason: string | null; at: string | null } | null;
  last_log?: string[];
}

/** printInstances prints instances as a table (ward status, ward deploy). */
export function printInstances(out: Output, instances: readonly ApiInstance[]): void {
  if (instances.length === 0) {
    out.info('No instances.');
    return;
  }
  out.table(instances, [
    { header: 'id', value: (i) => i.id },
    { header: 'release', value: (i) => `v${i.release}` },
    { header: 'region', value: (i) => i.region },
    { header: 'host', value: (i) => i.host },
    { header: 'state', value: (i) => (i.desired_state === 'stopped' && i.state !== 'stopped' ? `${i.state} (stopping)` : i.state) },
    { header: 'health', value: (i) => i.health },
    { header: 'restarts', value: (i) => String(i.restarts) },
    { header: 'private ip', value: (i) => [i.private_ip, i.private_ipv4].filter(Boolean).join(' ') },
  ]);
}

/** printReleases prints releases as a table, newest first. */
export function printReleases(out: Output, releases: readonly ApiRelease[]): void {
  if (releases.length === 0) {
    out.info('No releases yet: ward deploy makes the first.');
    return;
  }
  out.table(releases, [
    { header: 'version', value: (r) => `v${r.version}` },
    { header: 'status', value: (r) => r.status },
    { header: 'strategy', value: (r) => r.strategy },
    { header: 'image', value: (r) => r.image },
    { header: 'digest', value: (r) => r.digest.slice(0, 19) },
    { header: 'created', value: (r) => formatTime(r.created_at) },
    { header: 'reason', value: (r) => r.reason ?? '' },
  ]);
}
