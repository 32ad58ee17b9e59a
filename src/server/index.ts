import type { DestinationStream, Logger } from 'pino';
import { systemClock, toTimestamp, VERSION, type Clock } from '../core/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { buildApi } from '../api/index.ts';
import { auditKeyPath, loadOrCreateAuditKey, type AuditService } from '../audit/index.ts';
import { openLocalKeyProvider, openSealingKeys } from '../secrets/index.ts';
import type { ServerConfig } from '../config/index.ts';
import { newLogger } from './logger.ts';
import { prepareRuntime, type RuntimeOptions, type RuntimeRole } from './agent-role.ts';
import { deliveredSecrets, type Agent } from '../agent/index.ts';
import { startEdgeRole, type EdgeRole, type EdgeRoleOptions } from './edge-role.ts';
import type { SecretDeliveryService } from '../services/index.ts';

export { newLogger, REDACT_PATHS } from './logger.ts';

export interface StartOptions {
  /** logDestination receives the JSON log lines; default stdout. */
  logDestination?: DestinationStream;
  clock?: Clock;
  /** runtime replaces parts of the agent role (tests give the runtime harness's runtime and network). */
  runtime?: RuntimeOptions;
  /** edge replaces parts of the edge role (tests shorten the ACME polling and the route refresh). */
  edge?: Pick<EdgeRoleOptions, 'refreshMs' | 'acmePollMs' | 'issuer'>;
}

/** RunningServer is a started `ward server`. close() stops accepting, finishes requests, closes the store. */
export interface RunningServer {
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
 */
export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = newLogger(config.logLevel, options.logDestination);
  const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, logger });
  let api;
  let runtime: RuntimeRole | undefined;
  let edge: EdgeRole | undefined;
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
    runtime = prepareRuntime(config, store, logger, { secrets, ...options.runtime });
    // The checkpoint-signing key lives in the data directory even when the database is PostgreSQL:
    // each control plane has its own key, and audit_keys lists every one's public half.
    const keyFile = auditKeyPath(config.dataDir);
    const { key: auditKey, created } = await loadOrCreateAuditKey(keyFile);
    if (created) logger.info({ file: keyFile, key_id: auditKey.keyId }, 'audit signing key created');
    // The master key (key-encryption key) seals secrets at rest, such as TOTP secrets. Every control plane
    // on one database needs the same file; it is created 0600 on first start.
    const keys = await openLocalKeyProvider(config.masterKeyFile);
    api = await buildApi({ store, clock: options.clock ?? systemClock, logger, version: VERSION, auditKey, keys, deploys: runtime.apiDeps, ...(runtime.gateway ? { network: { gateway: runtime.gateway } } : {}) });
    vault = api.deliveries;
    await api.listen({ host: config.apiListen.host, port: config.apiListen.port });
    const deployer = api.deployer;
    await runtime.start(() => deployer.nudge());
    await deployer.start();
    if (config.roles.includes('edge')) {
      // The edge's keys (ACME account, certificates) are sealed with a key derived from the server's root
      // data key; a listener that cannot bind leaves the edge in listen_failed, not the server down.
      const sealing = await openSealingKeys(store, keys, () => toTimestamp((options.clock ?? systemClock).now()));
      edge = await startEdgeRole(config, store, { health: runtime.agent?.health, sealing, logger, metrics: api.metricsRegistry, ...options.edge });
      api.certificates.set(edge.certificates);
    }
  } catch (e) {
    await edge?.close().catch(() => {});
    await api?.close().catch(() => {});
    await runtime?.close().catch(() => {});
    await store.close();
    throw e;
  }
  api.audit.start();
  const addr = api.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.apiListen.port;
  const host = config.apiListen.host.includes(':') ? `[${config.apiListen.host}]` : config.apiListen.host;
  const apiUrl = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  logger.info({ api_url: apiUrl, store: store.kind, version: VERSION }, 'ward server started');

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
