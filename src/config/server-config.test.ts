import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { UserError } from '../core/errors.ts';
import {
  LETS_ENCRYPT_DIRECTORY,
  SERVER_SETTINGS,
  formatListen,
  parseListen,
  redactUrl,
  resolveServerConfig,
  type ResolveServerConfigInput,
  type ServerConfig,
  type ServerFlags,
  type ServerSetting,
} from './index.ts';

const resolveWith = (input: Partial<ResolveServerConfigInput>) => resolveServerConfig({ flags: {}, env: {}, cwd: '/work', ...input });

describe('resolveServerConfig: defaults', () => {
  test('with nothing set', () => {
    const c = resolveWith({});
    assert.deepEqual(c, {
      dataDir: '/var/lib/ward',
      databaseUrl: undefined,
      roles: ['control', 'agent', 'edge'],
      apiListen: { host: '127.0.0.1', port: 4280 },
      httpListen: { host: '::', port: 80 },
      httpsListen: { host: '::', port: 443 },
      acmeDirectory: LETS_ENCRYPT_DIRECTORY,
      acmeEmail: undefined,
      acmeCaFile: undefined,
      domain: undefined,
      edgeWorkers: 'auto',
      masterKeyFile: '/var/lib/ward/master.key',
      region: 'local',
      hostname: hostname(),
      wireguardEndpoint: undefined,
      logLevel: 'info',
      configFile: undefined,
      sources: Object.fromEntries(Object.keys(SERVER_SETTINGS).map((k) => [k, 'default'])) as Record<ServerSetting, string>,
    } satisfies ServerConfig);
  });

  test('master_key_file follows data_dir wherever it came from', () => {
    assert.equal(resolveWith({ flags: { 'data-dir': '/srv/ward' } }).masterKeyFile, '/srv/ward/master.key');
    assert.equal(resolveWith({ env: { WARD_DATA_DIR: 'state' } }).masterKeyFile, '/work/state/master.key');
  });
});

/**
 * PRECEDENCE has, for every setting, a value for each source and what each parses to. The test takes the
 * sources away one by one: flag, then environment, then file, and expects the next one to win.
 */
const PRECEDENCE: {
  key: ServerSetting;
  flag: string;
  env: string;
  file: string;
  want: [unknown, unknown, unknown];
  field: keyof ServerConfig;
}[] = [
  { key: 'data_dir', field: 'dataDir', flag: '/f', env: '/e', file: '/d', want: ['/f', '/e', '/d'] },
  {
    key: 'database_url',
    field: 'databaseUrl',
    flag: 'postgres://f/ward',
    env: 'postgresql://e/ward',
    file: 'postgres://d/ward',
    want: ['postgres://f/ward', 'postgresql://e/ward', 'postgres://d/ward'],
  },
  { key: 'roles', field: 'roles', flag: 'edge', env: 'agent,edge', file: 'control', want: [['edge'], ['agent', 'edge'], ['control']] },
  { key: 'api_listen', field: 'apiListen', flag: ':1', env: '10.0.0.1:2', file: '[::1]:3', want: [{ host: '::', port: 1 }, { host: '10.0.0.1', port: 2 }, { host: '::1', port: 3 }] },
  { key: 'http_listen', field: 'httpListen', flag: ':81', env: ':82', file: ':83', want: [{ host: '::', port: 81 }, { host: '::', port: 82 }, { host: '::', port: 83 }] },
  { key: 'https_listen', field: 'httpsListen', flag: ':441', env: ':442', file: ':443', want: [{ host: '::', port: 441 }, { host: '::', port: 442 }, { host: '::', port: 443 }] },
  {
    key: 'acme_directory',
    field: 'acmeDirectory',
    flag: 'https://f/dir',
    env: 'https://e/dir',
    file: 'http://localhost:14000/dir',
    want: ['https://f/dir', 'https://e/dir', 'http://localhost:14000/dir'],
  },
  { key: 'acme_email', field: 'acmeEmail', flag: 'F@example.com', env: 'e@example.com', file: 'd@example.com', want: ['f@example.com', 'e@example.com', 'd@example.com'] },
  { key: 'acme_ca_file', field: 'acmeCaFile', flag: '/f.pem', env: '/e.pem', file: 'ca.pem', want: ['/f.pem', '/e.pem', '/etc/ward/ca.pem'] },
  { key: 'domain', field: 'domain', flag: 'Apps.Example.COM', env: 'e.example.com.', file: 'd.example', want: ['apps.example.com', 'e.example.com', 'd.example'] },
  { key: 'edge_workers', field: 'edgeWorkers', flag: '4', env: 'AUTO', file: '1', want: [4, 'auto', 1] },
  { key: 'master_key_file', field: 'masterKeyFile', flag: '/f.key', env: 'e.key', file: '/d.key', want: ['/f.key', '/work/e.key', '/d.key'] },
  { key: 'region', field: 'region', flag: 'fra', env: 'ams', file: 'lhr', want: ['fra', 'ams', 'lhr'] },
  { key: 'hostname', field: 'hostname', flag: 'node-f', env: 'node_e', file: 'node-d.lan', want: ['node-f', 'node_e', 'node-d.lan'] },
  { key: 'wireguard_endpoint', field: 'wireguardEndpoint', flag: '192.0.2.10', env: '[2001:db8::1]:4500', file: 'node-d.example.com:51821', want: ['192.0.2.10:51820', '[2001:db8::1]:4500', 'node-d.example.com:51821'] },
  { key: 'log_level', field: 'logLevel', flag: 'debug', env: 'WARN', file: 'error', want: ['debug', 'warn', 'error'] },
];

