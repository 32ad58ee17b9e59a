import { readFile } from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import * as z from 'zod';
import { UserError } from '../core/errors.ts';
import { parseDuration, parseSize } from '../core/units.ts';
import {
  FLY_NOTES,
  ONE_OR_MANY,
  appConfigKeyPaths,
  appConfigSchema,
  unwrapOptional,
  type CHECK_METHODS,
  type CONCURRENCY_TYPES,
  type DEPLOY_STRATEGIES,
  type KILL_SIGNALS,
  type PORT_HANDLERS,
  type RawAppConfig,
  type RESTART_POLICIES,
  type SERVICE_PROTOCOLS,
} from './app-schema.ts';
import { locateKeys, positionOf, type SourcePosition } from './locate.ts';
import { closest, formatPath, isTable, joinPath } from './paths.ts';
import { normalizeHostname } from './rules.ts';

export type { RawAppConfig };

/**
 * Diagnostic is one finding about a ward.toml. Errors stop a deploy; warnings (unknown keys, settings
 * that have no effect) are printed and the deploy goes on. `path` is the key path
 * (`http_service.checks[0].interval`), empty for a TOML syntax error; line and column are 1-based.
 */
export interface Diagnostic {
  severity: 'error' | 'warning';
  path: string;
  message: string;
  line?: number;
  column?: number;
}

/** AppConfigResult is what parsing gives: a config only when no diagnostic is an error. */
export interface AppConfigResult {
  config?: AppConfig;
  diagnostics: Diagnostic[];
  /** file is the path the text came from, when the caller named one. */
  file?: string;
}

export type KillSignal = (typeof KILL_SIGNALS)[number];
export type DeployStrategy = (typeof DEPLOY_STRATEGIES)[number];
export type RestartPolicy = (typeof RESTART_POLICIES)[number];
export type ServiceProtocol = (typeof SERVICE_PROTOCOLS)[number];
export type PortHandler = (typeof PORT_HANDLERS)[number];
export type ConcurrencyType = (typeof CONCURRENCY_TYPES)[number];
export type CheckMethod = (typeof CHECK_METHODS)[number];

/**
 * AppConfig is a valid ward.toml with every default filled in: durations in milliseconds, sizes in
 * bytes, names in camelCase. Optional parts that have no sensible default (`httpService`, `metrics`,
 * `app`) are undefined when absent; lists are empty.
 */
export interface AppConfig {
  /** app is undefined when ward.toml leaves the name to `--app`. */
  app: string | undefined;
  /** primaryRegion is undefined when the control plane should place the app in its own region. */
  primaryRegion: string | undefined;
  killSignal: KillSignal;
  killTimeoutMs: number;
  build: { image: string | undefined };
  env: Record<string, string>;
  secrets: SecretsConfig;
  httpService: HttpService | undefined;
  services: Service[];
  deploy: DeployConfig;
  mounts: Mount[];
  resources: Resources;
  restart: RestartConfig;
  metrics: MetricsConfig | undefined;
}

/** SecretsConfig says how the app's secrets reach it besides the environment. */
export interface SecretsConfig {
  /** files names secrets also written as files, /run/secrets/<NAME> (a tmpfs, mode 0400, owned by the app's user). */
  files: string[];
}

export interface HttpService {
  internalPort: number;
  forceHttps: boolean;
  /** hostnames are lower-case, without a trailing dot. */
  hostnames: string[];
  minInstances: number;
  checks: HttpCheck[];
  concurrency: Concurrency;
  hsts: Hsts;
}

export interface HttpCheck {
  path: string;
  method: CheckMethod;
  headers: Record<string, string>;
  intervalMs: number;
  timeoutMs: number;
  gracePeriodMs: number;
}

export interface TcpCheck {
  intervalMs: number;
  timeoutMs: number;
  gracePeriodMs: number;
}

export interface Concurrency {
  type: ConcurrencyType;
  softLimit: number | undefined;
  hardLimit: number | undefined;
}

/** Hsts is the Strict-Transport-Security header the edge sends (RFC 6797). */
export interface Hsts {
  enabled: boolean;
  maxAgeMs: number;
  includeSubdomains: boolean;
  preload: boolean;
}

export interface Service {
  internalPort: number;
  protocol: ServiceProtocol;
  ports: ServicePort[];
  checks: TcpCheck[];
  concurrency: Concurrency;
}

