import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { UserError } from '../core/errors.ts';
import { assertValidAppConfig, formatDiagnostics, loadAppConfig, parseAppConfig, type AppConfig, type Diagnostic } from './index.ts';

/** The defaults an empty ward.toml normalizes to; a change here is a change to the user contract. */
const EMPTY: AppConfig = {
  app: undefined,
  primaryRegion: undefined,
  killSignal: 'SIGTERM',
  killTimeoutMs: 5000,
  build: { image: undefined },
  env: {},
  secrets: { files: [] },
  httpService: undefined,
  services: [],
  deploy: { strategy: 'rolling', maxUnavailable: 1, waitTimeoutMs: 300_000, releaseCommand: undefined },
  mounts: [],
  resources: { memoryBytes: 256 * 1024 * 1024, cpus: 1 },
  restart: { policy: 'on-failure', maxRetries: 10 },
  metrics: undefined,
};

const CLI_EXAMPLE = `app = "patient-portal"
primary_region = "local"

[build]
image = "registry.example.com/portal:1.4.2"

[env]
LOG_LEVEL = "info"

[http_service]
internal_port = 8080
force_https = true
hostnames = ["portal.example.com"]
min_instances = 2
  [[http_service.checks]]
  path = "/healthz"
  interval = "5s"
  timeout = "2s"
  grace_period = "10s"

[[services]]
internal_port = 5432
protocol = "tcp"
  [[services.ports]]
  port = 5432
  handlers = ["tls"]

[deploy]
strategy = "rolling"
max_unavailable = 1

[[mounts]]
source = "data"
destination = "/data"

[resources]
memory = "256MB"
cpus = 1

[restart]
policy = "on-failure"
max_retries = 10

[metrics]
port = 9091
path = "/metrics"
`;

describe('parseAppConfig: valid files normalize with defaults', () => {
  test('an empty file is all defaults', () => {
    const r = parseAppConfig('');
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual(r.config, EMPTY);
  });

  test('a minimal http app fills the http_service defaults', () => {
    const r = parseAppConfig('app = "hello"\n[http_service]\ninternal_port = 3000\n');
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual(r.config, {
      ...EMPTY,
      app: 'hello',
      httpService: {
        internalPort: 3000,
        forceHttps: true,
        hostnames: [],
        minInstances: 1,
        checks: [],
        concurrency: { type: 'requests', softLimit: undefined, hardLimit: undefined },
        hsts: { enabled: true, maxAgeMs: 365 * 86_400_000, includeSubdomains: false, preload: false },
      },
    });
  });

  test("the example in CLI.md is valid and reads as documented", () => {
    const r = parseAppConfig(CLI_EXAMPLE, 'ward.toml');
    assert.deepEqual(r.diagnostics, []);
    const c = r.config!;
    assert.equal(c.app, 'patient-portal');
    assert.equal(c.build.image, 'registry.example.com/portal:1.4.2');
    assert.deepEqual(c.httpService?.checks, [
      { path: '/healthz', method: 'GET', headers: {}, intervalMs: 5000, timeoutMs: 2000, gracePeriodMs: 10_000 },
    ]);
    assert.deepEqual(c.services, [
      {
        internalPort: 5432,
        protocol: 'tcp',
        ports: [{ port: 5432, handlers: ['tls'], forceHttps: false }],
        checks: [],
        concurrency: { type: 'connections', softLimit: undefined, hardLimit: undefined },
      },
    ]);
    assert.deepEqual(c.mounts, [{ source: 'data', destination: '/data', backupCommand: undefined }]);
    assert.deepEqual(c.resources, { memoryBytes: 268_435_456, cpus: 1 });
    assert.deepEqual(c.metrics, { port: 9091, path: '/metrics' });
  });

  const cases: { name: string; toml: string; check: (c: AppConfig) => void }[] = [
    {
      name: '[[vm]] stands in for [resources]',
      toml: '[[vm]]\nmemory = "1GB"\ncpus = 0.5\n',
      check: (c) => assert.deepEqual(c.resources, { memoryBytes: 1024 ** 3, cpus: 0.5 }),
    },
    {
      name: 'a single [mounts] table is one mount',
      toml: '[mounts]\nsource = "data"\ndestination = "/data/"\n',
      check: (c) => assert.deepEqual(c.mounts, [{ source: 'data', destination: '/data', backupCommand: undefined }]),
    },
    {
      name: 'HSTS follows force_https when not set',
      toml: '[http_service]\ninternal_port = 80\nforce_https = false\n',
      check: (c) => assert.equal(c.httpService?.hsts.enabled, false),
    },
    {
      name: 'check methods are upper-cased and hostnames lower-cased',
      toml: '[http_service]\ninternal_port = 80\nhostnames = ["App.Example.COM."]\n[[http_service.checks]]\nmethod = "get"\n',
      check: (c) => {
        assert.equal(c.httpService?.checks[0]?.method, 'GET');
        assert.equal(c.httpService?.checks[0]?.path, '/');
        assert.deepEqual(c.httpService?.hostnames, ['app.example.com']);
      },
    },
    {
      name: 'a fraction of instances for max_unavailable',
      toml: '[deploy]\nmax_unavailable = 0.25\nstrategy = "canary"\n',
      check: (c) => assert.deepEqual([c.deploy.maxUnavailable, c.deploy.strategy], [0.25, 'canary']),
    },
    {
      name: 'the same port number over TCP and UDP',
      toml: '[[services]]\ninternal_port = 53\n[[services.ports]]\nport = 53\n[[services]]\ninternal_port = 53\nprotocol = "udp"\n[[services.ports]]\nport = 53\n',
      check: (c) => assert.deepEqual(c.services.map((s) => s.protocol), ['tcp', 'udp']),
    },
    {
      name: 'a byte-order mark is ignored',
      toml: '\uFEFFapp = "bom"\n',
      check: (c) => assert.equal(c.app, 'bom'),
    },
  ];
  for (const { name, toml, check } of cases) {
    test(name, () => {
      const r = parseAppConfig(toml);
      assert.deepEqual(r.diagnostics, []);
      check(r.config!);
    });
  }
});

