import type { DestinationStream, Logger } from 'pino';
import { systemClock, VERSION, type Clock } from '../core/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { buildApi } from '../api/index.ts';
import type { ServerConfig } from '../config/index.ts';
import { newLogger } from './logger.ts';

export { newLogger, REDACT_PATHS } from './logger.ts';

export interface StartOptions {
  /** logDestination receives the JSON log lines; default stdout. */
  logDestination?: DestinationStream;
  clock?: Clock;
}

/** RunningServer is a started `ward server`. close() stops accepting, finishes requests, closes the store. */
export interface RunningServer {
  apiUrl: string;
  store: Store;
  logger: Logger;
  close(): Promise<void>;
}

/**
 * startServer runs the roles of `ward server` named in config. The control plane (API, store) is built
 * here; the agent and edge roles arrive with their issues and are reported as not yet available.
 */
export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = newLogger(config.logLevel, options.logDestination);
  const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, logger });
  let api;
  try {
    api = await buildApi({ store, clock: options.clock ?? systemClock, logger, version: VERSION });
    await api.listen({ host: config.apiListen.host, port: config.apiListen.port });
  } catch (e) {
    await store.close();
    throw e;
  }
  const addr = api.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.apiListen.port;
  const host = config.apiListen.host.includes(':') ? `[${config.apiListen.host}]` : config.apiListen.host;
  const apiUrl = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  for (const role of config.roles) {
    if (role !== 'control') logger.warn({ role }, `the ${role} role is not available in this version yet; running the control plane only`);
  }
  logger.info({ api_url: apiUrl, store: store.kind, version: VERSION }, 'ward server started');

  let closing: Promise<void> | undefined;
  return {
    apiUrl,
    store,
    logger,
    close() {
      closing ??= (async () => {
        await api.close();
        await store.close();
        logger.info('ward server stopped');
        logger.flush();
      })();
      return closing;
    },
  };
}
