import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { UserError } from '../core/errors.ts';
import { normalizeEmail } from '../core/names.ts';
import { locateKeys, positionOf } from './locate.ts';
import { closest, describeValue, isTable } from './paths.ts';
import { regionProblem } from './rules.ts';

export const SERVER_ROLES = ['control', 'agent', 'edge'] as const;
export type ServerRole = (typeof SERVER_ROLES)[number];

/** LOG_LEVELS are pino's level names. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

/**
 * LOCAL_ACME_DIRECTORY, as acme_directory, makes the edge issue certificates from Ward's own local CA in
 * the data directory instead of asking an ACME server: for machines no public CA can reach (`ward up`).
 */
export const LOCAL_ACME_DIRECTORY = 'local';

/**
 * Listen is a parsed HOST:PORT. `:PORT` means all interfaces and becomes host `::`, which on Linux
 * accepts IPv4 too (unless net.ipv6.bindv6only is set); hosts without IPv6 write `0.0.0.0:PORT`.
 * An empty host is never produced: Fastify would read it as "localhost", node:net as "all".
 * Port 0 asks the kernel for a free port, which tests use.
 */
export interface Listen {
  host: string;
  port: number;
}

/**
 * ServerFlags are `ward server`'s flags as util.parseArgs returns them: keys spelled like the flags.
 * Values are strings; a flag given without a value (`--region=`) is an error, not "unset".
 */
export interface ServerFlags {
  config?: string | undefined;
  'data-dir'?: string | undefined;
  'database-url'?: string | undefined;
  roles?: string | undefined;
  'api-listen'?: string | undefined;
  'http-listen'?: string | undefined;
  'https-listen'?: string | undefined;
  'acme-directory'?: string | undefined;
  'acme-email'?: string | undefined;
  'acme-ca-file'?: string | undefined;
  domain?: string | undefined;
  'edge-workers'?: string | undefined;
  'master-key-file'?: string | undefined;
  region?: string | undefined;
  hostname?: string | undefined;
  'wireguard-endpoint'?: string | undefined;
  'log-level'?: string | undefined;
}

/** ServerSetting is a server setting's key as written in the server config file. */
export type ServerSetting =
  | 'data_dir'
  | 'database_url'
  | 'roles'
  | 'api_listen'
  | 'http_listen'
  | 'https_listen'
  | 'acme_directory'
  | 'acme_email'
  | 'acme_ca_file'
  | 'domain'
  | 'edge_workers'
  | 'master_key_file'
  | 'region'
  | 'hostname'
  | 'wireguard_endpoint'
  | 'log_level';

/** SERVER_SETTINGS names each setting's flag and environment variable; the file key is the map key. */
export const SERVER_SETTINGS: Record<ServerSetting, { flag: keyof ServerFlags; env: string }> = {
  data_dir: { flag: 'data-dir', env: 'WARD_DATA_DIR' },
  database_url: { flag: 'database-url', env: 'WARD_DATABASE_URL' },
  roles: { flag: 'roles', env: 'WARD_ROLES' },
  api_listen: { flag: 'api-listen', env: 'WARD_API_LISTEN' },
  http_listen: { flag: 'http-listen', env: 'WARD_HTTP_LISTEN' },
  https_listen: { flag: 'https-listen', env: 'WARD_HTTPS_LISTEN' },
  acme_directory: { flag: 'acme-directory', env: 'WARD_ACME_DIRECTORY' },
  acme_email: { flag: 'acme-email', env: 'WARD_ACME_EMAIL' },
  acme_ca_file: { flag: 'acme-ca-file', env: 'WARD_ACME_CA_FILE' },
  domain: { flag: 'domain', env: 'WARD_DOMAIN' },
  edge_workers: { flag: 'edge-workers', env: 'WARD_EDGE_WORKERS' },
  master_key_file: { flag: 'master-key-file', env: 'WARD_MASTER_KEY_FILE' },
  region: { flag: 'region', env: 'WARD_REGION' },
  hostname: { flag: 'hostname', env: 'WARD_HOSTNAME' },
  wireguard_endpoint: { flag: 'wireguard-endpoint', env: 'WARD_WIREGUARD_ENDPOINT' },
  log_level: { flag: 'log-level', env: 'WARD_LOG_LEVEL' },
};

/** SERVER_CONFIG_ENV names the variable that points at the server config file when --config does not. */
export const SERVER_CONFIG_ENV = 'WARD_SERVER_CONFIG';

/**
 * ServerConfig is the resolved configuration of `ward server`. Paths are absolute. `sources` says where
 * each value came from (`--data-dir`, `WARD_DATA_DIR`, `/etc/ward/server.toml`, `default`), for the
 * start-up log and for debugging "why is it listening there?".
 */
