/**
 * HealthRegistry is the agent's in-memory view of which instances are healthy, per app: the source the
 * edge's UpstreamSource reads on this host. upstreams() is called per request, so it is a map lookup
 * with no I/O; subscribers hear which app changed and read again.
 */
import type { HealthState } from '../../core/index.ts';

/** Upstream is one healthy instance the edge may send an app's traffic to. */
export interface Upstream {
  appId: string;
  instanceId: string;
  releaseId: string;
  /** address is the instance's private address that answered its checks (IPv4 or IPv6, no brackets). */
  address: string;
  /** port is the app's `[http_service] internal_port`. */
  port: number;
}

/** InstanceHealth is what the agent knows about one instance's health. */
export interface InstanceHealth {
  appId: string;
  instanceId: string;
  releaseId: string;
  addresses: readonly string[];
  /** address answered the checks; the first of addresses when unknown. */
  address: string | undefined;
  /** port is undefined for an app without `[http_service]`: it has no HTTP upstream. */
  port: number | undefined;
  health: HealthState;
}

export class HealthRegistry {
  readonly #byInstance = new Map<string, InstanceHealth>();
  #byApp = new Map<string, Upstream[]>();
  #passing = new Map<string, InstanceHealth[]>();
  readonly #listeners = new Set<(appId: string) => void>();

  /** set records an instance's health (replacing what was known) and tells subscribers when its app's upstreams changed. */
  set(h: InstanceHealth): void {
    const before = this.#byInstance.get(h.instanceId);
    this.#byInstance.set(h.instanceId, { ...h, addresses: [...h.addresses] });
    this.#rebuild(h.appId, before?.appId);
  }

  /** remove forgets an instance (stopped, or gone from this host). */
  remove(instanceId: string): void {
    const before = this.#byInstance.get(instanceId);
    if (!before) return;
    this.#byInstance.delete(instanceId);
    this.#rebuild(before.appId);
  }

  get(instanceId: string): InstanceHealth | undefined {
    return this.#byInstance.get(instanceId);
  }

  /** upstreams lists the app's healthy instances on this host. Fast: no I/O, no allocation per call. */
  upstreams(appId: string): readonly Upstream[] {
    return this.#byApp.get(appId) ?? [];
  }

  /**
   * healthy lists the app's passing instances on this host, whatever their ports: the edge pairs their
   * address with a `[[services]]` internal port for TCP routes. Fast, like upstreams.
   */
  healthy(appId: string): readonly InstanceHealth[] {
    return this.#passing.get(appId) ?? [];
  }

  /** subscribe calls fn with an app id whenever that app's upstreams change; it returns the unsubscribe. */
  subscribe(fn: (appId: string) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #rebuild(...appIds: Array<string | undefined>): void {
    for (const appId of new Set(appIds.filter((a): a is string => a !== undefined))) {
      const next: Upstream[] = [];
      const passing: InstanceHealth[] = [];
      for (const h of this.#byInstance.values()) {
        if (h.appId !== appId || h.health !== 'passing') continue;
        const address = h.address ?? h.addresses[0];
        if (!address) continue;
        passing.push({ ...h, address });
        if (h.port !== undefined) next.push({ appId, instanceId: h.instanceId, releaseId: h.releaseId, address, port: h.port });
      }
      const byId = (a: { instanceId: string }, b: { instanceId: string }) => (a.instanceId < b.instanceId ? -1 : 1);
      next.sort(byId);
      passing.sort(byId);
      const prev = this.#passing.get(appId) ?? [];
      const same = prev.length === passing.length && prev.every((u, i) => u.instanceId === passing[i]!.instanceId && u.address === passing[i]!.address && u.port === passing[i]!.port);
      if (same) continue;
      const m = new Map(this.#byApp);
      if (next.length) m.set(appId, next);
      else m.delete(appId);
      this.#byApp = m;
      if (passing.length) this.#passing.set(appId, passing);
      else this.#passing.delete(appId);
      for (const fn of this.#listeners) {
        try {
          fn(appId);
        } catch {
          // A subscriber's bug must not stop the agent.
        }
      }
    }
  }
}
