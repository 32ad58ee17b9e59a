import * as z from 'zod';
import { nameProblem } from '../core/names.ts';
import { parseDuration, parseSize } from '../core/units.ts';
import { describeValue } from './paths.ts';
import { ENV_NAME_RE, HTTP_TOKEN_RE, headerValueProblem, hostnameProblem, regionProblem } from './rules.ts';

/**
 * The raw schema of ward.toml: what a user may write, every key optional, no defaults. It checks types and
 * formats only; keys that must be present when their table is, and rules that span keys, are checked in
 * app-config.ts, and defaults are filled there too, in `normalizeAppConfig`. Leaves are zod `custom`
 * schemas with one message each in the form `expected <what>, got <value>`, because zod's generic
 * messages ("Invalid input") do not tell a user what to write.
 */

export const KILL_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGKILL'] as const;
export const DEPLOY_STRATEGIES = ['rolling', 'canary', 'bluegreen', 'immediate'] as const;
export const RESTART_POLICIES = ['always', 'on-failure', 'never'] as const;
export const SERVICE_PROTOCOLS = ['tcp', 'udp'] as const;
export const PORT_HANDLERS = ['tls', 'http', 'proxy_proto'] as const;
export const CONCURRENCY_TYPES = ['connections', 'requests'] as const;
export const CHECK_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** leaf makes a schema from one function that says what is wrong with a value, or undefined if nothing. */
function leaf<T>(problem: (v: unknown) => string | undefined) {
  return z.custom<T>((v) => problem(v) === undefined, { error: (iss) => problem(iss.input) ?? 'invalid value' });
}

const got = (expected: string, v: unknown) => `expected ${expected}, got ${describeValue(v)}`;

function text(expected = 'a non-empty string') {
  return leaf<string>((v) => (typeof v === 'string' && v.trim() !== '' ? undefined : got(expected, v)));
}

function bool() {
  return leaf<boolean>((v) => (typeof v === 'boolean' ? undefined : got('true or false', v)));
}

function port() {
  return leaf<number>((v) => (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535 ? undefined : got('a port number 1–65535', v)));
}

function int(min: number, expected = `a whole number ≥ ${min}`) {
  return leaf<number>((v) => (Number.isSafeInteger(v) && (v as number) >= min ? undefined : got(expected, v)));
}

function positiveNumber(expected: string) {
  return leaf<number>((v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? undefined : got(expected, v)));
}

/**
 * oneOf accepts one of a fixed list. With foldCase, `"get"` is accepted for `"GET"` (Fly's own examples
 * write methods lower-case); normalizeAppConfig upper-cases it.
 */
function oneOf<const T extends string>(values: readonly T[], foldCase = false) {
  const list = values.map((v) => JSON.stringify(v)).join(', ');
  return leaf<T>((v) => {
    const ok = typeof v === 'string' && (values as readonly string[]).includes(foldCase ? v.toUpperCase() : v);
    return ok ? undefined : got(`one of ${list}`, v);
  });
}

/**
 * duration accepts the CLI's duration strings. A bare number is refused with the fix spelled out: Fly
 * accepts `kill_timeout = 5` as seconds, but guessing a unit is how outages start.
 */
function duration() {
  const expected = 'a duration like "30s", "5m" or "1h"';
  return leaf<string>((v) => {
    if (typeof v === 'number') return `${got(expected, v)}; a bare number has no unit, write "${v}s" for seconds`;
    if (typeof v !== 'string') return got(expected, v);
    try {
      return parseDuration(v) > 0 ? undefined : `${got(expected, v)}; it must be longer than 0`;
    } catch {
      return got(expected, v);
    }
  });
}

function size() {
  const expected = 'a size like "256MB" or "1GB"';
  return leaf<string>((v) => {
    if (typeof v === 'number') return `${got(expected, v)}; a bare number has no unit, write "${v}MB" for megabytes`;
    if (typeof v !== 'string') return got(expected, v);
    try {
      return parseSize(v) > 0 ? undefined : `${got(expected, v)}; it must be more than 0`;
    } catch {
      return got(expected, v);
    }
  });
}