const FLAG_OF: Record<ServerSetting, keyof ServerFlags> = {
  data_dir: 'data-dir',
  database_url: 'database-url',
  roles: 'roles',
  api_listen: 'api-listen',
  http_listen: 'http-listen',
  https_listen: 'https-listen',
  acme_directory: 'acme-directory',
  acme_email: 'acme-email',
  acme_ca_file: 'acme-ca-file',
  domain: 'domain',
  edge_workers: 'edge-workers',
  master_key_file: 'master-key-file',
  region: 'region',
  hostname: 'hostname',
  wireguard_endpoint: 'wireguard-endpoint',
  log_level: 'log-level',
};

describe('resolveServerConfig: flag beats environment beats file beats default', () => {
  for (const row of PRECEDENCE) {
    test(row.key, () => {
      const envName = `WARD_${row.key.toUpperCase()}`;
      const file = { path: '/etc/ward/server.toml', text: `${row.key} = ${JSON.stringify(row.file)}\n` };
      const flags = { [FLAG_OF[row.key]]: row.flag };
      const env = { [envName]: row.env };
      const fromFlag = resolveWith({ flags, env, file });
      assert.deepEqual(fromFlag[row.field], row.want[0]);
      assert.equal(fromFlag.sources[row.key], `--${FLAG_OF[row.key]}`);
      const fromEnv = resolveWith({ env, file });
      assert.deepEqual(fromEnv[row.field], row.want[1]);
      assert.equal(fromEnv.sources[row.key], envName);
      const fromFile = resolveWith({ file });
      assert.deepEqual(fromFile[row.field], row.want[2]);
      assert.equal(fromFile.sources[row.key], '/etc/ward/server.toml');
      assert.equal(resolveWith({}).sources[row.key], 'default');
    });
  }

  test('an empty environment variable counts as unset', () => {
    assert.equal(resolveWith({ env: { WARD_REGION: '' }, file: { path: 's.toml', text: 'region = "lhr"' } }).region, 'lhr');
  });

  test('roles in the file may be a TOML array, and come out in canonical order without duplicates', () => {
    const c = resolveWith({ file: { path: 's.toml', text: 'roles = ["edge", "control", "edge"]' } });
    assert.deepEqual(c.roles, ['control', 'edge']);
  });
});

