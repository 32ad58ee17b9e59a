import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { normalizeAppConfig, validateAppConfig } from '../../config/index.ts';
import { checksFor, HealthChecker, HealthRegistry, probe, type CheckSpec, type HealthReport, type ProbeResult } from './index.ts';

function config(doc: Record<string, unknown>) {
  const { raw, diagnostics } = validateAppConfig(doc);
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  return normalizeAppConfig(raw!);
}

describe('checksFor', () => {
  test('http checks on the internal port; an implicit TCP check where a port has none; none for UDP or no ports', () => {
    assert.deepEqual(checksFor(config({})), []);
    assert.deepEqual(checksFor(config({ http_service: { internal_port: 8080 } })), [{ kind: 'tcp', port: 8080, implicit: true, intervalMs: 10_000, timeoutMs: 2000, gracePeriodMs: 5000 }]);
    assert.deepEqual(
      checksFor(config({
        http_service: { internal_port: 8080, checks: [{ path: '/healthz', method: 'head', headers: { 'X-A': 'b' }, interval: '1s', timeout: '500ms', grace_period: '3s' }] },
        services: [{ internal_port: 5432, checks: [{ interval: '2s' }] }, { internal_port: 9000 }, { internal_port: 8080 }, { internal_port: 53, protocol: 'udp' }],
      })),
      [
        { kind: 'http', port: 8080, path: '/healthz', method: 'HEAD', headers: { 'X-A': 'b' }, implicit: false, intervalMs: 1000, timeoutMs: 500, gracePeriodMs: 3000 },
        { kind: 'tcp', port: 5432, implicit: false, intervalMs: 2000, timeoutMs: 2000, gracePeriodMs: 5000 },
        { kind: 'tcp', port: 9000, implicit: true, intervalMs: 10_000, timeoutMs: 2000, gracePeriodMs: 5000 },
      ],
    );
  });
});

describe('probe', () => {
  let server: Server;
  let port = 0;
  let closedPort = 0;
  const seen: Array<{ method?: string; url?: string; header?: string }> = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, header: req.headers['x-check'] as string | undefined });
      if (req.url === '/ok') return res.end('ok');
      if (req.url === '/redirect') return res.writeHead(302, { location: '/elsewhere' }).end();
      if (req.url === '/slow') return setTimeout(() => res.end('late'), 500);
      res.writeHead(503).end('no');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
    const s = createTcpServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    closedPort = (s.address() as { port: number }).port;
    await new Promise<void>((r) => s.close(() => r()));
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const http = (path: string, over: Partial<CheckSpec> = {}): CheckSpec => ({ kind: 'http', port, path, method: 'GET', headers: { 'X-Check': 'yes' }, implicit: false, intervalMs: 1000, timeoutMs: 200, gracePeriodMs: 0, ...over }) as CheckSpec;

  test('HTTP: 2xx and 3xx pass (redirects not followed), 5xx and timeouts fail, headers are sent', async () => {
    assert.deepEqual(await probe(http('/ok'), ['127.0.0.1']), { ok: true, address: '127.0.0.1', detail: 'GET /ok answered 200' });
    assert.equal((await probe(http('/redirect'), ['127.0.0.1'])).ok, true);
    assert.deepEqual(await probe(http('/bad'), ['127.0.0.1']), { ok: false, address: '127.0.0.1', detail: 'GET /bad answered 503' });
    assert.match((await probe(http('/slow'), ['127.0.0.1'])).detail, /did not answer within 200 ms/);
    assert.equal(seen.find((s) => s.url === '/ok')?.header, 'yes');
    assert.ok(!seen.some((s) => s.url === '/elsewhere'));
  });

  test('an address where nothing listens is skipped for the next; TCP checks connect', async () => {
    // ::1 has nothing on this port (the server listens on 127.0.0.1 only).
    const r = await probe(http('/ok'), ['::1', '127.0.0.1']);
    assert.equal(r.ok, true);
    assert.equal(r.address, '127.0.0.1');
    const tcp: CheckSpec = { kind: 'tcp', port, implicit: true, intervalMs: 1000, timeoutMs: 500, gracePeriodMs: 0 };
    assert.equal((await probe(tcp, ['127.0.0.1'])).ok, true);
    const refused = await probe({ ...tcp, port: closedPort }, ['127.0.0.1']);
    assert.equal(refused.ok, false);
    assert.match(refused.detail, /ECONNREFUSED/);
    assert.equal((await probe(tcp, [])).ok, false);
  });
});

