/**
 * StoreControlPlane is the ControlPlaneLink of single-node mode: the agent runs in the control plane's
 * process and reads and writes the Store directly. It is also how the control plane hears that
 * desired state changed (notify) and that an agent reported (onReport), without polling.
 */
import { systemClock, toTimestamp, type Clock, type InstanceReport, type Release } from '../core/index.ts';
import type { AppConfig } from '../config/index.ts';
import type { Store } from '../store/index.ts';
import type { AssignedRelease, Assignment, ControlPlaneLink, HostRegistration } from './types.ts';

export interface StoreControlPlaneOptions {
  clock?: Clock;
  /** onReport is called after each report is written (the deployer steps at once instead of polling). */
  onReport?: (instanceId: string, report: InstanceReport) => void;
}

/** assignedRelease parses a release's stored config for the agent. */
export function assignedRelease(r: Release): AssignedRelease {
  return { id: r.id, version: r.version, imageRef: r.imageRef, imageDigest: r.imageDigest, config: JSON.parse(r.config) as AppConfig, secretsVersion: r.secretsVersion };
}

export class StoreControlPlane implements ControlPlaneLink {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #onReport: StoreControlPlaneOptions['onReport'];
  readonly #watchers = new Set<() => void>();
  /** Releases never change what they run, so their parsed form is kept. */
  readonly #releases = new Map<string, AssignedRelease>();

  constructor(store: Store, options: StoreControlPlaneOptions = {}) {
    this.#store = store;
    this.#clock = options.clock ?? systemClock;
    this.#onReport = options.onReport;
  }

  #now(): string {
    return toTimestamp(this.#clock.now());
  }

  async registerHost(h: HostRegistration): Promise<void> {
    const now = this.#now();
    await this.#store.hosts.register({ ...h, status: 'ready', lastHeartbeat: now, createdAt: now });
  }

  async heartbeat(hostId: string): Promise<void> {
    await this.#store.hosts.heartbeat(hostId, this.#now());
  }

  async assignments(hostId: string): Promise<Assignment[]> {
    const instances = await this.#store.instances.listForHost(hostId);
    const apps = new Map<string, Assignment['app'] | undefined>();
    const out: Assignment[] = [];
    for (const instance of instances) {
      let release = this.#releases.get(instance.releaseId);
      if (!release) {
        const r = await this.#store.releases.get(instance.releaseId);
        if (!r) continue;
        release = assignedRelease(r);
        this.#releases.set(r.id, release);
      }
      if (!apps.has(instance.appId)) {
        const a = await this.#store.apps.get(instance.appId);
        // The org's settings (migration 6): its prefix (the one the control plane stored, which may be a
        // custom one) and egress. Without a row, every host derives the same prefix and allows egress.
        const net = a && (await this.#store.orgNetworks.get(a.orgId));
        apps.set(instance.appId, a && { id: a.id, name: a.name, orgId: a.orgId, ...(net ? { network: { ipv6Prefix: net.prefix, egress: net.egress } } : {}) });
      }
      const app = apps.get(instance.appId);
      if (app) out.push({ instance, release, app });
    }
    // Keep only the releases this host still runs: the cache must not grow with every deploy ever made.
    const used = new Set(instances.map((i) => i.releaseId));
    for (const id of this.#releases.keys()) if (!used.has(id)) this.#releases.delete(id);
    return out;
  }

  async report(instanceId: string, report: InstanceReport): Promise<void> {
    await this.#store.instances.report(instanceId, report, this.#now());
    this.#onReport?.(instanceId, report);
    // A control plane in another process (PostgreSQL) hears of it too; failing to tell it only costs time.
    void this.#store.reportChanges.notify().catch(() => {});
  }

  /** notify tells watching agents that desired state changed (a deploy, a restart, a stop). */
  notify(): void {
    for (const fn of this.#watchers) fn();
  }

  watch(fn: () => void): () => void {
    this.#watchers.add(fn);
    return () => this.#watchers.delete(fn);
  }
}
