/**
 * Placement: which hosts new instances go to. Pure functions over the hosts and the instances they
 * already run, tested by equality. One host today; the same rules spread instances when there are more
 * (issue "Deploys" adds regions and scale on top).
 */
import { UserError, type Host, type Instance } from '../core/index.ts';
import type { Resources } from '../config/index.ts';
import { formatSize } from '../core/index.ts';
import type { Store } from '../store/index.ts';

export interface PlacementRequest {
  count: number;
  resources: Resources;
  /** region limits placement to hosts of one region; undefined places anywhere. */
  region: string | undefined;
  /**
   * hostId pins every instance to one host: the host holding the volumes the release mounts
   * (volumeHost below). Undefined places anywhere.
   */
  hostId?: string | undefined;
}

/**
 * volumeHost is the host an app's instances must run on for their `[[mounts]]`: the one holding the
 * volumes (DeployService checks, before a release is made, that they all exist on one host). undefined
 * when the release mounts none, or when a volume is gone (the agent then refuses to start it).
 */
export async function volumeHost(store: Pick<Store, 'volumes'>, appId: string, mounts: readonly { source: string }[]): Promise<string | undefined> {
  for (const m of mounts) {
    const v = await store.volumes.findByName(appId, m.source);
    if (v) return v.hostId;
  }
  return undefined;
}

/**
 * place picks a host for each of `count` new instances: ready hosts (of the region, when one is
 * asked for) that can hold the instance's resources, the one running the fewest of `running` first,
 * then by name. Nothing fits: `unavailable` (no ready host) or `resources_exceed_host`.
 */
export function place(hosts: readonly Host[], running: readonly Pick<Instance, 'hostId'>[], req: PlacementRequest): Host[] {
  const ready = hosts.filter((h) => h.status === 'ready' && (req.region === undefined || h.region === req.region) && (req.hostId === undefined || h.id === req.hostId));
  if (ready.length === 0 && req.hostId !== undefined) {
    const host = hosts.find((h) => h.id === req.hostId);
    throw new UserError('unavailable', `the host holding the app's volumes (${host?.name ?? req.hostId}) is not ready to run instances`, {
      hint: 'an instance runs where its volumes are: start that host\'s agent again, or remove [[mounts]] from ward.toml',
    });
  }
  if (ready.length === 0) {
    const where = req.region === undefined ? '' : ` in region "${req.region}"`;
    throw new UserError('unavailable', `no host is ready to run instances${where}`, {
      hint: req.region === undefined ? 'start the agent role: ward server --roles control,agent' : 'remove primary_region from ward.toml, or start an agent in that region',
    });
  }
  const fits = ready.filter((h) => req.resources.memoryBytes <= h.capacity.memoryBytes && req.resources.cpus <= h.capacity.cpus);
  if (fits.length === 0) {
    const biggest = [...ready].sort((a, b) => b.capacity.memoryBytes - a.capacity.memoryBytes)[0]!;
    const what = req.resources.memoryBytes > biggest.capacity.memoryBytes
      ? `${formatSize(req.resources.memoryBytes)} of memory; the biggest host has ${formatSize(biggest.capacity.memoryBytes)}`
      : `${req.resources.cpus} CPUs; the biggest host has ${biggest.capacity.cpus}`;
    throw new UserError('resources_exceed_host', `each instance asks for ${what}`, {
      hint: 'lower memory or cpus under [resources] in ward.toml, or add a bigger host',
      details: { memory_bytes: req.resources.memoryBytes, cpus: req.resources.cpus },
    });
  }
  const load = new Map<string, number>(fits.map((h) => [h.id, 0]));
  for (const i of running) if (load.has(i.hostId)) load.set(i.hostId, load.get(i.hostId)! + 1);
  const out: Host[] = [];
  for (let n = 0; n < req.count; n++) {
    const best = [...fits].sort((a, b) => load.get(a.id)! - load.get(b.id)! || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))[0]!;
    load.set(best.id, load.get(best.id)! + 1);
    out.push(best);
  }
  return out;
}

/**
 * instanceCount is how many instances a deploy starts: as many as run now, at least
 * `[http_service] min_instances`, and at least one.
 */
export function instanceCount(currentlyRunning: number, minInstances: number | undefined): number {
  return Math.max(1, currentlyRunning, minInstances ?? 0);
}