describe('HealthChecker', () => {
  const spec = (over: Partial<CheckSpec> = {}): CheckSpec => ({ kind: 'tcp', port: 1, implicit: false, intervalMs: 30, timeoutMs: 10, gracePeriodMs: 200, ...over }) as CheckSpec;
  const result = (ok: boolean): ProbeResult => ({ ok, address: '10.0.0.1', detail: ok ? 'fine' : 'refused' });

  async function watch(checker: HealthChecker, reports: HealthReport[], want: string, ms = 3000) {
    const end = Date.now() + ms;
    while (!reports.some((r) => r.health === want)) {
      if (Date.now() > end) throw new Error(`no ${want} report; got ${reports.map((r) => r.health).join(',')}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    void checker;
  }

  test('no checks: passing once it has kept running for the settle time', async () => {
    const reports: HealthReport[] = [];
    const c = new HealthChecker({ checks: [], addresses: [], onChange: (r) => reports.push(r), settleMs: 50 });
    c.start();
    assert.deepEqual(reports.map((r) => r.health), ['unknown']);
    await watch(c, reports, 'passing');
    c.stop();
    const stopped = new HealthChecker({ checks: [], addresses: [], onChange: (r) => reports.push(r), settleMs: 20 });
    stopped.start();
    stopped.stop();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(reports.at(-1)!.health, 'unknown', 'a checker stopped before it settled never reports passing');
  });

  test('failures during the grace period do not count; the first pass makes it passing; a later failure makes it failing', async () => {
    let ok = false;
    let probes = 0;
    const reports: HealthReport[] = [];
    const c = new HealthChecker({ checks: [spec()], addresses: ['10.0.0.1'], onChange: (r) => reports.push(r), probe: async () => (probes++, result(ok)) });
    c.start();
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(reports.map((r) => r.health), ['unknown']);
    ok = true;
    await watch(c, reports, 'passing');
    assert.equal(reports.at(-1)!.address, '10.0.0.1');
    ok = false;
    await watch(c, reports, 'failing');
    assert.deepEqual(reports.map((r) => r.health), ['unknown', 'passing', 'failing']);
    assert.match(reports.at(-1)!.detail, /TCP :1: refused/);
    c.stop();
    const after = probes;
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(probes, after, 'stopped checkers do not probe');
  });

  test('a check that never passes turns failing when its grace period ends', async () => {
    const reports: HealthReport[] = [];
    const c = new HealthChecker({ checks: [spec({ gracePeriodMs: 100 })], addresses: ['x'], onChange: (r) => reports.push(r), probe: async () => result(false) });
    const t0 = Date.now();
    c.start();
    await watch(c, reports, 'failing');
    assert.ok(Date.now() - t0 >= 100);
    c.stop();
  });

  test('the aggregate fails when any check fails', async () => {
    const reports: HealthReport[] = [];
    const c = new HealthChecker({
      checks: [spec({ port: 1, gracePeriodMs: 0 }), spec({ port: 2, gracePeriodMs: 0 })],
      addresses: ['x'],
      onChange: (r) => reports.push(r),
      probe: async (s) => result(s.port === 1),
    });
    c.start();
    await watch(c, reports, 'failing');
    assert.equal(c.health, 'failing');
    c.stop();
  });
});

describe('HealthRegistry', () => {
  test('upstreams are the passing instances with a port; subscribers hear about changes only', () => {
    const reg = new HealthRegistry();
    const changed: string[] = [];
    const unsubscribe = reg.subscribe((a) => changed.push(a));
    const base = { appId: 'app_1', releaseId: 'rel_1', addresses: ['10.0.0.1', 'fd00::1'], address: undefined, port: 8080 };
    reg.set({ ...base, instanceId: 'ins_b', health: 'unknown' });
    assert.deepEqual(reg.upstreams('app_1'), []);
    reg.set({ ...base, instanceId: 'ins_b', health: 'passing', address: 'fd00::1' });
    reg.set({ ...base, instanceId: 'ins_a', health: 'passing' });
    reg.set({ ...base, instanceId: 'ins_a', health: 'passing' });
    reg.set({ ...base, appId: 'app_2', instanceId: 'ins_c', health: 'passing', port: undefined });
    assert.deepEqual(reg.upstreams('app_1'), [
      { appId: 'app_1', instanceId: 'ins_a', releaseId: 'rel_1', address: '10.0.0.1', port: 8080 },
      { appId: 'app_1', instanceId: 'ins_b', releaseId: 'rel_1', address: 'fd00::1', port: 8080 },
    ]);
    assert.deepEqual(reg.upstreams('app_2'), []);
    // Without [http_service] there is no HTTP upstream, but the healthy instance is listed for TCP routes.
    assert.deepEqual(reg.healthy('app_2').map((h) => [h.instanceId, h.address]), [['ins_c', '10.0.0.1']]);
    reg.set({ ...base, instanceId: 'ins_b', health: 'failing' });
    reg.remove('ins_a');
    reg.remove('ins_unknown');
    assert.deepEqual(reg.upstreams('app_1'), []);
    assert.deepEqual(changed, ['app_1', 'app_1', 'app_2', 'app_1', 'app_1']);
    unsubscribe();
    reg.set({ ...base, instanceId: 'ins_a', health: 'passing' });
    assert.equal(changed.length, 5);
  });
});