export interface ServerConfig {
  dataDir: string;
  /** databaseUrl is undefined for SQLite in dataDir. It holds a password: log redactUrl(databaseUrl). */
  databaseUrl: string | undefined;
  /** roles are in the canonical order control, agent, edge, without duplicates. */
  roles: ServerRole[];
  apiListen: Listen;
  httpListen: Listen;
  httpsListen: Listen;
  acmeDirectory: string;
  acmeEmail: string | undefined;
  acmeCaFile: string | undefined;
  /** domain, when set, routes every app with [http_service] at `<app>.<domain>` too (lower-case, no final dot). */
  domain: string | undefined;
  /**
   * edgeWorkers is how many processes serve the edge's traffic: 'auto' (one per core, at most 8), or a
   * number; 1 serves it in the server's own process.
   */
  edgeWorkers: number | 'auto';
  masterKeyFile: string;
  region: string;
  hostname: string;
  /**
   * wireguardEndpoint is how other hosts and people reach this host's WireGuard port (`host:port`,
   * `[v6]:port`); undefined: `<hostname>:51820`.
   */
  wireguardEndpoint: string | undefined;
  logLevel: LogLevel;
  /** configFile is the server config file that was read, if any. */
  configFile: string | undefined;
  sources: Record<ServerSetting, string>;
}

export interface ResolveServerConfigInput {
  flags: ServerFlags;
  env: Record<string, string | undefined>;
  /**
   * file is the server config file: a path to read (the value of --config), or a file already read.
   * Without it, flags.config or WARD_SERVER_CONFIG names one; with none of them there is no file.
   */
  file?: string | { path: string; text: string } | undefined;
  /** cwd resolves relative paths from flags and environment; file paths resolve from the file's folder. */
  cwd?: string;
}

/** Source says where a raw value came from; `label` is how messages name it. */
interface Source {
  label: string;
  origin: string;
  baseDir: string;
}

interface Found {
  value: unknown;
  source: Source;
}

/**
 * resolveServerConfig merges flags, environment, an optional TOML file and defaults, in that order of
 * precedence, and validates the result. Every problem is a UserError (`invalid_config`) whose message
 * names where the bad value came from, since a server configured from three places is otherwise hard
 * to debug. Empty environment variables count as unset (`WARD_REGION=` in an env file is common).
 */
export function resolveServerConfig(input: ResolveServerConfigInput): ServerConfig {
  const cwd = input.cwd ?? process.cwd();
  const file = typeof input.file === 'object' ? input.file : readServerConfigFile(input.file, input.flags, input.env, cwd);
  const fileValues = file ? parseServerConfigFile(file) : undefined;
  const sources = {} as Record<ServerSetting, string>;

  const find = (key: ServerSetting): Found | undefined => {
    const { flag, env } = SERVER_SETTINGS[key];
    const fromFlag = input.flags[flag];
    if (fromFlag !== undefined) {
      const source = { label: `--${flag}`, origin: `--${flag}`, baseDir: cwd };
      if (typeof fromFlag !== 'string' || fromFlag.trim() === '') fail(key, source, 'needs a value');
      return { value: fromFlag, source };
    }
    const fromEnv = input.env[env];
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: { label: env, origin: env, baseDir: cwd } };
    if (fileValues && fileValues.values[key] !== undefined) {
      const pos = positionOf(fileValues.positions, key);
      const where = pos ? `${file!.path}:${pos.line}:${pos.column}` : file!.path;
      return { value: fileValues.values[key], source: { label: `${where}: ${key}`, origin: file!.path, baseDir: dirname(resolve(cwd, file!.path)) } };
    }
    return undefined;
  };

  /** get resolves one setting through parseValue, or takes the default; it records the source. */
  const get = <T>(key: ServerSetting, parseValue: (v: unknown, s: Source) => T, fallback: () => T): T => {
    const found = find(key);
    sources[key] = found?.source.origin ?? 'default';
    return found ? parseValue(found.value, found.source) : fallback();
  };

  const path = (key: ServerSetting) => (v: unknown, s: Source) => resolve(s.baseDir, text(key, v, s));
  const listen = (key: ServerSetting) => (v: unknown, s: Source) => {
    const str = text(key, v, s);
    try {
      return parseListen(str);
    } catch (e) {
      return fail(key, s, (e as Error).message.replace(/^invalid listen address "[^"]*": /, ''), v);
    }
  };

  const dataDir = get('data_dir', path('data_dir'), () => '/var/lib/ward');
  const config: ServerConfig = {
    dataDir,
    databaseUrl: get('database_url', (v, s) => databaseUrl(v, s), () => undefined),
    roles: get('roles', (v, s) => roles(v, s), () => [...SERVER_ROLES]),
    apiListen: get('api_listen', listen('api_listen'), () => ({ host: '127.0.0.1', port: 4280 })),
    httpListen: get('http_listen', listen('http_listen'), () => ({ host: '::', port: 80 })),
    httpsListen: get('https_listen', listen('https_listen'), () => ({ host: '::', port: 443 })),
    acmeDirectory: get('acme_directory', (v, s) => acmeDirectory(v, s), () => LETS_ENCRYPT_DIRECTORY),
    acmeEmail: get('acme_email', (v, s) => acmeEmail(v, s), () => undefined),
    acmeCaFile: get('acme_ca_file', path('acme_ca_file'), () => undefined),
    domain: get('domain', (v, s) => domain(v, s), () => undefined),
    edgeWorkers: get('edge_workers', (v, s) => edgeWorkers(v, s), () => 'auto' as const),
    // The default follows data_dir wherever data_dir came from, so `--data-dir` alone moves both.
    masterKeyFile: get('master_key_file', path('master_key_file'), () => join(dataDir, 'master.key')),
    region: get('region', (v, s) => region(v, s), () => 'local'),
    hostname: get('hostname', (v, s) => hostName(v, s), () => hostName(osHostname(), { label: 'the host name (os.hostname())', origin: 'default', baseDir: cwd })),
    wireguardEndpoint: get('wireguard_endpoint', (v, s) => wireguardEndpoint(v, s), () => undefined),
    logLevel: get('log_level', (v, s) => logLevel(v, s), () => 'info'),
    configFile: file?.path,
    sources,
  };
  return config;
}