function named(what: string, problemOf: (s: string) => string | undefined) {
  return leaf<string>((v) => {
    if (typeof v !== 'string') return got(what, v);
    const p = problemOf(v);
    return p === undefined ? undefined : `invalid ${what} ${JSON.stringify(v)}: ${p}`;
  });
}

/** urlPath accepts an absolute URL path; a relative one would be resolved against nothing. */
function urlPath() {
  return leaf<string>((v) => {
    if (typeof v !== 'string') return got('a URL path like "/healthz"', v);
    if (!v.startsWith('/')) return `expected a URL path starting with "/", got ${describeValue(v)}`;
    return /[\s\0]/.test(v) ? `expected a URL path without spaces, got ${describeValue(v)}` : undefined;
  });
}

/**
 * mountPath accepts an absolute path inside the instance. `/` would hide the image, `..` could point
 * anywhere, and /proc, /sys and /dev belong to the kernel, so those are refused.
 */
function mountPath() {
  return leaf<string>((v) => {
    if (typeof v !== 'string' || !v.startsWith('/')) return got('an absolute path like "/data"', v);
    const parts = v.split('/').filter((p) => p !== '');
    if (parts.length === 0) return 'a volume cannot be mounted at "/"; pick a directory like "/data"';
    if (parts.some((p) => p === '..' || p === '.')) return `expected a path without "." or ".." parts, got ${describeValue(v)}`;
    if (['proc', 'sys', 'dev'].includes(parts[0]!)) return `/${parts[0]} belongs to the kernel; mount volumes elsewhere`;
    return /[\0\n]/.test(v) ? got('a path without control characters', v) : undefined;
  });
}

/** imageRef checks only the shape; src/exec's image code reads the transports and registries. */
function imageRef() {
  return leaf<string>((v) =>
    typeof v === 'string' && v !== '' && !/\s/.test(v) ? undefined : got('an image reference like "registry.example.com/team/app:1.2"', v),
  );
}

function envName() {
  return leaf<string>((v) =>
    typeof v === 'string' && ENV_NAME_RE.test(v) ? undefined : got('an environment variable name (letters, digits and "_", not starting with a digit)', v),
  );
}

/** envValue wants strings; a number or boolean is refused with the quoted spelling to copy. */
function envValue() {
  return leaf<string>((v) => {
    if (typeof v === 'string') return v.includes('\0') ? 'environment values may not contain NUL' : undefined;
    if (typeof v === 'number' || typeof v === 'boolean') return `${got('a string', v)}; quote it: "${String(v)}"`;
    return got('a string', v);
  });
}

function headerName() {
  return leaf<string>((v) => (typeof v === 'string' && HTTP_TOKEN_RE.test(v) ? undefined : got('an HTTP header name', v)));
}

function headerValue() {
  return leaf<string>((v) => (typeof v === 'string' ? headerValueProblem(v) : got('a string', v)));
}

/** maxUnavailable is a count of instances (1, 2, …) or a share of them (0.25). */
function maxUnavailable() {
  return leaf<number>((v) => {
    const ok = typeof v === 'number' && ((Number.isSafeInteger(v) && v >= 1) || (v > 0 && v < 1));
    return ok ? undefined : got('a whole number ≥ 1, or a fraction between 0 and 1 like 0.25', v);
  });
}

function table<S extends z.ZodRawShape>(shape: S, what = 'a table') {
  return z.object(shape, { error: (iss) => (iss.code === 'invalid_type' ? got(what, iss.input) : undefined) });
}

function list<T extends z.ZodType>(element: T, what = 'an array') {
  return z.array(element, { error: (iss) => (iss.code === 'invalid_type' ? got(what, iss.input) : undefined) });
}

function record<K extends z.ZodType<string>, V extends z.ZodType>(key: K, value: V) {
  return z.record(key, value, { error: (iss) => (iss.code === 'invalid_type' ? got('a table', iss.input) : undefined) });
}

