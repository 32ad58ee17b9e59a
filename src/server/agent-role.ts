/**
 * The runtime side of `ward server`: the image store the control plane resolves deploys with, and, with
 * the agent role, the agent running this host's instances in the same process (single-node mode).
 * startServer (index.ts) calls these in order: prepareRuntime before the API is built (the API reads
 * the same image store and log journal), start once it listens, close when it stops.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isId, newId, systemClock, UserError } from '../core/index.ts';
import type { ServerConfig } from '../config/index.ts';
import type { Store } from '../store/index.ts';
import { Agent, defaultHooks, secretsHook, StoreControlPlane, type AgentOptions, type Drain, type InstanceHook, type HookDeps, type RestartSettings, type SecretsSource, type VolumeSource } from '../agent/index.ts';
import { BridgeNetwork, InternalResolver, MeshSync, parseResolvConf, WireGuardDevice, type OrgNetwork } from '../agent/network/index.ts';
import { CrunRuntime, ImageStore, type Runtime } from '../agent/runtime/index.ts';
import type { DeployServiceOptions, WireGuardGateway } from '../services/index.ts';
import { MeshControlPlane } from '../services/index.ts';
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
  /**
   * wireguard brings up the host's WireGuard interface and syncs it with the control plane's mesh and
   * people (docs/networking.md). Default: on with the default network, off with a given one (tests
   * that share one machine). The host registers its key, endpoint and slice index either way.
   */
  wireguard?: boolean;
  /** runDir is Ward's tmpfs run directory (default /run/ward). */
  runDir?: string;
  restart?: Partial<RestartSettings>;
  hooks?: (deps: HookDeps) => InstanceHook[];
  secrets?: SecretsSource;
  /** volumes hands the agent its volumes' keys (the control plane's VolumeKeyService, in-process). */
  volumes?: VolumeSource;
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
  /**
   * drainWith gives the agent the edge's drain (the edge role, started after the agent); undefined when
   * the edge stops. Until then, and without an edge on the node, stopping an instance waits for nothing.
   */
  drainWith(drain: Drain | undefined): void;
  /**
   * onDesiredChange calls fn whenever this process changed instances' desired state or a release's
   * status (a deploy, the Deployer's commit of a step, a restart): the edge role reloads its routes at
   * once. It returns the unsubscribe.
   */
  onDesiredChange(fn: () => void): () => void;
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

/** WIREGUARD_INTERFACE is the host's WireGuard interface: its `wg` prefix is what the firewall calls a tunnel. */
export const WIREGUARD_INTERFACE = 'wgward';

/**
 * agentHostId reads (or makes) the host's id the way Agent.start does (`<data dir>/agent/host.json`):
 * the mesh registers the host, and takes its slice index, before the agent starts.
 */
async function agentHostId(dataDir: string): Promise<string> {
  const dir = join(dataDir, 'agent');
  const file = join(dir, 'host.json');
  try {
    const saved = JSON.parse(await readFile(file, 'utf8')) as { id?: unknown };
    if (typeof saved.id === 'string' && isId(saved.id, 'host')) return saved.id;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && !(e instanceof SyntaxError)) throw e;
  }
  const id = newId('host');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(`${file}.tmp`, JSON.stringify({ id }), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
  return id;
}

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
  let drain: Drain | undefined;
  const changed = new Set<() => void>();
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
      ...(options.volumes ? { volumes: options.volumes } : {}),
      drain: (instanceId, timeoutMs) => (drain ? drain(instanceId, timeoutMs) : Promise.resolve(undefined)),
      ...options.agent,
      logger: logger.child({ role: 'agent' }),
    });
  }
  // The key file keeps its first name (ward-wg.key): people's configs name its public key.
  const device = withAgent ? new WireGuardDevice({ name: WIREGUARD_INTERFACE, keyName: 'ward-wg.key', stateDir: join(config.dataDir, 'agent', 'wireguard'), listenPort: WIREGUARD_PORT }) : undefined;
  const mesh = new MeshControlPlane(store, systemClock);
  const meshNetwork = network instanceof BridgeNetwork ? network : undefined;
  const meshSync =
    device &&
    new MeshSync({
      link: mesh,
      device,
      network: meshNetwork ?? { setHostIndex: async () => {}, ensure: async () => {} },
      endpoint: config.wireguardEndpoint ?? `${config.hostname}:${WIREGUARD_PORT}`,
      ...(ownResolver ? { resolver: ownResolver } : options.resolver ? { resolver: options.resolver } : {}),
      ...(options.agent?.reconcileIntervalMs ? { intervalMs: options.agent.reconcileIntervalMs } : {}),
      logger: logger.child({ role: 'mesh' }),
    });
  const withWireGuard = Boolean(meshSync && meshNetwork && (options.wireguard ?? !options.network));
  let unwatchMesh: (() => void) | undefined;
  let unsubscribeDesired: (() => Promise<void>) | undefined;
  /** tellLocal tells this process's parts that desired state changed: the edge first (its reload, a
   * bluegreen switch, should be under way before the agent stops anything), then the agent. */
  const tellLocal = (): void => {
    for (const fn of changed) {
      try {
        fn();
      } catch (e) {
        logger.error({ err: e }, 'desired-state listener failed');
      }
    }
    link.notify();
  };
  let hostId: string | undefined;
  return {
    agent,
    images,
    // This host once its agent has registered with the mesh (its slice index comes from the store).
    gateway: device && (async () => (hostId ? mesh.gateway(hostId) : undefined)),
    apiDeps: {
      images,
      // The journal is on disk: the API reads it even while the agent is stopped; follow needs the agent.
      ...(agent ? { logs: agent.journal } : {}),
      uploadDir: join(config.dataDir, 'uploads'),
      ...(options.maxUploadBytes ? { maxUploadBytes: options.maxUploadBytes } : {}),
      onDesiredChange: () => {
        tellLocal();
        // Other processes on this database (agents and edges of split roles, other hosts) hear it too.
        void store.desiredChanges.notify().catch((e: unknown) => logger.warn({ err: e }, 'desired-state change not signalled to other processes'));
      },
    },
    drainWith(fn) {
      drain = fn;
    },
    onDesiredChange(fn) {
      changed.add(fn);
      return () => changed.delete(fn);
    },
    async start(report) {
      onReport = report;
      // The whole firewall and every org's bridge and resolver listener, from the records, before any
      // instance is touched: instances that outlived the agent are isolated again with no gap.
      // First the mesh registration: it gives this host its slice index, which every address lies in.
      if (meshSync) {
        const id = await agentHostId(config.dataDir);
        await meshSync.register(id);
        hostId = id;
      }
      if (network instanceof BridgeNetwork) await network.restore();
      if (withWireGuard && meshSync) {
        // Instances on this host run without the tunnel: a failure here is loud but not fatal.
        await meshSync.start().catch((e: unknown) => logger.error({ err: e }, 'WireGuard did not come up: no mesh to other hosts and no people\'s tunnels until it does'));
        unwatchMesh = link.watch(() => meshSync.nudge());
      }
      await agent?.start();
      // A change made by a control plane in another process (PostgreSQL): this process's agent and edge
      // act on it now rather than at their next poll. Only the local listeners: never signalled back.
      if (agent || config.roles.includes('edge')) {
        unsubscribeDesired = await store.desiredChanges.subscribe(tellLocal);
      }
    },
    async close(opts = {}) {
      await unsubscribeDesired?.();
      unwatchMesh?.();
      await meshSync?.close();
      await agent?.close(opts);
      await ownResolver?.close();
      images.close();
    },
  };
}
