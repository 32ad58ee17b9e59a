/**
 * The runtime side of `ward server`: the image store the control plane resolves deploys with, and, with
 * the agent role, the agent running this host's instances in the same process (single-node mode).
 * startServer (index.ts) calls these in order: prepareRuntime before the API is built (the API reads
 * the same image store and log journal), start once it listens, close when it stops.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../core/index.ts';
import type { ServerConfig } from '../config/index.ts';
import type { Store } from '../store/index.ts';
import { Agent, defaultHooks, secretsHook, StoreControlPlane, type AgentOptions, type InstanceHook, type HookDeps, type RestartSettings, type SecretsSource } from '../agent/index.ts';
import { BridgeNetwork, InternalResolver, parseResolvConf, WireGuardDevice, type OrgNetwork } from '../agent/network/index.ts';
import { CrunRuntime, ImageStore, type Runtime } from '../agent/runtime/index.ts';
import type { DeployServiceOptions, WireGuardGateway } from '../services/index.ts';
import type { Logger } from 'pino';

/** RuntimeOptions let tests (and operators embedding Ward) replace parts of the agent. */
export interface RuntimeOptions {
  /** runtime replaces CrunRuntime (tests use the runtime harness's, with its own run dir and cgroups). */
  runtime?: Runtime;
  /** network replaces the BridgeNetwork. */
  network?: OrgNetwork;
  /**
   * resolver is the internal DNS server the agent publishes its instances to. Default: with the default
   * network, an InternalResolver forwarding to the host's /etc/resolv.conf; with a given network, none
   * unless given (it must be the one that network serves the orgs with). The caller closes a given one.
   */
  resolver?: InternalResolver;
  /** runDir is Ward's tmpfs run directory (default /run/ward). */
  runDir?: string;
  restart?: Partial<RestartSettings>;
  hooks?: (deps: HookDeps) => InstanceHook[];
  secrets?: SecretsSource;
  /** maxUploadBytes caps image uploads (default 10 GiB). */
  maxUploadBytes?: number;
  agent?: Partial<Pick<AgentOptions, 'reconcileIntervalMs' | 'heartbeatIntervalMs' | 'capture' | 'journal'>>;
}

/** RuntimeRole is what startServer holds of the runtime side. */
export interface RuntimeRole {
  /** agent runs this host's instances; undefined without the agent role. */
  agent: Agent | undefined;
  images: ImageStore;
  /** apiDeps wire the deploy routes (images, logs, agents). */
  apiDeps: NonNullable<Pick<DeployServiceOptions, 'images' | 'logs' | 'uploadDir' | 'maxUploadBytes' | 'onDesiredChange'>>;
  /**
   * gateway is this host as the WireGuard gateway for people's peers: its slice index, the public key of
   * the host's WireGuard key (made on first use under the data dir, 0600; it never leaves the host) and
   * its endpoint (`<hostname>:51820`). Undefined without the agent role.
   */
  gateway: (() => Promise<WireGuardGateway | undefined>) | undefined;
  /** start starts the agent; onReport is called with each instance report (the Deployer steps at once). */
  start(onReport: () => void): Promise<void>;
  /** close stops the agent, leaving its instances running unless stopInstances. */
  close(options?: { stopInstances?: boolean }): Promise<void>;
}

/** agentUnavailable explains why this process cannot run the agent role. */
export function agentUnavailable(): UserError | undefined {
  if (process.platform !== 'linux') return new UserError('unavailable', 'the agent role runs on Linux only', { hint: 'run the control plane alone: ward server --roles control' });
  if (process.getuid?.() !== 0) {
    return new UserError('unavailable', 'the agent role needs root: it creates containers, network namespaces and cgroups', {
      hint: 'run ward server as root, or run the control plane alone: ward server --roles control',
    });
  }
  return undefined;
}

/** WIREGUARD_PORT is the UDP port of the host's WireGuard interface (the mesh and people's peers). */
export const WIREGUARD_PORT = 51820;

/** hostUpstreams are the host's resolvers, where the internal resolver forwards names outside `.internal`. */
function hostUpstreams(): { address: string; port: number }[] {
  try {
    return parseResolvConf(readFileSync('/etc/resolv.conf', 'utf8'));
  } catch {
    return [];
  }
}

/** prepareRuntime makes the image store and, with the agent role, the agent (not started yet). */
export function prepareRuntime(config: ServerConfig, store: Store, logger: Logger, options: RuntimeOptions = {}): RuntimeRole {
  const images = new ImageStore({ dataDir: config.dataDir });
  const withAgent = config.roles.includes('agent');
  let onReport: () => void = () => {};
  const link = new StoreControlPlane(store, { onReport: () => onReport() });
  let agent: Agent | undefined;
  let network: OrgNetwork | undefined;
  let ownResolver: InternalResolver | undefined;
  if (withAgent) {
    if (!options.runtime) {
      const why = agentUnavailable();
      if (why) throw why;
    }
    const runDir = options.runDir ?? '/run/ward';
    let resolver = options.resolver;
    if (!options.network && !resolver) {
      resolver = ownResolver = new InternalResolver({
        upstreams: hostUpstreams(),
        onError: (e) => logger.warn({ err: e }, 'internal resolver socket failed'),
      });
    }
    // Attachments are records of namespaces, which a reboot ends: they belong on the tmpfs too.
    network = options.network ?? new BridgeNetwork({ stateDir: join(runDir, 'network'), ...(resolver ? { resolver } : {}) });
    agent = new Agent({
      link,
      runtime: options.runtime ?? new CrunRuntime({ runDir }),
      network,
      ...(resolver ? { dns: resolver } : {}),
      images,
      dataDir: config.dataDir,
      host: { name: config.hostname, region: config.region },
      ...(options.restart ? { restart: options.restart } : {}),
      // Secret files go on a tmpfs under the run dir, beside the runtime's: one place for the operator to look.
      hooks: options.hooks ?? ((d: HookDeps) => defaultHooks(d).map((h) => (h.name === 'secrets' ? secretsHook(d.secrets, { filesRoot: join(runDir, 'secrets') }) : h))),
      ...(options.secrets ? { secrets: options.secrets } : {}),
      ...options.agent,
      logger: logger.child({ role: 'agent' }),
    });
  }
  const device = withAgent ? new WireGuardDevice({ name: 'ward-wg', stateDir: join(config.dataDir, 'agent', 'wireguard'), listenPort: WIREGUARD_PORT }) : undefined;
  const hostIndex = network instanceof BridgeNetwork ? network.hostIndex : 1;
  return {
    agent,
    images,
    gateway: device && (async () => ({ hostIndex, publicKey: await device.publicKey(), endpoint: `${config.hostname}:${WIREGUARD_PORT}` })),
    apiDeps: {
      images,
      // The journal is on disk: the API reads it even while the agent is stopped; follow needs the agent.
      ...(agent ? { logs: agent.journal } : {}),
      uploadDir: join(config.dataDir, 'uploads'),
      ...(options.maxUploadBytes ? { maxUploadBytes: options.maxUploadBytes } : {}),
      onDesiredChange: () => link.notify(),
    },
    async start(report) {
      onReport = report;
      // The whole firewall and every org's bridge and resolver listener, from the records, before any
      // instance is touched: instances that outlived the agent are isolated again with no gap.
      if (network instanceof BridgeNetwork) await network.restore();
      await agent?.start();
    },
    async close(opts = {}) {
      await agent?.close(opts);
      await ownResolver?.close();
      images.close();
    },
  };
}
