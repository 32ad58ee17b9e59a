import type { DestinationStream, Logger } from 'pino';
import { systemClock, VERSION, type Clock } from '../core/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { buildApi } from '../api/index.ts';
import { auditKeyPath, loadOrCreateAuditKey, type AuditService } from '../audit/index.ts';
import { openLocalKeyProvider } from '../secrets/index.ts';
import type { ServerConfig } from '../config/index.ts';
import { newLogger } from './logger.ts';
import { prepareRuntime, type RuntimeOptions, type RuntimeRole } from './agent-role.ts';
import { deliveredSecrets, type Agent } from '../agent/index.ts';
import type { SecretDeliveryService } from '../services/index.ts';

export { newLogger, REDACT_PATHS } from './logger.ts';

export interface StartOptions {
  /** logDestination receives the JSON log lines; default stdout. */
  logDestination?: DestinationStream;
  clock?: Clock;
  /** runtime replaces parts of the agent role (tests give the runtime harness's runtime and network). */
  runtime?: RuntimeOptions;
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
    api = await buildApi({ store, clock: options.clock ?? systemClock, logger, version: VERSION, auditKey, keys, deploys: runtime.apiDeps });
    vault = api.deliveries;
    await api.listen({ host: config.apiListen.host, port: config.apiListen.port });
    const deployer = api.deployer;
    await runtime.start(() => deployer.nudge());
    await deployer.start();
  } catch (e) {
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
  for (const role of config.roles) {
    if (role !== 'control' && role !== 'agent') logger.warn({ role }, `the ${role} role is not available in this version yet; running the control plane only`);
  }
  logger.info({ api_url: apiUrl, store: store.kind, version: VERSION }, 'ward server started');

  let closing: Promise<void> | undefined;
  return {
    apiUrl,
    store,
    logger,
    audit: api.audit,
    agent: runtime.agent,
    close(closeOptions = {}) {
      closing ??= (async () => {
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