const HINTS: Record<ServerSetting, string> = {
  data_dir: 'Give a directory Ward may create and write, like /var/lib/ward.',
  database_url: 'Use postgres://USER:PASSWORD@HOST:5432/DATABASE, or leave it unset to keep state in SQLite in the data directory.',
  roles: 'Roles are control, agent and edge, comma-separated; leave it unset to run all three.',
  api_listen: 'Write HOST:PORT: 127.0.0.1:4280, [::1]:4280 for IPv6, or :4280 for all interfaces.',
  http_listen: 'Write HOST:PORT: 0.0.0.0:80, [::1]:80 for IPv6, or :80 for all interfaces.',
  https_listen: 'Write HOST:PORT: 0.0.0.0:443, [::1]:443 for IPv6, or :443 for all interfaces.',
  acme_directory: `Use the https:// URL of an ACME directory, like ${LETS_ENCRYPT_DIRECTORY}, or "${LOCAL_ACME_DIRECTORY}" for Ward's own local CA.`,
  acme_email: 'Use an address the certificate authority can write to about expiring certificates.',
  acme_ca_file: 'Give the path of a PEM file with the CA certificate of your ACME server.',
  domain: 'Give a DNS name whose subdomains point at this edge, like apps.example.com; each app is then served at <app>.apps.example.com.',
  edge_workers: 'Use "auto" (one process per core) or a number from 1 to 64; 1 serves the edge in the server process.',
  master_key_file: 'Give a file path; Ward creates the key there (mode 0600) on first start.',
  region: 'Region names are DNS labels: a–z, 0–9 and "-", like "fra" or "home-lab".',
  hostname: 'Pass --hostname NAME using letters, digits, ".", "-" and "_".',
  wireguard_endpoint: 'Write HOST or HOST:PORT that other hosts reach: 192.0.2.10, node1.example.com:51820, [2001:db8::10]:51820.',
  log_level: `Use one of ${LOG_LEVELS.join(', ')}.`,
};

/**
 * fail throws the UserError for a bad setting. The value is echoed only when `shown` is given, so a
 * database URL's password never reaches a terminal or a log.
 */
function fail(key: ServerSetting, source: Source, problem: string, shown?: unknown): never {
  const value = shown === undefined ? '' : ` ${describeValue(shown)}`;
  throw new UserError('invalid_config', `${source.label}${value}: ${problem}`, {
    hint: HINTS[key],
    details: { setting: key, source: source.origin },
  });
}

function text(key: ServerSetting, v: unknown, s: Source): string {
  if (typeof v !== 'string' || v.trim() === '') fail(key, s, `expected a non-empty string, got ${describeValue(v)}`);
  return v.trim();
}