export interface ServicePort {
  port: number;
  handlers: PortHandler[];
  forceHttps: boolean;
}

export interface DeployConfig {
  strategy: DeployStrategy;
  /** maxUnavailable is a count of instances when ≥ 1, or a share of them when between 0 and 1. */
  maxUnavailable: number;
  waitTimeoutMs: number;
  releaseCommand: string | undefined;
}

export interface Mount {
  source: string;
  destination: string;
  backupCommand: string | undefined;
}

export interface Resources {
  memoryBytes: number;
  cpus: number;
}

export interface RestartConfig {
  policy: RestartPolicy;
  maxRetries: number;
}

export interface MetricsConfig {
  port: number;
  path: string;
}

/**
 * APP_DEFAULTS holds every default of ward.toml, written as a user would write them. Only
 * normalizeAppConfig fills them in (checkRules reads a few to judge keys left unset), so a default
 * changes here and nowhere else; docs/ward.reference.toml states them to users.
 */
export const APP_DEFAULTS = {
  kill_signal: 'SIGTERM',
  kill_timeout: '5s',
  http_service: { force_https: true, min_instances: 1, concurrency_type: 'requests' },
  hsts: { max_age: '365d', include_subdomains: false, preload: false },
  http_check: { path: '/', method: 'GET', interval: '10s', timeout: '2s', grace_period: '5s' },
  tcp_check: { interval: '10s', timeout: '2s', grace_period: '5s' },
  service: { protocol: 'tcp', concurrency_type: 'connections' },
  service_port: { force_https: false },
  deploy: { strategy: 'rolling', max_unavailable: 1, wait_timeout: '5m' },
  resources: { memory: '256MB', cpus: 1 },
  restart: { policy: 'on-failure', max_retries: 10 },
  metrics: { path: '/metrics' },
} as const;

/** Collector gathers diagnostics in the order they are found. */
class Collector {
  readonly list: Diagnostic[] = [];
  error(path: string, message: string): void {
    this.list.push({ severity: 'error', path, message });
  }
  warn(path: string, message: string): void {
    this.list.push({ severity: 'warning', path, message });
  }
  /** errorAtOrAbove tells whether path or one of its ancestors already has an error. */
  errorAtOrAbove(path: string): boolean {
    return this.list.some(
      (d) => d.severity === 'error' && (d.path === path || path.startsWith(`${d.path}.`) || path.startsWith(`${d.path}[`)),
    );
  }
}

/**
 * parseAppConfig parses and validates a ward.toml. It never throws for a bad document: everything
 * wrong is a diagnostic, and `config` is set only when there is no error. `file`, when given, is echoed
 * in the result so it travels with the diagnostics to formatDiagnostics and assertValidAppConfig.
 */
export function parseAppConfig(text: string, file?: string): AppConfigResult {
  // A UTF-8 byte-order mark is invisible in editors; TOML does not allow it, so drop it quietly.
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let doc: Record<string, unknown>;
  try {
    doc = parse(source, { unsafeKeyBehaviour: 'throw' });
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    // smol-toml's message is "Invalid TOML document: <reason>" followed by a code excerpt.
    const reason = e.message.replace(/^Invalid TOML document: /, '').split('\n')[0];
    const diagnostic: Diagnostic = { severity: 'error', path: '', message: `invalid TOML: ${reason}`, line: e.line, column: e.column };
    return withFile({ diagnostics: [diagnostic] }, file);
  }
  const { raw, diagnostics } = validateAppConfig(doc);
  const positions = locateKeys(source);
  const lifted = ONE_OR_MANY.filter((k) => isTable(doc[k]));
  for (const d of diagnostics) {
    const pos = locate(positions, d.path, lifted);
    if (pos) Object.assign(d, pos);
  }
  // Stable sort: file order first, then diagnostics without a position in the order they were found.
  diagnostics.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0));
  const ok = !diagnostics.some((d) => d.severity === 'error');
  return withFile(ok && raw ? { config: normalizeAppConfig(raw), diagnostics } : { diagnostics }, file);
}

function withFile(result: AppConfigResult, file: string | undefined): AppConfigResult {
  return file === undefined ? result : { ...result, file };
}