/** Expected is a diagnostic to find: severity and path exactly, the message by pattern, the line if given. */
interface Expected {
  severity: 'error' | 'warning';
  path: string;
  message: RegExp;
  line?: number;
}

const err = (path: string, message: RegExp, line?: number): Expected => ({ severity: 'error', path, message, ...(line ? { line } : {}) });
const warn = (path: string, message: RegExp, line?: number): Expected => ({ severity: 'warning', path, message, ...(line ? { line } : {}) });

const BAD: { name: string; toml: string; want: Expected[] }[] = [
  // Wrong types.
  { name: 'app is a number', toml: 'app = 5', want: [err('app', /expected app name, got 5/, 1)] },
  { name: 'force_https is a string', toml: '[http_service]\ninternal_port = 80\nforce_https = "yes"', want: [err('http_service.force_https', /expected true or false, got "yes"/, 3)] },
  { name: 'a table is a number', toml: 'http_service = 5', want: [err('http_service', /expected a table, got 5/, 1)] },
  { name: '[[http_service]] is an array', toml: '[[http_service]]\ninternal_port = 80', want: [err('http_service', /expected a table, got an array of tables/, 1)] },
  { name: '[services] is a table', toml: '[services]\ninternal_port = 80', want: [err('services', /expected an array of tables \(\[\[services\]\]\), got a table/, 1)] },
  { name: 'a date where a table goes', toml: 'http_service = 2024-01-01', want: [err('http_service', /expected a table, got a date/, 1)] },
  { name: 'a date where a string goes', toml: 'app = 2024-01-01', want: [err('app', /got a date/, 1)] },
  { name: 'min_instances is negative', toml: '[http_service]\ninternal_port = 80\nmin_instances = -1', want: [err('http_service.min_instances', /expected a whole number ≥ 0, got -1/)] },
  { name: 'unknown strategy', toml: '[deploy]\nstrategy = "fast"', want: [err('deploy.strategy', /expected one of "rolling", "canary", "bluegreen", "immediate", got "fast"/)] },
  { name: 'unknown handler', toml: '[[services]]\ninternal_port = 1\n[[services.ports]]\nport = 9\nhandlers = ["tls", "http2"]', want: [err('services[0].ports[0].handlers[1]', /got "http2"/, 5)] },
  { name: 'env value is a number', toml: '[env]\nPORT = 8080', want: [err('env.PORT', /expected a string, got 8080; quote it: "8080"/, 2)] },
  { name: 'env name is not a variable name', toml: '[env]\n"MY VAR" = "x"\n1ST = "y"', want: [err('env."MY VAR"', /environment variable name/, 2), err('env.1ST', /environment variable name/, 3)] },
  { name: 'header value with a line break', toml: '[http_service]\ninternal_port = 80\n[[http_service.checks]]\nheaders = { X-A = "a\\r\\nHost: evil" }', want: [err('http_service.checks[0].headers.X-A', /line breaks/, 4)] },
  // Durations and sizes.
  { name: 'a bare number for a duration', toml: 'kill_timeout = 5', want: [err('kill_timeout', /expected a duration like "30s", "5m" or "1h", got 5; .*write "5s"/, 1)] },
  { name: 'a duration in words', toml: '[http_service]\ninternal_port = 80\n[[http_service.checks]]\ninterval = "5 seconds"', want: [err('http_service.checks[0].interval', /expected a duration like "30s".*got "5 seconds"/, 4)] },
  { name: 'a zero duration', toml: '[deploy]\nwait_timeout = "0s"', want: [err('deploy.wait_timeout', /longer than 0/)] },
  { name: 'a size without a unit', toml: '[resources]\nmemory = "256"', want: [err('resources.memory', /expected a size like "256MB" or "1GB", got "256"/, 2)] },
  { name: 'a size as a bare number', toml: '[resources]\nmemory = 256', want: [err('resources.memory', /write "256MB"/)] },
  { name: 'no CPUs', toml: '[resources]\ncpus = 0', want: [err('resources.cpus', /more than 0/)] },
  // Names.
  { name: 'an app name with upper case and _', toml: 'app = "Patient_Portal"', want: [err('app', /invalid app name "Patient_Portal": it has upper-case letters/, 1)] },
  { name: 'a reserved app name', toml: 'app = "api"', want: [err('app', /"api" is reserved/)] },
  { name: 'a bad region', toml: 'primary_region = "EU West"', want: [err('primary_region', /invalid region name/)] },
  { name: 'a wildcard hostname', toml: '[http_service]\ninternal_port = 80\nhostnames = ["ok.example.com", "*.example.com"]', want: [err('http_service.hostnames[1]', /wildcard/, 3)] },
  { name: 'an IP for a hostname', toml: '[http_service]\ninternal_port = 80\nhostnames = ["10.0.0.1"]', want: [err('http_service.hostnames[0]', /IP address/)] },
  { name: 'a single-label hostname', toml: '[http_service]\ninternal_port = 80\nhostnames = ["portal"]', want: [err('http_service.hostnames[0]', /fully qualified/)] },
  { name: 'an internationalized hostname', toml: '[http_service]\ninternal_port = 80\nhostnames = ["bücher.example"]', want: [err('http_service.hostnames[0]', /xn--bcher-kva\.example/)] },
  // Ports.
  { name: 'port is a string', toml: '[http_service]\ninternal_port = "abc"', want: [err('http_service.internal_port', /^expected a port number 1–65535, got "abc"$/, 2)] },
  { name: 'port 0', toml: '[http_service]\ninternal_port = 0', want: [err('http_service.internal_port', /got 0/)] },
  { name: 'port 70000', toml: '[metrics]\nport = 70000', want: [err('metrics.port', /got 70000/)] },
  { name: 'a fractional port', toml: '[[services]]\ninternal_port = 80.5', want: [err('services[0].internal_port', /got 80.5/)] },
  // Required keys, reported at their table.
  { name: 'http_service without internal_port', toml: 'app = "x1"\n\n[http_service]\nforce_https = true', want: [err('http_service.internal_port', /is required/, 3)] },
  { name: 'a mount without source and destination', toml: '[[mounts]]\nbackup_command = "true"', want: [err('mounts[0].source', /is required/, 1), err('mounts[0].destination', /is required/, 1)] },
  { name: 'a service port without port', toml: '[[services]]\ninternal_port = 1\n[[services.ports]]\nhandlers = []', want: [err('services[0].ports[0].port', /is required/, 3)] },
  // Rules across keys.
  {
    name: 'two services on the same public port',
    toml: '[[services]]\ninternal_port = 5432\n[[services.ports]]\nport = 5432\n[[services]]\ninternal_port = 5433\n[[services.ports]]\nport = 5432',
    want: [err('services[1].ports[0].port', /public port tcp\/5432 is already used by services\[0\]\.ports\[0\]/, 8)],
  },
  {
    name: 'a service on a port [http_service] owns',
    toml: '[http_service]\ninternal_port = 8080\n[[services]]\ninternal_port = 8443\n[[services.ports]]\nport = 443',
    want: [err('services[0].ports[0].port', /tcp\/443 is already used by \[http_service\]/, 6)],
  },
  { name: 'both [[vm]] and [resources]', toml: '[resources]\ncpus = 1\n[[vm]]\ncpus = 2', want: [err('vm', /\[\[vm\]\] and \[resources\] both/, 3)] },
  { name: 'both, even when one is invalid', toml: '[resources]\nmemory = "lots"\n[[vm]]\ncpus = 2', want: [err('resources.memory', /size/), err('vm', /both/)] },
  { name: 'two [[vm]] entries', toml: '[[vm]]\ncpus = 1\n[[vm]]\ncpus = 2', want: [err('vm[1]', /at most one/, 3)] },
  { name: 'a check path without /', toml: '[http_service]\ninternal_port = 80\n[[http_service.checks]]\npath = "healthz"', want: [err('http_service.checks[0].path', /starting with "\/", got "healthz"/, 4)] },
  { name: 'a metrics path without /', toml: '[metrics]\nport = 9091\npath = "metrics"', want: [err('metrics.path', /starting with "\/"/)] },
  { name: 'soft limit above hard limit', toml: '[http_service]\ninternal_port = 80\n[http_service.concurrency]\nsoft_limit = 20\nhard_limit = 10', want: [err('http_service.concurrency.soft_limit', /more than hard_limit/)] },
  { name: 'bluegreen with volumes', toml: '[deploy]\nstrategy = "bluegreen"\n[[mounts]]\nsource = "data"\ndestination = "/data"', want: [err('deploy.strategy', /volumes/, 2)] },
  { name: 'handlers on UDP', toml: '[[services]]\ninternal_port = 53\nprotocol = "udp"\n[[services.ports]]\nport = 53\nhandlers = ["tls"]', want: [err('services[0].ports[0].handlers', /TCP only/, 6)] },
  { name: 'checks on UDP', toml: '[[services]]\ninternal_port = 53\nprotocol = "udp"\n[[services.ports]]\nport = 53\n[[services.checks]]', want: [err('services[0].checks', /UDP/)] },
  { name: 'a mount at /', toml: '[[mounts]]\nsource = "data"\ndestination = "/"', want: [err('mounts[0].destination', /cannot be mounted at "\/"/, 3)] },
  { name: 'a relative mount path', toml: '[[mounts]]\nsource = "data"\ndestination = "data"', want: [err('mounts[0].destination', /absolute path/)] },
  { name: 'a mount path with ..', toml: '[[mounts]]\nsource = "data"\ndestination = "/data/../etc"', want: [err('mounts[0].destination', /"\.\."/)] },
  { name: 'a mount over /proc', toml: '[[mounts]]\nsource = "data"\ndestination = "/proc/x"', want: [err('mounts[0].destination', /kernel/)] },
  {
    name: 'two mounts on one path, one volume twice',
    toml: '[[mounts]]\nsource = "a1"\ndestination = "/d"\n[[mounts]]\nsource = "a1"\ndestination = "/d/"',
    want: [err('mounts[1].source', /already mounted by mounts\[0\]/, 5), err('mounts[1].destination', /already the destination of mounts\[0\]/, 6)],
  },
  { name: 'max_unavailable 1.5', toml: '[deploy]\nmax_unavailable = 1.5', want: [err('deploy.max_unavailable', /fraction between 0 and 1/)] },
  { name: 'max_unavailable 0', toml: '[deploy]\nmax_unavailable = 0', want: [err('deploy.max_unavailable', /got 0/)] },
  // Warnings.
  { name: 'a typo in a key', toml: '[http_service]\ninternal_port = 80\ninternal_prot = 81', want: [warn('http_service.internal_prot', /unknown key \(ignored\); did you mean "internal_port"\?/, 3)] },
  { name: 'a dashed spelling', toml: '[http_service]\ninternal-port = 80', want: [warn('http_service.internal-port', /did you mean "internal_port"/, 2), err('http_service.internal_port', /is required/, 1)] },
  { name: 'a key in the wrong table', toml: 'force_https = true', want: [warn('force_https', /did you mean http_service\.force_https\?/, 1)] },
  { name: 'a fly.toml key', toml: '[http_service]\ninternal_port = 80\nmin_machines_running = 0\nauto_stop_machines = true', want: [warn('http_service.min_machines_running', /Ward calls this http_service\.min_instances/, 3), warn('http_service.auto_stop_machines', /does not stop idle/, 4)] },
  { name: 'a fly.toml [build]', toml: '[build]\ndockerfile = "Dockerfile"', want: [warn('build.dockerfile', /does not build images/)] },
  { name: 'a fly tcp_checks', toml: '[[services]]\ninternal_port = 1\n[[services.ports]]\nport = 9\n[[services.tcp_checks]]\ninterval = "5s"', want: [warn('services[0].tcp_checks', /\[\[services\.checks\]\]/, 5)] },
  { name: 'an unrelated key', toml: 'zebra_crossing = 1', want: [warn('zebra_crossing', /^unknown key \(ignored\)$/, 1)] },
  { name: 'a timeout over the interval', toml: '[http_service]\ninternal_port = 80\n[[http_service.checks]]\ninterval = "1s"\ntimeout = "3s"', want: [warn('http_service.checks[0].timeout', /longer than the interval/, 5)] },
  { name: 'force_https without http', toml: '[[services]]\ninternal_port = 1\n[[services.ports]]\nport = 9\nforce_https = true', want: [warn('services[0].ports[0].force_https', /"http" handler/)] },
  { name: 'a duplicate hostname', toml: '[http_service]\ninternal_port = 80\nhostnames = ["a.example.com", "A.example.com"]', want: [warn('http_service.hostnames[1]', /twice/)] },
  { name: 'preload without subdomains', toml: '[http_service]\ninternal_port = 80\n[http_service.hsts]\npreload = true', want: [warn('http_service.hsts.preload', /include_subdomains/)] },
  { name: 'max_retries with policy always', toml: '[restart]\npolicy = "always"\nmax_retries = 3', want: [warn('restart.max_retries', /on-failure/)] },
  { name: 'a service with no ports', toml: '[[services]]\ninternal_port = 5432', want: [warn('services[0]', /private network/, 1)] },
];