function databaseUrl(v: unknown, s: Source): string {
  const str = text('database_url', v, s);
  let url: URL;
  try {
    url = new URL(str);
  } catch {
    return fail('database_url', s, 'is not a valid URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return fail('database_url', s, `expected a postgres:// or postgresql:// URL, got a ${url.protocol}// one`);
  }
  return str;
}

function roles(v: unknown, s: Source): ServerRole[] {
  // The file may use a TOML array; flags and environment use a comma-separated list.
  const items = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : undefined;
  if (!items || items.some((r) => typeof r !== 'string')) {
    return fail('roles', s, `expected a list of roles like "control,agent,edge", got ${describeValue(v)}`);
  }
  const names = (items as string[]).map((r) => r.trim()).filter((r) => r !== '');
  if (names.length === 0) return fail('roles', s, 'names no role; a server needs at least one', v);
  for (const name of names) {
    if (!(SERVER_ROLES as readonly string[]).includes(name)) {
      const near = closest(name, SERVER_ROLES);
      return fail('roles', s, `unknown role "${name}"${near ? ` (did you mean "${near}"?)` : ''}; roles are ${SERVER_ROLES.join(', ')}`, v);
    }
  }
  return SERVER_ROLES.filter((r) => names.includes(r));
}

function acmeDirectory(v: unknown, s: Source): string {
  const str = text('acme_directory', v, s);
  if (str === LOCAL_ACME_DIRECTORY) return str;
  let url: URL | undefined;
  try {
    url = new URL(str);
  } catch {
    url = undefined;
  }
  // Plain http is allowed for test CAs (Pebble and friends); ACME requests are signed either way.
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) return fail('acme_directory', s, `expected an https:// URL or "${LOCAL_ACME_DIRECTORY}"`, v);
  return str;
}

function acmeEmail(v: unknown, s: Source): string {
  const email = normalizeEmail(text('acme_email', v, s));
  return email ?? fail('acme_email', s, 'is not an email address', v);
}

/** edgeWorkers reads edge_workers: "auto", or a whole number from 1 to 64 (a TOML integer or its text). */
function edgeWorkers(v: unknown, s: Source): number | 'auto' {
  const str = typeof v === 'number' ? String(v) : text('edge_workers', v, s).trim().toLowerCase();
  if (str === 'auto') return 'auto';
  const n = Number(str);
  return /^\d+$/.test(str) && n >= 1 && n <= 64 ? n : fail('edge_workers', s, 'expected "auto" or a number of processes from 1 to 64', v);
}

/**
 * domain reads the server's domain: a DNS name (letters, digits and "-" in dot-separated labels), short
 * enough that `<app>.` (an app name is at most 63 characters) still fits in a 253-character name.
 */
function domain(v: unknown, s: Source): string {
  const str = text('domain', v, s).toLowerCase().replace(/\.$/, '');
  const label = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
  if (str.length > 253 - 64 || !str.split('.').every((l) => label.test(l)) || isIPv4(str)) {
    return fail('domain', s, 'expected a DNS name like apps.example.com (labels of a–z, 0–9 and "-", at most 189 characters)', v);
  }
  return str;
}

/**
 * wireguardEndpoint reads where other hosts and people reach this host's WireGuard port: a DNS name or
 * IPv4 address, or an IPv6 address in brackets, with an optional port (default 51820; another one when
 * a NAT forwards it).
 */
function wireguardEndpoint(v: unknown, s: Source): string {
  const str = text('wireguard_endpoint', v, s).trim();
  const m = /^(\[([0-9a-fA-F:.]+)\]|[A-Za-z0-9.-]{1,253})(?::(\d{1,5}))?$/.exec(str);
  const port = m?.[3] === undefined ? 51820 : Number(m[3]);
  if (!m || (m[2] !== undefined && !isIPv6(m[2])) || port < 1 || port > 65535) {
    return fail('wireguard_endpoint', s, 'expected HOST or HOST:PORT (an IPv6 address in brackets)', v);
  }
  return `${m[1]}:${port}`;
}

function region(v: unknown, s: Source): string {
  const str = text('region', v, s);
  const problem = regionProblem(str);
  return problem === undefined ? str : fail('region', s, problem, v);
}

/**
 * hostName accepts what real machines are named, underscores included, because the default comes from
 * os.hostname() and refusing a machine's own name would be unhelpful.
 */
function hostName(v: unknown, s: Source): string {
  const str = text('hostname', v, s);
  if (str.length > 253 || !/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/.test(str)) {
    return fail('hostname', s, 'expected a host name of letters, digits, ".", "-" and "_" (at most 253 characters)', v);
  }
  return str;
}

