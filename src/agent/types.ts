/**
 * The agent's seams: what it needs from the control plane (ControlPlaneLink) and from the image store
 * (ImageProvider). Both are owned here, by their caller, and are as narrow as the agent's use of them.
 */
import type { HostCapacity, Instance, InstanceReport } from '../core/index.ts';
import type { AppConfig } from '../config/index.ts';
import type { Image, PullOptions } from './runtime/index.ts';
import type { OrgNetworkOptions } from './network/index.ts';

/** AssignedRelease is the part of a release an agent needs to run its instances. */
export interface AssignedRelease {
  id: string;
  version: number;
  /** imageRef is how the release named its image; imageDigest is what every instance runs. */
  imageRef: string;
  imageDigest: string;
  config: AppConfig;
  secretsVersion: number | null;
}

/** Assignment is one instance placed on this host, with its release and app. */
export interface Assignment {
  instance: Instance;
  release: AssignedRelease;
  /** app.network is the org's network settings from the control plane (absent: defaults, egress allowed). */
  app: { id: string; name: string; orgId: string; network?: OrgNetworkOptions };
}

/** HostRegistration is how an agent describes its host when it starts. */
export interface HostRegistration {
  id: string;
  name: string;
  region: string;
  capacity: HostCapacity;
}

/**
 * ControlPlaneLink is everything an agent asks of the control plane. In single-node mode
 * StoreControlPlane implements it in the same process over the Store; agents on other hosts will use
 * an HTTP client with the same four calls (issue "Multi-host").
 *
 * Duties: every call may fail (the control plane is down); the agent retries on its next reconcile and
 * keeps running its instances meanwhile. report() writes only observed fields and is idempotent.
 */
export interface ControlPlaneLink {
  /** registerHost records the host (creating it or updating its settings) and marks it ready. */
  registerHost(host: HostRegistration): Promise<void>;
  heartbeat(hostId: string): Promise<void>;
  /** assignments lists the instances on this host that want to run or are not yet reported stopped. */
  assignments(hostId: string): Promise<Assignment[]>;
  report(instanceId: string, report: InstanceReport): Promise<void>;
  /** watch, when the link can, calls fn as soon as desired state may have changed (else polling finds it). */
  watch?(fn: () => void): () => void;
}

/** ImageProvider is the part of the image store (ImageStore) the agent uses. */
export interface ImageProvider {
  /** get returns the stored image with this manifest digest, or undefined. */
  get(digest: string): Promise<Image | undefined>;
  pull(ref: string, options?: PullOptions): Promise<Image>;
}

/** AgentLogger is the slice of pino the agent logs to. It never receives env values. */
export interface AgentLogger {
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

export const SILENT_LOGGER: AgentLogger = { info() {}, warn() {}, error() {} };