function summarize(diags: Diagnostic[]) {
  return diags.map((d) => `${d.severity} ${d.path} @${d.line ?? '-'}: ${d.message}`).join('\n');
}

describe('parseAppConfig: bad input gives diagnostics with paths and lines', () => {
  for (const { name, toml, want } of BAD) {
    test(name, () => {
      const r = parseAppConfig(toml);
      const got = r.diagnostics;
      assert.equal(got.length, want.length, `want ${want.length} diagnostics, got:\n${summarize(got)}`);
      for (const w of want) {
        const d = got.find((g) => g.severity === w.severity && g.path === w.path && w.message.test(g.message));
        assert.ok(d, `no ${w.severity} at ${w.path} matching ${w.message}; got:\n${summarize(got)}`);
        if (w.line !== undefined) assert.equal(d.line, w.line, `line of ${w.path}`);
      }
      const hasError = want.some((w) => w.severity === 'error');
      assert.equal(r.config === undefined, hasError, 'config is set exactly when there is no error');
    });
  }
});

describe('parseAppConfig: the whole file is checked', () => {
  test('one bad table does not hide problems elsewhere', () => {
    const r = parseAppConfig('app = "Bad"\n[http_service]\ninternal_port = "x"\n[deploy]\nstrategy = "nope"\n[restart]\npolicie = "never"\n');
    assert.deepEqual(
      r.diagnostics.map((d) => [d.severity, d.path, d.line]),
      [
        ['error', 'app', 1],
        ['error', 'http_service.internal_port', 3],
        ['error', 'deploy.strategy', 5],
        ['warning', 'restart.policie', 7],
      ],
    );
  });

  test('a TOML syntax error has a line and column and no path', () => {
    const r = parseAppConfig('app = "x"\n[http_service]\ninternal_port = \n');
    assert.equal(r.config, undefined);
    assert.equal(r.diagnostics.length, 1);
    const [d] = r.diagnostics;
    assert.deepEqual({ ...d, message: undefined }, { severity: 'error', path: '', message: undefined, line: 3, column: 17 });
    assert.match(d!.message, /^invalid TOML: /);
    assert.doesNotMatch(d!.message, /\n/);
  });

  test('a duplicate key is a TOML error', () => {
    const r = parseAppConfig('app = "a1"\napp = "a2"\n');
    assert.equal(r.diagnostics[0]?.line, 2);
  });

  test('__proto__ keys are refused', () => {
    const r = parseAppConfig('[env]\n__proto__ = "x"\n');
    assert.equal(r.config, undefined);
    assert.equal(r.diagnostics[0]?.line, 2);
  });
});

