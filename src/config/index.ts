/**
 * Configuration: an app's ward.toml (parse, validate with diagnostics, normalize) and the `ward server`
 * configuration (flags > environment > file > defaults). See docs/config.md.
 */
export {
  APP_DEFAULTS,
  assertValidAppConfig,
  formatDiagnostics,
  loadAppConfig,
  normalizeAppConfig,
  parseAppConfig,
  validateAppConfig,
} from './app-config.ts';
export type {
  AppConfig,
  AppConfigResult,
  CheckMethod,
  Concurrency,
  ConcurrencyType,
  DeployConfig,
  DeployStrategy,
  Diagnostic,
  Hsts,
  HttpCheck,
  HttpService,
  KillSignal,
  MetricsConfig,
  Mount,
  PortHandler,
  RawAppConfig,
  Resources,
  RestartConfig,
  RestartPolicy,
  Service,
  ServicePort,
  ServiceProtocol,
  TcpCheck,
} from './app-config.ts';
export { appConfigKeyPaths, appConfigSchema } from './app-schema.ts';
export {
  LETS_ENCRYPT_DIRECTORY,
  LOCAL_ACME_DIRECTORY,
  LOG_LEVELS,
  SERVER_CONFIG_ENV,
  SERVER_ROLES,
  SERVER_SETTINGS,
  formatListen,
  parseListen,
  redactUrl,
  resolveServerConfig,
} from './server-config.ts';
export type { Listen, LogLevel, ResolveServerConfigInput, ServerConfig, ServerFlags, ServerRole, ServerSetting } from './server-config.ts';
