import type { DestinationStream, Logger } from 'pino';
import { systemClock, toTimestamp, UserError, VERSION, type Clock } from '../core/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { buildApi } from '../api/index.ts';
import { auditKeyPath, loadOrCreateAuditKey, type AuditService } from '../audit/index.ts';
import { AppKeys, openLocalKeyProvider, openSealingKeys } from '../secrets/index.ts';
import type { ServerConfig } from '../config/index.ts';
import { newLogger } from './logger.ts';
import { prepareRuntime, type RuntimeOptions, type RuntimeRole } from './agent-role.ts';
import { deliveredSecrets, type Agent } from '../agent/index.ts';
import { startEdgeRole, type EdgeRole, type EdgeRoleOptions } from './edge-role.ts';
import type { SecretDeliveryService } from '../services/index.ts';
import { VolumeKeyService, type VolumeHostFiles } from '../services/index.ts';
import type { VolumeSource } from '../agent/index.ts';
import type { VolumeHost } from '../services/index.ts';
import { BackupScheduler, ResticEngine, tmpfsScratch } from '../backups/index.ts';
import { join } from 'node:path';

export { newLogger, REDACT_PATHS } from './logger.ts';

export interface StartOptions {
  /** logDestination receives the JSON log lines; default stdout. */
  logDestination?: DestinationStream;
  clock?: Clock;
  /** runtime replaces parts of the agent role (tests give the runtime harness's runtime and network). */
  runtime?: RuntimeOptions;
  /** edge replaces parts of the edge role (tests shorten the ACME polling and the route refresh). */
  edge?: Pick<EdgeRoleOptions, 'refreshMs' | 'acmePollMs' | 'issuer'>;
  /** backupTickMs is how often the backup scheduler looks for due backups and drills; default 60 s. */
  backupTickMs?: number;
}

/** RunningServer is a started `ward server`. close() stops accepting, finishes requests, closes the store. */
export interface RunningServer {
  /** apiUrl is where the API listens; '' without the control role (no API is served then). */
  apiUrl: string;
  store: Store;
  logger: Logger;
  /** audit is the control plane's AuditService (checkpoints, verification). */
  audit: AuditService;
  /** agent runs this host's instances (the agent role); its `health` registry lists healthy upstreams. */
  agent: Agent | undefined;
  /** edge is the edge role (listeners, routes, certificates); undefined without the edge role. */
  edge: EdgeRole | undefined;
  /**
   * close stops the server. Instances keep running (they outlive the control plane, promise 7) unless
   * stopInstances is set.
   */
  close(options?: { stopInstances?: boolean }): Promise<void>;
}

/**
 * startServer runs the roles of `ward server` named in config. The control plane (API, store) is built
 * here, the agent in agent-role.ts (it runs this host's instances in the same process).
 *
 * Only the control role listens for the API and runs the Deployer. Without it
 * (`--roles agent,edge` beside a `--roles control` on the same PostgreSQL) the API's services are still
 * built, unexposed, for what the agent and edge use in-process: the vault's secret deliveries, the
 * metrics registry. See docs/config.md "Split roles".
 */