describe('formatDiagnostics', () => {
  test('renders file:line:column: severity: path: message', () => {
    const r = parseAppConfig('app = "ok-app"\n\n[http_service]\n  internal_port = "abc"\n  forse_https = true\n');
    assert.equal(
      formatDiagnostics(r.diagnostics, 'ward.toml'),
      [
        'ward.toml:4:3: error: http_service.internal_port: expected a port number 1–65535, got "abc"',
        'ward.toml:5:3: warning: http_service.forse_https: unknown key (ignored); did you mean "force_https"?',
      ].join('\n'),
    );
  });

  test('leaves out what is unknown', () => {
    const diags: Diagnostic[] = [
      { severity: 'error', path: '', message: 'invalid TOML: x', line: 1, column: 2 },
      { severity: 'warning', path: 'a.b', message: 'm' },
    ];
    assert.equal(formatDiagnostics(diags, 'f.toml'), 'f.toml:1:2: error: invalid TOML: x\nf.toml: warning: a.b: m');
  });
});

describe('assertValidAppConfig', () => {
  test('returns the config when there are only warnings', () => {
    const r = parseAppConfig('app = "fine"\nextra = 1\n');
    assert.equal(assertValidAppConfig(r, 'ward.toml').app, 'fine');
  });

  test('throws invalid_config listing every error, then the warnings', () => {
    const r = parseAppConfig('app = "Bad"\nkill_timeout = 5\nintrenal_port = 3\n');
    assert.throws(
      () => assertValidAppConfig(r, 'ward.toml'),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(e.code, 'invalid_config');
        assert.equal(
          e.message,
          [
            'ward.toml has 2 errors:',
            'ward.toml:1:1: error: app: invalid app name "Bad": it has upper-case letters; names are lower-case',
            'ward.toml:2:1: error: kill_timeout: expected a duration like "30s", "5m" or "1h", got 5; a bare number has no unit, write "5s" for seconds',
            'ward.toml:3:1: warning: intrenal_port: unknown key (ignored); did you mean http_service.internal_port?',
          ].join('\n'),
        );
        assert.match(e.hint ?? '', /ward\.reference\.toml/);
        assert.equal((e.details?.diagnostics as unknown[]).length, 3);
        return true;
      },
    );
  });
});

describe('loadAppConfig', () => {
  test('reads a file and names it in the result', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ward-config-'));
    try {
      const file = join(dir, 'ward.toml');
      await writeFile(file, 'app = "from-disk"\n');
      const r = await loadAppConfig(file);
      assert.equal(r.config?.app, 'from-disk');
      assert.equal(r.file, file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a missing file is a UserError with a hint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ward-config-'));
    try {
      await assert.rejects(loadAppConfig(join(dir, 'ward.toml')), (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(e.code, 'invalid_config');
        assert.match(e.message, /ward\.toml does not exist/);
        assert.match(e.hint ?? '', /--config/);
        return true;
      });
      await assert.rejects(loadAppConfig(dir), /is a directory/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