/** locate finds a diagnostic's position; a lifted `[mounts]` is reported where `mounts[0]` would be. */
function locate(positions: Map<string, SourcePosition>, path: string, lifted: readonly string[]): SourcePosition | undefined {
  for (const key of lifted) {
    if (path.startsWith(`${key}[0]`)) {
      const pos = positionOf(positions, key + path.slice(key.length + 3));
      if (pos) return pos;
    }
  }
  return positionOf(positions, path);
}

/**
 * validateAppConfig checks a parsed document (from TOML, or JSON sent to the API) without positions.
 * Each top-level table is validated on its own, so one bad table does not hide the problems in the
 * others; `raw` holds the tables that passed and is undefined only when the document is not a table.
 */
export function validateAppConfig(doc: unknown): { raw: RawAppConfig | undefined; diagnostics: Diagnostic[] } {
  const c = new Collector();
  if (!isTable(doc)) {
    c.error('', 'expected a table of settings at the top level');
    return { raw: undefined, diagnostics: c.list };
  }
  const data: Record<string, unknown> = { ...doc };
  for (const key of ONE_OR_MANY) if (isTable(data[key])) data[key] = [data[key]];

  reportUnknownKeys(appConfigSchema, data, '', c);
  // These look at what was written, not at what validated, so a bad value in one does not hide them.
  if (data.vm !== undefined && data.resources !== undefined) {
    c.error('vm', '[[vm]] and [resources] both set the instance size; keep one of them');
  }
  if (Array.isArray(data.vm) && data.vm.length > 1) {
    c.error('vm[1]', 'Ward has no process groups, so [[vm]] has at most one entry; merge them');
  }
  const raw: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(appConfigSchema.shape as Record<string, z.ZodType>)) {
    if (data[key] === undefined) continue;
    const r = schema.safeParse(data[key]);
    if (r.success) raw[key] = r.data;
    else for (const issue of r.error.issues) c.error(formatPath([key, ...issue.path.map(segment)]), issueMessage(issue));
  }
  checkRules(raw as RawAppConfig, c);
  return { raw: raw as RawAppConfig, diagnostics: c.list };
}

function segment(p: PropertyKey): string | number {
  return typeof p === 'number' ? p : String(p);
}

function issueMessage(issue: z.core.$ZodIssue): string {
  // A bad record key (an env var name) carries its message one level down.
  if (issue.code === 'invalid_key') return issue.issues[0]?.message ?? issue.message;
  return issue.message;
}

let knownPaths: string[] | undefined;

/**
 * reportUnknownKeys warns about every key the schema does not know, with the most likely intended key.
 * Unknown keys are warnings, not errors, so a file written for a newer Ward, or a fly.toml, still
 * deploys; the warning makes sure a typo does not go unseen.
 */
function reportUnknownKeys(schema: z.ZodType, data: unknown, path: string, c: Collector): void {
  const s = unwrapOptional(schema);
  if (s instanceof z.ZodObject) {
    if (!isTable(data)) {
      // zod's object schema takes a Date for an empty table; every other mismatch zod reports itself.
      if (data instanceof Date) c.error(path, 'expected a table, got a date');
      return;
    }
    const shape = s.shape as Record<string, z.ZodType>;
    for (const [key, value] of Object.entries(data)) {
      const p = joinPath(path, key);
      if (Object.hasOwn(shape, key)) reportUnknownKeys(shape[key]!, value, p, c);
      else c.warn(p, unknownKeyMessage(key, p, Object.keys(shape)));
    }
  } else if (s instanceof z.ZodArray && Array.isArray(data)) {
    data.forEach((el, i) => reportUnknownKeys(s.element as z.ZodType, el, `${path}[${i}]`, c));
  }
}

function unknownKeyMessage(key: string, path: string, siblings: string[]): string {
  const note = FLY_NOTES[path.replace(/\[\d+\]/g, '[]')];
  if (note) return `unknown key (ignored): ${note}`;
  const near = closest(key, siblings);
  if (near) return `unknown key (ignored); did you mean "${near}"?`;
  // A known key in the wrong table, like a top-level force_https, perhaps misspelt as well.
  knownPaths ??= appConfigKeyPaths();
  const leafOf = (p: string) => p.split('.').pop()!.replace('[]', '');
  const leaf = closest(key, new Set(knownPaths.map(leafOf).filter((l) => l !== '*')));
  const elsewhere = leaf === undefined ? undefined : knownPaths.find((p) => leafOf(p) === leaf);
  if (elsewhere) return `unknown key (ignored); did you mean ${elsewhere.replaceAll('[]', '')}?`;
  return 'unknown key (ignored)';
}