function logLevel(v: unknown, s: Source): LogLevel {
  const str = text('log_level', v, s).toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(str)) return str as LogLevel;
  return fail('log_level', s, `expected one of ${LOG_LEVELS.join(', ')}`, v);
}

/**
 * parseListen reads `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (all interfaces), or throws a RangeError that
 * names the accepted forms. HOST is an IPv4 address or a host name; IPv6 needs brackets, because
 * `::1:4280` could be read as an address with or without a port.
 */
export function parseListen(input: string): Listen {
  const s = input.trim();
  const fail = (why: string) => new RangeError(`invalid listen address ${JSON.stringify(input)}: ${why}`);
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end === -1) throw fail('missing "]" after the IPv6 address');
    host = s.slice(1, end);
    if (!isIPv6(host)) throw fail(`"${host}" is not an IPv6 address`);
    if (s[end + 1] !== ':') throw fail('expected ":PORT" after "]", like [::1]:4280');
    portText = s.slice(end + 2);
  } else {
    const i = s.lastIndexOf(':');
    if (i === -1) throw fail('expected HOST:PORT, like 127.0.0.1:4280, [::1]:4280 or :4280');
    host = s.slice(0, i);
    portText = s.slice(i + 1);
    if (host.includes(':')) throw fail(`put IPv6 addresses in brackets, like [${host}]:${portText}`);
    if (host === '') host = '::';
    else if (!isIPv4(host) && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) throw fail(`"${host}" is not an IP address or host name`);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw fail(`"${portText}" is not a port number 0–65535`);
  return { host, port: Number(portText) };
}

/** formatListen renders a Listen the way parseListen reads it. */
export function formatListen(l: Listen): string {
  return `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
}

/** redactUrl hides a URL's password, for logs and messages: `postgres://ward:***@db:5432/ward`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === '') return url;
    u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

function readServerConfigFile(
  given: string | undefined,
  flags: ServerFlags,
  env: Record<string, string | undefined>,
  cwd: string,
): { path: string; text: string } | undefined {
  const fromFlag = given ?? flags.config;
  const fromEnv = env[SERVER_CONFIG_ENV];
  const path = fromFlag ?? (fromEnv === '' ? undefined : fromEnv);
  if (path === undefined) return undefined;
  const named = fromFlag !== undefined ? '--config' : SERVER_CONFIG_ENV;
  if (path.trim() === '') {
    throw new UserError('invalid_config', `${named} needs a value`, { hint: 'Give the path of a server config file, or leave it unset.' });
  }
  try {
    return { path, text: readFileSync(resolve(cwd, path), 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory' : `cannot be read (${code ?? (e as Error).message})`;
    throw new UserError('invalid_config', `server config file ${path} (from ${named}) ${why}`, {
      hint: `Fix the path given by ${named}, or leave it unset to use flags and environment only.`,
      cause: e,
    });
  }
}

function parseServerConfigFile(file: { path: string; text: string }): {
  values: Partial<Record<ServerSetting, unknown>>;
  positions: ReturnType<typeof locateKeys>;
} {
  let doc: Record<string, unknown>;
  try {
    doc = parse(file.text.replace(/^\uFEFF/, ''), { unsafeKeyBehaviour: 'throw' });
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const reason = e.message.replace(/^Invalid TOML document: /, '').split('\n')[0];
    throw new UserError('invalid_config', `${file.path}:${e.line}:${e.column}: invalid TOML: ${reason}`, {
      hint: 'Server config files are TOML: one key = "value" per line, like data_dir = "/var/lib/ward".',
    });
  }
  const positions = locateKeys(file.text.replace(/^\uFEFF/, ''));
  const known = Object.keys(SERVER_SETTINGS);
  for (const [key, value] of Object.entries(doc)) {
    const pos = positionOf(positions, key);
    const where = pos ? `${file.path}:${pos.line}:${pos.column}` : file.path;
    // Unknown keys are errors here, unlike in ward.toml: a misspelt listen address or key file in a
    // server's own config would otherwise be silently replaced by a default.
    if (!known.includes(key)) {
      const near = closest(key, known);
      throw new UserError('invalid_config', `${where}: unknown key "${key}"${near ? `; did you mean "${near}"?` : ''}`, {
        hint: `Server config keys are the flag names in snake_case: ${known.join(', ')}.`,
      });
    }
    if (isTable(value) || value instanceof Date) {
      throw new UserError('invalid_config', `${where}: ${key}: expected a string, got ${describeValue(value)}`, { hint: HINTS[key as ServerSetting] });
    }
  }
  return { values: doc as Partial<Record<ServerSetting, unknown>>, positions };
}