const concurrency = table({
  type: oneOf(CONCURRENCY_TYPES).optional(),
  soft_limit: int(1).optional(),
  hard_limit: int(1).optional(),
});

const httpCheck = table({
  path: urlPath().optional(),
  method: oneOf(CHECK_METHODS, true).optional(),
  headers: record(headerName(), headerValue()).optional(),
  interval: duration().optional(),
  timeout: duration().optional(),
  grace_period: duration().optional(),
});

const tcpCheck = table({
  interval: duration().optional(),
  timeout: duration().optional(),
  grace_period: duration().optional(),
});

const resources = table({
  memory: size().optional(),
  cpus: positiveNumber('a number of CPUs more than 0, like 1 or 0.5').optional(),
});

/** appConfigSchema is the raw ward.toml schema. Its shape is also the list of known keys. */
export const appConfigSchema = z.object({
  app: named('app name', nameProblem).optional(),
  primary_region: named('region name', regionProblem).optional(),
  kill_signal: oneOf(KILL_SIGNALS).optional(),
  kill_timeout: duration().optional(),
  build: table({ image: imageRef().optional() }).optional(),
  env: record(envName(), envValue()).optional(),
  secrets: table({ files: list(envName(), 'an array of secret names').optional() }, 'a table ([secrets])').optional(),
  http_service: table({
    internal_port: port().optional(),
    force_https: bool().optional(),
    hostnames: list(named('hostname', hostnameProblem), 'an array of hostnames').optional(),
    min_instances: int(0).optional(),
    checks: list(httpCheck, 'an array of tables ([[http_service.checks]])').optional(),
    concurrency: concurrency.optional(),
    hsts: table({
      enabled: bool().optional(),
      max_age: duration().optional(),
      include_subdomains: bool().optional(),
      preload: bool().optional(),
    }).optional(),
  }).optional(),
  services: list(
    table({
      internal_port: port().optional(),
      protocol: oneOf(SERVICE_PROTOCOLS).optional(),
      ports: list(
        table({
          port: port().optional(),
          handlers: list(oneOf(PORT_HANDLERS), 'an array of handlers').optional(),
          force_https: bool().optional(),
        }),
        'an array of tables ([[services.ports]])',
      ).optional(),
      checks: list(tcpCheck, 'an array of tables ([[services.checks]])').optional(),
      concurrency: concurrency.optional(),
    }),
    'an array of tables ([[services]])',
  ).optional(),
  deploy: table({
    strategy: oneOf(DEPLOY_STRATEGIES).optional(),
    max_unavailable: maxUnavailable().optional(),
    wait_timeout: duration().optional(),
    release_command: text('a command').optional(),
  }).optional(),
  mounts: list(
    table({
      source: named('volume name', nameProblem).optional(),
      destination: mountPath().optional(),
      backup_command: text('a command').optional(),
    }),
    'an array of tables ([[mounts]])',
  ).optional(),
  vm: list(resources, 'an array of tables ([[vm]])').optional(),
  resources: resources.optional(),
  restart: table({
    policy: oneOf(RESTART_POLICIES).optional(),
    max_retries: int(0).optional(),
  }, 'a table ([restart])').optional(),
  metrics: table({
    port: port().optional(),
    path: urlPath().optional(),
  }).optional(),
});

/** RawAppConfig is ward.toml as written, after type checks and before defaults. */
export type RawAppConfig = z.output<typeof appConfigSchema>;

/**
 * ONE_OR_MANY lists arrays of tables that may also be written as a single table, as Fly allows:
 * `[mounts]` means the same as one `[[mounts]]`.
 */
export const ONE_OR_MANY = ['mounts', 'vm'] as const;

/**
 * ALIASES maps a spelling of a table to the one it stands for. `[[vm]]` is Fly's newer spelling of
 * `[resources]`; a file uses one or the other, and the reference documents the keys once.
 */
export const ALIASES: Record<string, string> = { vm: 'resources' };