/** checkRules checks what a schema of single keys cannot: required keys and rules across keys. */
function checkRules(raw: RawAppConfig, c: Collector): void {
  const need = (path: string, present: boolean, what: string) => {
    if (!present && !c.errorAtOrAbove(path)) c.error(path, `is required: ${what}`);
  };

  const http = raw.http_service;
  if (http) {
    need('http_service.internal_port', http.internal_port !== undefined, 'the port the app listens on for HTTP, like 8080');
    const seen = new Set<string>();
    http.hostnames?.forEach((h, i) => {
      const name = normalizeHostname(h);
      if (seen.has(name)) c.warn(`http_service.hostnames[${i}]`, `"${name}" is listed twice`);
      seen.add(name);
    });
    http.checks?.forEach((check, i) => checkTiming(check, APP_DEFAULTS.http_check, `http_service.checks[${i}]`, c));
    if (http.concurrency) checkConcurrency(http.concurrency, 'http_service.concurrency', c);
    const hsts = http.hsts;
    // hstspreload.org refuses entries without includeSubDomains or with max-age under a year.
    if (hsts?.preload && !(hsts.include_subdomains && parseDuration(hsts.max_age ?? APP_DEFAULTS.hsts.max_age) >= 365 * 86_400_000)) {
      c.warn('http_service.hsts.preload', 'browser preload lists need include_subdomains = true and max_age of at least 365d');
    }
  }

  // The edge owns public ports: [http_service] takes 80 and 443, and each TCP or UDP port has one owner.
  const owners = new Map<string, string>();
  if (http) {
    owners.set('tcp/80', '[http_service]');
    owners.set('tcp/443', '[http_service]');
  }
  raw.services?.forEach((svc, i) => {
    const at = `services[${i}]`;
    const protocol = svc.protocol ?? APP_DEFAULTS.service.protocol;
    need(`${at}.internal_port`, svc.internal_port !== undefined, 'the port the app listens on for this service');
    if (!svc.ports || svc.ports.length === 0) {
      c.warn(at, 'has no [[services.ports]], so it is reachable only on the private network; private ports need no [[services]] entry');
    }
    svc.ports?.forEach((p, j) => {
      const pat = `${at}.ports[${j}]`;
      need(`${pat}.port`, p.port !== undefined, 'the public port, like 5432');
      if (p.port !== undefined) {
        const key = `${protocol}/${p.port}`;
        const owner = owners.get(key);
        if (owner) c.error(`${pat}.port`, `public port ${key} is already used by ${owner}`);
        else owners.set(key, pat);
      }
      const handlers = p.handlers ?? [];
      if (protocol === 'udp' && handlers.length > 0) {
        c.error(`${pat}.handlers`, 'handlers work on TCP only; a UDP service forwards datagrams as they are');
      }
      if (new Set(handlers).size !== handlers.length) c.warn(`${pat}.handlers`, 'lists a handler more than once');
      if (p.force_https && !handlers.includes('http')) {
        c.warn(`${pat}.force_https`, 'has no effect without the "http" handler');
      }
    });
    if (protocol === 'udp' && svc.checks && svc.checks.length > 0) {
      c.error(`${at}.checks`, 'checks connect over TCP, so a UDP service cannot have them');
    }
    svc.checks?.forEach((check, j) => checkTiming(check, APP_DEFAULTS.tcp_check, `${at}.checks[${j}]`, c));
    if (svc.concurrency) checkConcurrency(svc.concurrency, `${at}.concurrency`, c);
  });

  const sources = new Map<string, number>();
  const destinations = new Map<string, number>();
  raw.mounts?.forEach((m, i) => {
    const at = `mounts[${i}]`;
    need(`${at}.source`, m.source !== undefined, 'the name of the volume, as in `ward volumes create NAME`');
    need(`${at}.destination`, m.destination !== undefined, 'the absolute path to mount it at, like "/data"');
    if (m.source !== undefined) {
      const first = sources.get(m.source);
      if (first !== undefined) c.error(`${at}.source`, `volume "${m.source}" is already mounted by mounts[${first}]; a volume is mounted once`);
      else sources.set(m.source, i);
    }
    if (m.destination !== undefined) {
      const dest = m.destination.replace(/\/+$/, '');
      const first = destinations.get(dest);
      if (first !== undefined) c.error(`${at}.destination`, `"${dest}" is already the destination of mounts[${first}]`);
      else destinations.set(dest, i);
    }
  });

  const strategy = raw.deploy?.strategy;
  if ((strategy === 'canary' || strategy === 'bluegreen') && raw.mounts && raw.mounts.length > 0) {
    // Both start a new instance before stopping an old one, and a volume is attached to one at a time.
    c.error('deploy.strategy', `"${strategy}" starts new instances before stopping old ones, which volumes do not allow; use "rolling" or "immediate" with [[mounts]]`);
  }

  if (raw.restart?.max_retries !== undefined && (raw.restart.policy ?? APP_DEFAULTS.restart.policy) !== 'on-failure') {
    c.warn('restart.max_retries', 'has no effect unless policy = "on-failure"');
  }

  if (raw.metrics) need('metrics.port', raw.metrics.port !== undefined, 'the port the app serves Prometheus metrics on, like 9091');
}