export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const control = config.roles.includes('control');
  if (!control && config.databaseUrl === undefined) {
    throw new UserError('invalid_config', `--roles ${config.roles.join(',')} without the control role needs the control plane's database`, {
      hint: 'give the PostgreSQL URL the control plane uses (--database-url postgres://…), or add control to --roles',
    });
  }
  const logger = newLogger(config.logLevel, options.logDestination);
  const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, logger });
  let api;
  let runtime: RuntimeRole | undefined;
  let edge: EdgeRole | undefined;
  let stopWatching: (() => void) | undefined;
  let stopReports: (() => Promise<void>) | undefined;
  let backupScheduler: BackupScheduler | undefined;
  try {
    // The agent gets its instances' secrets from this process's vault: a delivery token minted for each
    // placement and traded in-process, with the same checks a remote agent gets over the API. The vault
    // lives in the API, built after the agent, so it is looked up when the first instance starts.
    let vault: SecretDeliveryService | undefined;
    const deliveries = (): SecretDeliveryService => {
      if (!vault) throw new Error('the secrets vault is not ready yet');
      return vault;
    };
    const secrets = deliveredSecrets({
      mint: async (instanceId, hostId) => (await deliveries().mint(instanceId, hostId)).token,
      fetcher: { fetch: (token) => deliveries().localFetcher(() => runtime?.agent?.hostId ?? '').fetch(token) },
    });
    // Volume keys likewise: unwrapped in this process for this host's agent only (VolumeKeyService).
    let volumeKeys: VolumeKeyService | undefined;
    const keyService = (): VolumeKeyService => {
      if (!volumeKeys) throw new Error('the volume key service is not ready yet');
      return volumeKeys;
    };
    const volumes: VolumeSource = {
      grantForInstance: (a, hostId) => keyService().grantForInstance(a, hostId),
      resolveForInstance: (a, hostId) => keyService().resolveForInstance(a, hostId),
      grantForHost: (id, hostId, purpose) => keyService().grantForHost(id, hostId, purpose),
      formatted: (id, hostId, kind) => keyService().formatted(id, hostId, kind),
    };
    runtime = prepareRuntime(config, store, logger, { secrets, volumes, ...options.runtime });
    const agentOf = () => runtime?.agent;
    const volumeFiles = (): VolumeHostFiles | undefined => {
      const agent = agentOf();
      return agent && { hostId: () => agent.hostId || undefined, encryption: () => agent.volumes.backend.kind, remove: (id) => agent.volumes.remove(id), users: (id) => agent.volumes.users(id) };
    };
    // The checkpoint-signing key lives in the data directory even when the database is PostgreSQL:
    // each control plane has its own key, and audit_keys lists every one's public half.
    const keyFile = auditKeyPath(config.dataDir);
    const { key: auditKey, created } = await loadOrCreateAuditKey(keyFile);
    if (created) logger.info({ file: keyFile, key_id: auditKey.keyId }, 'audit signing key created');
    // The master key (key-encryption key) seals secrets at rest, such as TOTP secrets. Every control plane
    // on one database needs the same file; it is created 0600 on first start.
    const keys = await openLocalKeyProvider(config.masterKeyFile);
    // Backups read volumes through this host's agent, run a mount's backup_command in its instance, and
    // drill into a tmpfs per drill (docs/backups.md); restic's cache holds only encrypted repository data.
    const backupHost = (): VolumeHost | undefined => {
      const agent = agentOf();
      return agent && {
        hostId: () => agent.hostId || undefined,
        withMounted: (v, purpose, fn) => agent.volumes.withMounted(v, purpose, fn),
        instancesUsing: (id) => agent.volumes.users(id).filter((u) => u.startsWith('ins_')),
        exec: (id, argv, o) => agent.exec(id, argv, o),
      };
    };
    const backups = { host: backupHost, scratch: tmpfsScratch(join(config.dataDir, 'backups', 'scratch')), engine: new ResticEngine({ cacheDir: join(config.dataDir, 'backups', 'cache') }) };
    api = await buildApi({ store, clock: options.clock ?? systemClock, logger, version: VERSION, auditKey, keys, deploys: runtime.apiDeps, volumes: { files: volumeFiles }, backups, ...(runtime.gateway ? { network: { gateway: runtime.gateway } } : {}) });
    vault = api.deliveries;
    volumeKeys = new VolumeKeyService({ store, keys: new AppKeys(keys, () => toTimestamp((options.clock ?? systemClock).now())), audit: api.audit, clock: options.clock ?? systemClock });
    if (control) await api.listen({ host: config.apiListen.host, port: config.apiListen.port });
    const deployer = api.deployer;
    await runtime.start(() => deployer.nudge());
    // One Deployer per control plane; an agent/edge process never drives deploys (nudge is a no-op then).
    if (control) await deployer.start();
    // Agents in other processes (PostgreSQL): the Deployer steps as soon as one reports, not at its poll.
    if (control) stopReports = await store.reportChanges.subscribe(() => deployer.nudge());
    // Scheduled backups and weekly drills of this host's volumes; next times live in the store.
    if (control && runtime.agent) {
      const service = api.backups;
      backupScheduler = new BackupScheduler({ recover: () => service.recover(), tick: () => service.tick(), logger, ...(options.backupTickMs ? { intervalMs: options.backupTickMs } : {}) });
      await backupScheduler.start();
    }
    if (config.roles.includes('edge')) {
      // The edge's keys (ACME account, certificates) are sealed with a key derived from the server's root
      // data key; a listener that cannot bind leaves the edge in listen_failed, not the server down.
      const sealing = await openSealingKeys(store, keys, () => toTimestamp((options.clock ?? systemClock).now()));
      const sources = api.metricsSources;
      edge = await startEdgeRole(config, store, { health: runtime.agent?.health, sealing, logger, metrics: api.metricsRegistry, addMetrics: (collect) => void sources.push(collect), ...(runtime.agent ? { journal: runtime.agent.journal } : {}), ...options.edge });
      api.certificates.set(edge.certificates);
      // Stopping an instance on purpose waits for the edge's requests in flight to it; a Deployer commit
      // in this process (a bluegreen switch) reloads the routes at once.
      runtime.drainWith(edge.drain);
      const role = edge;
      stopWatching = runtime.onDesiredChange(() => void role.refresh().catch((e: unknown) => logger.warn({ err: e }, 'routes not reloaded')));
    }
  } catch (e) {
    backupScheduler?.close();
    await edge?.close().catch(() => {});
    await api?.close().catch(() => {});
    await runtime?.close().catch(() => {});
    await store.close();
    throw e;
  }
  // Every process signs checkpoints of the chains it wrote to (an agent's secret deliveries too).
  api.audit.start();
  const addr = api.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.apiListen.port;
  const host = config.apiListen.host.includes(':') ? `[${config.apiListen.host}]` : config.apiListen.host;
  const apiUrl = control ? `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}` : '';
  logger.info({ roles: config.roles, ...(control ? { api_url: apiUrl } : {}), store: store.kind, version: VERSION }, 'ward server started');

  let closing: Promise<void> | undefined;
  return {
    apiUrl,
    store,
    logger,
    audit: api.audit,
    agent: runtime.agent,
    edge,
    close(closeOptions = {}) {
      closing ??= (async () => {
        stopWatching?.();
        await stopReports?.().catch(() => {});
        backupScheduler?.close();
        runtime.drainWith(undefined);
        await edge?.close().catch((e: unknown) => logger.error({ err: e }, 'edge shutdown failed'));
        await api.close();
        // The agent reports to the store as it lets go of its instances: before the store closes.
        await runtime.close(closeOptions).catch((e: unknown) => logger.error({ err: e }, 'agent shutdown failed'));
        // After the last request, before the store goes: sign the newest entries.
        await api.audit.close().catch((e: unknown) => logger.error({ err: e }, 'final audit checkpoint failed'));
        await store.close();
        logger.info('ward server stopped');
        logger.flush();
      })();
      return closing;
    },
  };
}
