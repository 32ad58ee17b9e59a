import { UserError } from '../../core/index.ts';
import { apiPath } from '../client.ts';
import type { Context } from '../command.ts';
import { formatTime, type Output } from '../output.ts';

/** POLL_MS is how often `ward deploy` looks at the release it follows. */
const POLL_MS = 500;

/** ApiRelease is a release as the API sends it (docs/api.md). */
export interface ApiRelease {
  id: string;
  version: number;
  status: 'pending' | 'running' | 'succeeded' | 'failed' | 'rolled_back';
  reason: string | null;
  image: string;
  digest: string;
  strategy: string;
  /** target_count: how many instances the deploy ends with (null: placed up front). */
  target_count: number | null;
  /** progress: where the deploy stands ("2/3 replaced"). */
  progress: string | null;
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
    // The reason's first line: a failed release's reason goes on with the instance's last log lines.
    { header: 'reason', value: (r) => r.reason?.split('\n')[0] ?? '' },
  ]);
}

/**
 * followRelease follows a release until its deploy is over, printing its steps on stderr the way flyctl
 * does (instances started, each instance healthy and how long after it was placed, instances replaced
 * k/N, the switch), then a
 * summary. A release that did not succeed is a `deploy_failed` error (exit 1) carrying the reason with
 * the failed instance's last log lines. `ward deploy` and `ward releases rollback` use it.
 */
/** opts.waitMs: how long the deploy may show no change before the command stops following it. */
export async function followRelease(ctx: Context, app: string, made: { release: ApiRelease; instances: ApiInstance[] }, opts: { started: number; waitMs: number }): Promise<void> {
  const { started } = opts;
  const step = (m: string) => ctx.out.info(`--> ${m}`);
  let seenRunning = -1;
  let seenHealthy = -1;
  let seenProgress = made.release.progress;
  const healthyAt = new Set<string>();
  // When the CLI first saw each instance (placed): its health time counts from there.
  const seenAt = new Map<string, number>(made.instances.map((i) => [i.id, Date.now()]));
  let lastChange = Date.now();
  let current = { release: made.release, instances: made.instances };
  for (;;) {
    current = await ctx.api.get<{ release: ApiRelease; instances: ApiInstance[] }>(apiPath`/v1/apps/${app}/releases/${made.release.version}`);
    for (const i of current.instances) if (!seenAt.has(i.id)) seenAt.set(i.id, Date.now());
    const total = current.release.target_count ?? current.instances.length;
    const live = current.instances.filter((i) => i.desired_state === 'running' || current.release.status !== 'running');
    const running = live.filter((i) => i.state === 'running').length;
    const healthy = live.filter((i) => i.state === 'running' && i.health === 'passing');
    if (running !== seenRunning || healthy.length !== seenHealthy || current.release.progress !== seenProgress) lastChange = Date.now();
    if (running !== seenRunning && running > 0) step(`Instances started ${running}/${total}`);
    for (const i of healthy) {
      if (healthyAt.has(i.id)) continue;
      healthyAt.add(i.id);
      step(`Instance ${i.id} healthy after ${((Date.now() - (seenAt.get(i.id) ?? started)) / 1000).toFixed(1)}s`);
    }
    if (healthy.length !== seenHealthy && healthy.length > 0) step(`Health checks passing ${healthy.length}/${total}`);
    seenRunning = running;
    seenHealthy = healthy.length;
    const progress = current.release.progress;
    if (progress && progress !== seenProgress) {
      const replaced = /^(\d+)\/(\d+) replaced$/.exec(progress);
      if (replaced) step(`Instances replaced ${replaced[1]}/${replaced[2]}`);
      else if (/switched$/.test(progress)) step('Switched to the new set; the old instances stop');
      seenProgress = progress;
    }
    if (current.release.status !== 'running' && current.release.status !== 'pending') break;
    // The server fails an instance that is not healthy within wait_timeout; a deploy that shows no change
    // for longer than that (and a margin) is one this command stops following.
    if (Date.now() - lastChange > opts.waitMs) throw new UserError('api_unreachable', `release v${made.release.version} has not moved for ${Math.round(opts.waitMs / 1000)}s`, { hint: 'follow it with ward status' });
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const summary = { app, status: current.release.status, duration_ms: Date.now() - started, release: current.release, instances: current.instances };
  if (current.release.status === 'succeeded') {
    step(`Release v${current.release.version} succeeded in ${seconds}s`);
    ctx.out.result(summary, () => printInstances(ctx.out, current.instances));
    return;
  }
  step(`Release v${current.release.version} ${current.release.status} after ${seconds}s`);
  // The reason's first line says why; the server appends the failed instance's last lines when it had
  // them ("last log lines of ins_…:"); else show what the instances kept.
  const [why, ...rest] = (current.release.reason ?? 'no reason given').split('\n');
  const quoted = /^last log lines of (\S+):$/.exec(rest[0] ?? '');
  if (quoted) {
    ctx.out.info(`Last lines of ${quoted[1]}:`);
    for (const l of rest.slice(1)) ctx.out.info(l);
  } else {
    for (const i of current.instances) {
      if (!i.last_log?.length) continue;
      ctx.out.info(`Last lines of ${i.id}:`);
      for (const l of i.last_log) ctx.out.info(`  ${l}`);
    }
  }
  if (ctx.out.json) ctx.out.result(summary, () => {});
  throw new UserError('deploy_failed', `release v${current.release.version} ${current.release.status}: ${why}`, {
    hint: `the previous release keeps serving; see ward logs -a ${app}`,
  });
}