function checkTiming(
  check: { interval?: string; timeout?: string },
  defaults: { interval: string; timeout: string },
  at: string,
  c: Collector,
): void {
  const interval = parseDuration(check.interval ?? defaults.interval);
  const timeout = parseDuration(check.timeout ?? defaults.timeout);
  if (timeout > interval) c.warn(`${at}.timeout`, 'is longer than the interval, so a slow check overlaps the next one');
}

function checkConcurrency(conc: { soft_limit?: number; hard_limit?: number }, at: string, c: Collector): void {
  if (conc.soft_limit !== undefined && conc.hard_limit !== undefined && conc.soft_limit > conc.hard_limit) {
    c.error(`${at}.soft_limit`, `is ${conc.soft_limit}, more than hard_limit (${conc.hard_limit}); the soft limit is reached first`);
  }
}

/**
 * normalizeAppConfig fills every default into a raw config that validated without errors. It is the
 * only place defaults are applied. Given a raw config with errors it throws, because that is a bug.
 */
export function normalizeAppConfig(raw: RawAppConfig): AppConfig {
  const D = APP_DEFAULTS;
  const http = raw.http_service;
  const forceHttps = http?.force_https ?? D.http_service.force_https;
  const resources = raw.resources ?? raw.vm?.[0] ?? {};
  return {
    app: raw.app,
    primaryRegion: raw.primary_region,
    killSignal: raw.kill_signal ?? D.kill_signal,
    killTimeoutMs: parseDuration(raw.kill_timeout ?? D.kill_timeout),
    build: { image: raw.build?.image },
    env: { ...raw.env },
    secrets: { files: [...new Set(raw.secrets?.files ?? [])] },
    httpService: http && {
      internalPort: required(http.internal_port, 'http_service.internal_port'),
      forceHttps,
      hostnames: [...new Set((http.hostnames ?? []).map(normalizeHostname))],
      minInstances: http.min_instances ?? D.http_service.min_instances,
      checks: (http.checks ?? []).map((ch) => ({
        path: ch.path ?? D.http_check.path,
        method: (ch.method?.toUpperCase() ?? D.http_check.method) as CheckMethod,
        headers: { ...ch.headers },
        intervalMs: parseDuration(ch.interval ?? D.http_check.interval),
        timeoutMs: parseDuration(ch.timeout ?? D.http_check.timeout),
        gracePeriodMs: parseDuration(ch.grace_period ?? D.http_check.grace_period),
      })),
      concurrency: concurrency(http.concurrency, D.http_service.concurrency_type),
      hsts: {
        // HSTS follows force_https unless set: an app that opts out of HTTPS redirects would otherwise
        // still be forced to HTTPS by browsers that saw the header once.
        enabled: http.hsts?.enabled ?? forceHttps,
        maxAgeMs: parseDuration(http.hsts?.max_age ?? D.hsts.max_age),
        includeSubdomains: http.hsts?.include_subdomains ?? D.hsts.include_subdomains,
        preload: http.hsts?.preload ?? D.hsts.preload,
      },
    },
    services: (raw.services ?? []).map((svc, i) => ({
      internalPort: required(svc.internal_port, `services[${i}].internal_port`),
      protocol: svc.protocol ?? D.service.protocol,
      ports: (svc.ports ?? []).map((p, j) => ({
        port: required(p.port, `services[${i}].ports[${j}].port`),
        handlers: [...new Set(p.handlers ?? [])],
        forceHttps: p.force_https ?? D.service_port.force_https,
      })),
      checks: (svc.checks ?? []).map((ch) => ({
        intervalMs: parseDuration(ch.interval ?? D.tcp_check.interval),
        timeoutMs: parseDuration(ch.timeout ?? D.tcp_check.timeout),
        gracePeriodMs: parseDuration(ch.grace_period ?? D.tcp_check.grace_period),
      })),
      concurrency: concurrency(svc.concurrency, D.service.concurrency_type),
    })),
    deploy: {
      strategy: raw.deploy?.strategy ?? D.deploy.strategy,
      maxUnavailable: raw.deploy?.max_unavailable ?? D.deploy.max_unavailable,
      waitTimeoutMs: parseDuration(raw.deploy?.wait_timeout ?? D.deploy.wait_timeout),
      releaseCommand: raw.deploy?.release_command,
    },
    mounts: (raw.mounts ?? []).map((m, i) => ({
      source: required(m.source, `mounts[${i}].source`),
      destination: required(m.destination, `mounts[${i}].destination`).replace(/(.)\/+$/, '$1'),
      backupCommand: m.backup_command,
    })),
    resources: {
      memoryBytes: parseSize(resources.memory ?? D.resources.memory),
      cpus: resources.cpus ?? D.resources.cpus,
    },
    restart: {
      policy: raw.restart?.policy ?? D.restart.policy,
      maxRetries: raw.restart?.max_retries ?? D.restart.max_retries,
    },
    metrics: raw.metrics && {
      port: required(raw.metrics.port, 'metrics.port'),
      path: raw.metrics.path ?? D.metrics.path,
    },
  };
}