describe('resolveServerConfig: the config file', () => {
  test('is read from --config, WARD_SERVER_CONFIG or a path given as file, relative paths from its folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ward-server-config-'));
    try {
      const path = join(dir, 'server.toml');
      await writeFile(path, 'region = "from-file"\nacme_ca_file = "pki/ca.pem"\n');
      for (const input of [{ flags: { config: path } }, { env: { WARD_SERVER_CONFIG: path } }, { file: path }]) {
        const c = resolveWith(input);
        assert.equal(c.region, 'from-file');
        assert.equal(c.configFile, path);
        assert.equal(c.acmeCaFile, join(dir, 'pki/ca.pem'));
      }
      // --config wins over WARD_SERVER_CONFIG.
      const c = resolveWith({ flags: { config: path }, env: { WARD_SERVER_CONFIG: join(dir, 'nope.toml') } });
      assert.equal(c.region, 'from-file');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  const FILE_ERRORS: { name: string; input: Partial<ResolveServerConfigInput>; message: RegExp; hint?: RegExp }[] = [
    { name: 'a missing file', input: { flags: { config: '/nonexistent/ward/server.toml' } }, message: /^server config file \/nonexistent\/ward\/server\.toml \(from --config\) does not exist$/, hint: /--config/ },
    { name: 'a missing file from the environment', input: { env: { WARD_SERVER_CONFIG: '/nonexistent/s.toml' } }, message: /\(from WARD_SERVER_CONFIG\) does not exist/ },
    { name: 'a TOML syntax error', input: { file: { path: 's.toml', text: 'region = "a"\nroles = [\n' } }, message: /^s\.toml:3:1: invalid TOML: / },
    { name: 'an unknown key', input: { file: { path: 's.toml', text: 'region = "a"\napi_listn = ":1"\n' } }, message: /^s\.toml:2:1: unknown key "api_listn"; did you mean "api_listen"\?$/, hint: /data_dir, database_url/ },
    { name: 'a flag spelling in the file', input: { file: { path: 's.toml', text: '"data-dir" = "/x"\n' } }, message: /did you mean "data_dir"/ },
    { name: 'a table value', input: { file: { path: 's.toml', text: '[region]\nname = "a"\n' } }, message: /^s\.toml:1:1: region: expected a string, got a table$/ },
    { name: 'a number value', input: { file: { path: 's.toml', text: 'api_listen = 4280\n' } }, message: /^s\.toml:1:1: api_listen: expected a non-empty string, got 4280$/ },
  ];
  for (const { name, input, message, hint } of FILE_ERRORS) {
    test(name, () => {
      assert.throws(
        () => resolveWith(input),
        (e: unknown) => {
          assert.ok(e instanceof UserError, String(e));
          assert.equal(e.code, 'invalid_config');
          assert.match(e.message, message);
          assert.ok(e.hint, 'every error has a hint');
          if (hint) assert.match(e.hint, hint);
          return true;
        },
      );
    });
  }
});

describe('resolveServerConfig: validation errors name their source', () => {
  const FILE = { path: '/etc/ward/server.toml', text: '\n\nregion = "Bad Region"\n' };
  const CASES: { name: string; input: Partial<ResolveServerConfigInput>; message: RegExp }[] = [
    { name: 'listen without a port', input: { flags: { 'api-listen': 'localhost' } }, message: /^--api-listen "localhost": expected HOST:PORT/ },
    { name: 'unbracketed IPv6', input: { env: { WARD_HTTP_LISTEN: '::1:80' } }, message: /^WARD_HTTP_LISTEN "::1:80": put IPv6 addresses in brackets, like \[::1\]:80$/ },
    { name: 'a port out of range', input: { flags: { 'https-listen': ':70000' } }, message: /"70000" is not a port number/ },
    { name: 'an unknown role', input: { env: { WARD_ROLES: 'control,egde' } }, message: /^WARD_ROLES "control,egde": unknown role "egde" \(did you mean "edge"\?\); roles are control, agent, edge$/ },
    { name: 'no roles', input: { flags: { roles: ' , ' } }, message: /names no role/ },
    { name: 'a MySQL URL', input: { flags: { 'database-url': 'mysql://u:hunter2@db/ward' } }, message: /^--database-url: expected a postgres:\/\/ or postgresql:\/\/ URL, got a mysql:\/\/ one$/ },
    { name: 'not a URL', input: { env: { WARD_DATABASE_URL: 'db.internal:5432' } }, message: /^WARD_DATABASE_URL: (is not a valid URL|expected a postgres)/ },
    { name: 'an ACME directory over ftp', input: { flags: { 'acme-directory': 'ftp://ca/dir' } }, message: /expected an https:\/\/ URL/ },
    { name: 'a bad ACME email', input: { flags: { 'acme-email': 'nobody' } }, message: /^--acme-email "nobody": is not an email address$/ },
    { name: 'edge_workers out of range', input: { flags: { 'edge-workers': '0' } }, message: /^--edge-workers "0": expected "auto" or a number of processes from 1 to 64$/ },
    { name: 'edge_workers not a number', input: { env: { WARD_EDGE_WORKERS: 'many' } }, message: /^WARD_EDGE_WORKERS "many": expected "auto" or a number of processes from 1 to 64$/ },
    { name: 'a domain that is not a DNS name', input: { flags: { domain: '*.example.com' } }, message: /^--domain "\*\.example\.com": expected a DNS name/ },
    { name: 'a domain that is an address', input: { env: { WARD_DOMAIN: '10.0.0.1' } }, message: /^WARD_DOMAIN "10\.0\.0\.1": expected a DNS name/ },
    { name: 'a bad region in the file', input: { file: FILE }, message: /^\/etc\/ward\/server\.toml:3:1: region "Bad Region": region names use/ },
    { name: 'a bad log level', input: { env: { WARD_LOG_LEVEL: 'verbose' } }, message: /^WARD_LOG_LEVEL "verbose": expected one of trace, debug, info, warn, error, fatal, silent$/ },
    { name: 'a bad hostname', input: { flags: { hostname: 'my host' } }, message: /^--hostname "my host": expected a host name/ },
    { name: 'an empty flag', input: { flags: { region: '' } }, message: /^--region: needs a value$/ },
  ];
  for (const { name, input, message } of CASES) {
    test(name, () => {
      assert.throws(
        () => resolveWith(input),
        (e: unknown) => {
          assert.ok(e instanceof UserError, String(e));
          assert.equal(e.code, 'invalid_config');
          assert.match(e.message, message);
          assert.ok(e.hint && e.hint.length > 0);
          assert.ok(typeof e.details?.setting === 'string');
          return true;
        },
      );
    });
  }

  test('a database URL is never echoed, so its password stays out of terminals and logs', () => {
    assert.throws(
      () => resolveWith({ flags: { 'database-url': 'mysql://u:hunter2@db/ward' } }),
      (e: unknown) => e instanceof UserError && !e.message.includes('hunter2') && !JSON.stringify(e.details).includes('hunter2'),
    );
  });
});