/**
 * FLY_NOTES explains keys that fly.toml has and ward.toml deliberately does not, so a Fly user gets a
 * reason and the Ward spelling instead of a bare "unknown key". `[]` stands for any index.
 */
export const FLY_NOTES: Record<string, string> = {
  'build.dockerfile': 'Ward does not build images; build and push one, then set build.image or pass --image',
  'build.builder': 'Ward does not build images; build and push one, then set build.image or pass --image',
  'build.buildpacks': 'Ward does not build images; build and push one, then set build.image or pass --image',
  'build.args': 'Ward does not build images; build and push one, then set build.image or pass --image',
  'http_service.min_machines_running': 'Ward calls this http_service.min_instances',
  'http_service.auto_stop_machines': 'Ward keeps instances running; it does not stop idle ones',
  'http_service.auto_start_machines': 'Ward keeps instances running; it does not stop idle ones',
  'http_service.processes': 'Ward has no process groups; one ward.toml is one process',
  'services[].processes': 'Ward has no process groups; one ward.toml is one process',
  'services[].auto_stop_machines': 'Ward keeps instances running; it does not stop idle ones',
  'services[].auto_start_machines': 'Ward keeps instances running; it does not stop idle ones',
  'services[].min_machines_running': 'Ward keeps instances running; set the count with `ward scale count`',
  'services[].tcp_checks': 'Ward calls these [[services.checks]]',
  'services[].http_checks': 'HTTP checks go in [[http_service.checks]]',
  'services[].ports[].start_port': 'Ward maps single ports; list each port in its own [[services.ports]]',
  'services[].ports[].end_port': 'Ward maps single ports; list each port in its own [[services.ports]]',
  'vm[].memory_mb': 'write memory = "512MB"',
  'vm[].size': 'Ward has no preset sizes; set memory and cpus',
  'vm[].cpu_kind': 'Ward has no CPU kinds; set cpus',
  'vm[].processes': 'Ward has no process groups; one ward.toml is one process',
  'resources.memory_mb': 'write memory = "512MB"',
  'mounts[].initial_size': 'create the volume with `ward volumes create NAME --size 1GB`',
  'mounts[].processes': 'Ward has no process groups; one ward.toml is one process',
  'restart.retries': 'Ward calls this restart.max_retries',
  'deploy.release_command_timeout': 'release commands share deploy.wait_timeout',
  processes: 'Ward has no process groups; one ward.toml is one process',
  checks: 'checks go in [[http_service.checks]] or [[services.checks]]',
  statics: 'Ward does not serve static files from the edge; serve them from the app',
  swap_size_mb: 'Ward instances have no swap',
  console_command: '`ward ssh console -C COMMAND` takes the command',
  experimental: 'Ward has no experimental section',
  files: 'Ward writes secrets as files only under /run/secrets (a tmpfs): list their names in [secrets] files',
};

/** unwrapOptional returns the schema inside any number of `.optional()` wrappers. */
export function unwrapOptional(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  return s;
}

/**
 * appConfigKeyPaths lists every key path the schema knows, derived from the schema so that a key added
 * here and not documented in docs/ward.reference.toml fails the reference test. Array elements are `[]`
 * and record entries `*`, e.g. `http_service.checks[].interval`, `env.*`. Aliased tables are left out:
 * their keys are their target's.
 */
export function appConfigKeyPaths(): string[] {
  const out: string[] = [];
  const walk = (schema: z.ZodType, path: string): void => {
    const s = unwrapOptional(schema);
    if (s instanceof z.ZodObject) {
      for (const [key, child] of Object.entries(s.shape as Record<string, z.ZodType>)) {
        if (path === '' && key in ALIASES) continue;
        const p = path === '' ? key : `${path}.${key}`;
        out.push(p);
        walk(child, p);
      }
    } else if (s instanceof z.ZodArray) {
      walk(s.element as z.ZodType, `${path}[]`);
    } else if (s instanceof z.ZodRecord) {
      out.push(`${path}.*`);
      walk(s.valueType as z.ZodType, `${path}.*`);
    }
  };
  walk(appConfigSchema, '');
  return out;
}
