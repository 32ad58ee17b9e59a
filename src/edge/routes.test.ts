import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAppConfig } from '../config/index.ts';
import { hstsValue, normalizeHost, RouteTable, routesFromApps, StaticUpstreamSource, type HttpRoute } from './routes.ts';
import { routeTableFromSnapshot, snapshotRoutes } from './snapshot.ts';

const route = (app: string, hostnames: string[]): HttpRoute => ({
  app,
  hostnames,
  forceHttps: true,
  hsts: 'max-age=31536000',
  concurrency: { softLimit: undefined, hardLimit: undefined },
  upstreams: new StaticUpstreamSource(),
});

describe('normalizeHost', () => {
  const cases: Array<[string, string | undefined]> = [
    ['App.Example.COM', 'app.example.com'],
    ['app.example.com:8443', 'app.example.com'],
    ['app.example.com.', 'app.example.com'],
    ['localhost', 'localhost'],
    ['127.0.0.1:80', '127.0.0.1'],
    ['[::1]:443', '[::1]'],
    ['[::1', undefined],
    ['', undefined],
    ['a b.example.com', undefined],
    ['app.example.com:', undefined],
    ['app.example.com:x', undefined],
    ['evil.com/path', undefined],
    ['evil.com@good.com', undefined],
    ['-bad.example.com', undefined],
    ['a'.repeat(64) + '.com', undefined],
    ['app_x.example.com', undefined],
  ];
  for (const [input, want] of cases) {
    test(JSON.stringify(input), () => assert.equal(normalizeHost(input), want));
  }
});

describe('RouteTable', () => {
  test('looks up by exact normalized name and lists every name', () => {
    const t = new RouteTable([route('a', ['A.example.com', 'www.a.example.com']), route('b', ['b.example.com'])]);
    assert.equal(t.lookup('a.example.com')?.app, 'a');
    assert.equal(t.lookup('www.a.example.com')?.app, 'a');
    assert.equal(t.lookup('b.example.com')?.app, 'b');
    assert.equal(t.lookup('c.example.com'), undefined);
    assert.deepEqual([...t.hostnames()].sort(), ['a.example.com', 'b.example.com', 'www.a.example.com']);
  });
  test('refuses a hostname claimed by two apps', () => {
    assert.throws(() => new RouteTable([route('a', ['x.example.com']), route('b', ['X.example.com'])]), /claimed by apps a and b/);
  });
  test('refuses a TCP port claimed twice and invalid ports', () => {
    const up = new StaticUpstreamSource();
    assert.throws(() => new RouteTable([], [{ app: 'a', port: 5432, tls: false, proxyProtocol: false, upstreams: up }, { app: 'b', port: 5432, tls: true, proxyProtocol: false, upstreams: up }]), /5432/);
    assert.throws(() => new RouteTable([], [{ app: 'a', port: 70000, tls: false, proxyProtocol: false, upstreams: up }]), /invalid TCP port/);
  });
  test('refuses a malformed hostname', () => {
    assert.throws(() => new RouteTable([route('a', ['bad name'])]), /invalid hostname/);
  });
});

describe('routesFromApps', () => {
  test('an app with neither [http_service] nor [[services]] gets no route at all', () => {
    const { config } = parseAppConfig('app = "quiet"\n');
    const t = routesFromApps([{ app: 'quiet', config: config!, upstreams: () => new StaticUpstreamSource() }], { domain: 'ward.example' });
    assert.deepEqual(t.hostnames(), []);
    assert.deepEqual(t.tcpRoutes(), []);
  });
  test('hostnames, the default <app>.<domain>, HSTS, concurrency and TCP services come from ward.toml', () => {
    const { config, diagnostics } = parseAppConfig(`app = "portal"
[http_service]
internal_port = 8080
force_https = false
hostnames = ["portal.example.com"]
  [http_service.concurrency]
  type = "requests"
  soft_limit = 20
  hard_limit = 25
  [http_service.hsts]
  enabled = true
  max_age = "730d"
  include_subdomains = true
  preload = true
[[services]]
internal_port = 5432
  [[services.ports]]
  port = 5432
  handlers = ["tls"]
  [[services.ports]]
  port = 6432
`);
    assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
    const asked: number[] = [];
    const t = routesFromApps([{ app: 'portal', config: config!, upstreams: (port) => (asked.push(port), new StaticUpstreamSource()) }], { domain: 'ward.example' });
    const r = t.lookup('portal.example.com')!;
    assert.equal(t.lookup('portal.ward.example'), r);
    assert.equal(r.forceHttps, false);
    assert.equal(r.hsts, 'max-age=63072000; includeSubDomains; preload');
    assert.deepEqual(r.concurrency, { softLimit: 20, hardLimit: 25 });
    assert.deepEqual(t.tcpRoutes().map((x) => [x.port, x.tls]), [[5432, true], [6432, false]]);
    assert.deepEqual(asked, [8080, 5432]);
  });
  test('HSTS is on by default with one year, and can be turned off', () => {
    assert.equal(hstsValue({ enabled: true, maxAgeMs: 365 * 86_400_000, includeSubdomains: false, preload: false }), 'max-age=31536000');
    assert.equal(hstsValue({ enabled: false, maxAgeMs: 365 * 86_400_000, includeSubdomains: false, preload: false }), undefined);
    const { config } = parseAppConfig('[http_service]\ninternal_port = 80\n');
    const t = routesFromApps([{ app: 'x', config: config!, upstreams: () => new StaticUpstreamSource() }], { domain: 'ward.example' });
    assert.equal(t.lookup('x.ward.example')?.hsts, 'max-age=31536000');
    assert.equal(t.lookup('x.ward.example')?.forceHttps, true);
  });
});

describe('route snapshots', () => {
  test('round-trip through data', () => {
    const up = new StaticUpstreamSource([{ id: 'i1', host: '10.0.0.2', port: 8080 }]);
    const t = new RouteTable([{ ...route('a', ['a.example.com']), upstreams: up }], [{ app: 'a', port: 5432, tls: true, proxyProtocol: false, upstreams: up }]);
    const s = snapshotRoutes(t);
    const back = routeTableFromSnapshot(JSON.parse(JSON.stringify(s)));
    assert.deepEqual(snapshotRoutes(back), s);
    assert.deepEqual(back.lookup('a.example.com')?.upstreams.healthy(), [{ id: 'i1', host: '10.0.0.2', port: 8080 }]);
  });
});