function concurrency(c: { type?: ConcurrencyType; soft_limit?: number; hard_limit?: number } | undefined, type: ConcurrencyType): Concurrency {
  return { type: c?.type ?? type, softLimit: c?.soft_limit, hardLimit: c?.hard_limit };
}

function required<T>(v: T | undefined, path: string): T {
  if (v === undefined) throw new Error(`normalizeAppConfig: ${path} is missing; validate before normalizing`);
  return v;
}

/**
 * loadAppConfig reads and parses a ward.toml. A file that cannot be read is a UserError; a file that
 * reads but is invalid is a result with error diagnostics (see assertValidAppConfig).
 */
export async function loadAppConfig(path: string): Promise<AppConfigResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new UserError('invalid_config', `${path} does not exist`, {
        hint: 'Run the command in the directory that holds ward.toml, or pass --config PATH.',
        cause: e,
      });
    }
    if (code === 'EISDIR') {
      throw new UserError('invalid_config', `${path} is a directory, not a ward.toml`, { hint: 'Pass the path of the file: --config PATH/ward.toml.', cause: e });
    }
    throw new UserError('invalid_config', `cannot read ${path}: ${(e as Error).message}`, { hint: 'Check that the file exists and is readable.', cause: e });
  }
  return parseAppConfig(text, path);
}

/**
 * formatDiagnostics renders diagnostics one per line the way compilers do, so editors can jump to them:
 * `ward.toml:12:3: error: http_service.internal_port: expected a port number 1–65535, got "abc"`.
 */
export function formatDiagnostics(diagnostics: readonly Diagnostic[], file: string): string {
  return diagnostics
    .map((d) => {
      const where = d.line === undefined ? file : `${file}:${d.line}:${d.column ?? 1}`;
      return `${where}: ${d.severity}: ${d.path === '' ? '' : `${d.path}: `}${d.message}`;
    })
    .join('\n');
}

/**
 * assertValidAppConfig returns the config, or throws a UserError (`invalid_config`) listing every error;
 * warnings are listed after them, because an unknown key is often why a required key is missing.
 */
export function assertValidAppConfig(result: AppConfigResult, file: string): AppConfig {
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (result.config && errors.length === 0) return result.config;
  const warnings = result.diagnostics.filter((d) => d.severity === 'warning');
  const count = errors.length === 1 ? '1 error' : `${errors.length} errors`;
  throw new UserError('invalid_config', `${file} has ${count}:\n${formatDiagnostics([...errors, ...warnings], file)}`, {
    hint: 'Fix the lines above; docs/ward.reference.toml describes every key with an example.',
    details: { file, diagnostics: result.diagnostics },
  });
}