describe('parseListen', () => {
  const GOOD: [string, { host: string; port: number }][] = [
    ['127.0.0.1:4280', { host: '127.0.0.1', port: 4280 }],
    [':80', { host: '::', port: 80 }],
    ['0.0.0.0:443', { host: '0.0.0.0', port: 443 }],
    ['[::1]:4280', { host: '::1', port: 4280 }],
    ['[::]:80', { host: '::', port: 80 }],
    ['[fe80::1%eth0]:80', { host: 'fe80::1%eth0', port: 80 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
    ['edge-1.lan:8080', { host: 'edge-1.lan', port: 8080 }],
    [' :80 ', { host: '::', port: 80 }],
  ];
  for (const [input, want] of GOOD) test(`reads ${JSON.stringify(input)}`, () => assert.deepEqual(parseListen(input), want));

  const BAD: [string, RegExp][] = [
    ['4280', /expected HOST:PORT/],
    ['localhost', /expected HOST:PORT/],
    ['127.0.0.1:', /"" is not a port number/],
    ['127.0.0.1:http', /"http" is not a port number/],
    ['127.0.0.1:65536', /is not a port number 0–65535/],
    [':-1', /is not a port number/],
    ['::1:4280', /put IPv6 addresses in brackets/],
    ['[::1]4280', /expected ":PORT" after "\]"/],
    ['[::1:4280', /missing "\]"/],
    ['[1.2.3.4]:80', /is not an IPv6 address/],
    ['*:80', /is not an IP address or host name/],
    ['http://x:80', /IPv6|not an IP address/],
  ];
  for (const [input, want] of BAD) {
    test(`refuses ${JSON.stringify(input)}`, () => assert.throws(() => parseListen(input), (e: unknown) => e instanceof RangeError && want.test(e.message)));
  }

  test('formatListen reads back', () => {
    for (const s of ['127.0.0.1:4280', '[::1]:80', '[::]:443', 'localhost:0']) assert.equal(formatListen(parseListen(s)), s);
  });
});

test('redactUrl hides passwords only', () => {
  assert.equal(redactUrl('postgres://ward:s3cret@db:5432/ward'), 'postgres://ward:***@db:5432/ward');
  assert.equal(redactUrl('postgres://ward@db/ward'), 'postgres://ward@db/ward');
  assert.equal(redactUrl('not a url s3cret'), '(unparseable URL)');
});

test('acme_directory "local" selects Ward\'s own CA, from a flag, the environment or the file', () => {
  assert.equal(resolveWith({ flags: { 'acme-directory': 'local' } }).acmeDirectory, 'local');
  assert.equal(resolveWith({ env: { WARD_ACME_DIRECTORY: 'local' } }).acmeDirectory, 'local');
  assert.equal(resolveWith({ file: { path: '/etc/ward/server.toml', text: 'acme_directory = "local"\n' } }).acmeDirectory, 'local');
  assert.throws(() => resolveWith({ flags: { 'acme-directory': 'locale' } }), /expected an https:\/\/ URL or "local"/);
});
