// The control plane API against a real SQLite store in a temp dir: the happy path, every kind of bad
// input, and the access rules. Requests go through Fastify's inject (the full routing, validation,
// hooks and serialization) except where the raw HTTP parser itself is under test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApi } from '../../src/api/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { ManualClock } from '../../src/core/index.ts';
import { newLogger } from '../../src/server/index.ts';

const PASSWORD = 'correct horse battery staple';

describe('API', () => {
  let dir: string;
  let store: Store;
  let api: FastifyInstance;
  const clock = new ManualClock(Date.UTC(2026, 10, 29, 8, 0, 0));
  const logLines: string[] = [];
  let owner: string; // session token of the first user

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-api-'));
    store = await openStore({ dataDir: dir });
    const sink = new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } });
    api = await buildApi({ store, clock, logger: newLogger('debug', sink), version: '0.0.0-test' });
    await api.ready();
  });
  after(async () => {
    await api?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, token?: string) =>
    api.inject({ method, url, ...(body === undefined ? {} : { payload: body as object }), headers: token ? { authorization: `Bearer ${token}` } : {} });
  const errCode = (r: LightMyRequestResponse) => (r.json() as { error: { code: string } }).error.code;

  test('health, API document and metrics are public', async () => {
    const h = await call('GET', '/v1/health');
    assert.equal(h.statusCode, 200);
    assert.deepEqual(h.json(), { status: 'ok', version: '0.0.0-test', store: 'sqlite' });
    assert.match(String(h.headers['x-request-id']), /^req_/);
    const doc = (await call('GET', '/v1/openapi.json')).json() as { openapi: string; paths: Record<string, unknown> };
    assert.equal(doc.openapi, '3.1.0');
    for (const p of ['/v1/health', '/v1/auth/signup', '/v1/auth/login', '/v1/orgs', '/v1/orgs/{org}', '/v1/apps', '/v1/apps/{app}']) {
      assert.ok(doc.paths[p], `API document lists ${p}`);
    }
    const m = await call('GET', '/metrics');
    assert.equal(m.statusCode, 200);
    assert.match(m.body, /ward_http_requests_total\{method="GET",route="\/v1\/health",status="200"\} 1/);
    assert.match(m.body, /ward_process_cpu_seconds_total/);
  });

  test('the first signup creates the org and its owner; later ones need an invite', async () => {
    const r = await call('POST', '/v1/auth/signup', { email: 'Owner@Example.com', password: PASSWORD, org: 'acme' });
    assert.equal(r.statusCode, 201, r.body);
    const b = r.json();
    assert.equal(b.user.email, 'owner@example.com');
    assert.equal(b.org.name, 'acme');
    assert.equal(b.role, 'owner');
    assert.match(b.session.token, /^ward_ses_/);
    assert.equal(b.session.idle_timeout, '12h');
    assert.ok(!r.body.includes('scrypt'), 'no password hash in the answer');
    owner = b.session.token;

    const again = await call('POST', '/v1/auth/signup', { email: 'mallory@example.com', password: PASSWORD, org: 'evil' });
    assert.equal(again.statusCode, 403);
    assert.equal(errCode(again), 'invite_required');
    assert.equal(await store.users.count(), 1, 'nothing written');
  });

  test('invites admit one person with the invite\'s role, once', async () => {
    const inv = await call('POST', '/v1/orgs/acme/invites', { role: 'viewer' }, owner);
    assert.equal(inv.statusCode, 201, inv.body);
    const code = inv.json().invite.code as string;
    assert.match(code, /^ward_inv_/);
    const r = await call('POST', '/v1/auth/signup', { email: 'viewer@example.com', password: PASSWORD, invite: code });
    assert.equal(r.statusCode, 201, r.body);
    assert.equal(r.json().role, 'viewer');
    assert.equal(r.json().org.name, 'acme');
    const reuse = await call('POST', '/v1/auth/signup', { email: 'other@example.com', password: PASSWORD, invite: code });
    assert.equal(errCode(reuse), 'invite_required');
    const forged = await call('POST', '/v1/auth/signup', { email: 'other@example.com', password: PASSWORD, invite: 'ward_inv_' + 'A'.repeat(43) });
    assert.equal(errCode(forged), 'invite_required');
    assert.equal(await store.users.count(), 2);
  });

  test('login: wrong password and unknown user get the same answer', async () => {
    const ok = await call('POST', '/v1/auth/login', { email: 'owner@example.com', password: PASSWORD });
    assert.equal(ok.statusCode, 200);
    const wrong = await call('POST', '/v1/auth/login', { email: 'owner@example.com', password: 'not the password!' });
    const unknown = await call('POST', '/v1/auth/login', { email: 'nobody@example.com', password: 'not the password!' });
    assert.equal(wrong.statusCode, 401);
    assert.equal(unknown.statusCode, 401);
    const strip = (r: LightMyRequestResponse) => ({ ...r.json().error, request_id: undefined });
    assert.deepEqual(strip(wrong), strip(unknown));
  });

  test('orgs and apps: create, list, show, destroy', async () => {
    const org = await call('POST', '/v1/orgs', { name: 'second-org' }, owner);
    assert.equal(org.statusCode, 201, org.body);
    const orgs = (await call('GET', '/v1/orgs', undefined, owner)).json().orgs;
    assert.deepEqual(orgs.map((o: { name: string; role: string }) => [o.name, o.role]), [['acme', 'owner'], ['second-org', 'owner']]);
    const shown = (await call('GET', '/v1/orgs/acme', undefined, owner)).json();
    assert.deepEqual(shown.members.map((m: { email: string }) => m.email).sort(), ['owner@example.com', 'viewer@example.com']);

    const created = await call('POST', '/v1/apps', { name: 'patient-portal' }, owner);
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json().app.org.name, 'acme', 'default org is the oldest');
    const inSecond = await call('POST', '/v1/apps', { name: 'billing', org: 'second-org' }, owner);
    assert.equal(inSecond.json().app.org.name, 'second-org');
    const taken = await call('POST', '/v1/apps', { name: 'patient-portal', org: 'second-org' }, owner);
    assert.equal(taken.statusCode, 409);
    assert.equal(errCode(taken), 'name_taken');
    const list = (await call('GET', '/v1/apps', undefined, owner)).json().apps;
    assert.deepEqual(list.map((a: { name: string }) => a.name).sort(), ['billing', 'patient-portal']);
    const one = (await call('GET', '/v1/apps?org=second-org', undefined, owner)).json().apps;
    assert.deepEqual(one.map((a: { name: string }) => a.name), ['billing']);
    const byId = await call('GET', `/v1/apps/${created.json().app.id}`, undefined, owner);
    assert.equal(byId.json().app.name, 'patient-portal');
    const gone = await call('DELETE', '/v1/apps/billing', undefined, owner);
    assert.equal(gone.statusCode, 200);
    assert.equal((await call('GET', '/v1/apps/billing', undefined, owner)).statusCode, 404);
  });

  test('names are validated', async () => {
    for (const name of ['Bad', '-x', 'x', 'a'.repeat(64), 'has_underscore', 'internal', 'ends-']) {
      const r = await call('POST', '/v1/apps', { name }, owner);
      assert.equal(r.statusCode, 400, name);
      assert.equal(errCode(r), name.length > 63 ? 'bad_request' : 'invalid_name', name);
    }
  });

  test('roles: a viewer reads but cannot create, destroy or invite; outsiders see nothing', async () => {
    const viewer = (await call('POST', '/v1/auth/login', { email: 'viewer@example.com', password: PASSWORD })).json().session.token;
    assert.equal((await call('GET', '/v1/apps/patient-portal', undefined, viewer)).statusCode, 200);
    const create = await call('POST', '/v1/apps', { name: 'sneaky', org: 'acme' }, viewer);
    assert.equal(create.statusCode, 403);
    assert.equal(errCode(create), 'forbidden');
    assert.equal((await call('DELETE', '/v1/apps/patient-portal', undefined, viewer)).statusCode, 403);
    assert.equal((await call('POST', '/v1/orgs/acme/invites', { role: 'owner' }, viewer)).statusCode, 403);
    // second-org exists, but the viewer is not in it: not found, not forbidden.
    assert.equal((await call('GET', '/v1/orgs/second-org', undefined, viewer)).statusCode, 404);
    assert.equal((await call('GET', '/v1/apps?org=second-org', undefined, viewer)).statusCode, 404);
    assert.equal((await store.apps.findByName('sneaky')), undefined);
  });

  test('credentials: missing, malformed, forged, revoked and expired ones are refused', async () => {
    for (const auth of [undefined, 'Basic abc', 'Bearer ', 'Bearer ward_ses_short', `Bearer ward_ses_${'x'.repeat(43)}`, `Bearer ${owner} extra`]) {
      const r = await api.inject({ method: 'GET', url: '/v1/orgs', headers: auth === undefined ? {} : { authorization: auth } });
      assert.equal(r.statusCode, 401, String(auth));
      assert.equal(errCode(r), 'unauthenticated');
    }
    const s = (await call('POST', '/v1/auth/login', { email: 'owner@example.com', password: PASSWORD })).json().session.token;
    assert.equal((await call('POST', '/v1/auth/logout', undefined, s)).statusCode, 204);
    assert.equal((await call('GET', '/v1/orgs', undefined, s)).statusCode, 401, 'revoked by logout');

    const idle = (await call('POST', '/v1/auth/login', { email: 'owner@example.com', password: PASSWORD, kind: 'web' })).json().session.token;
    assert.equal((await call('GET', '/v1/orgs', undefined, idle)).statusCode, 200);
    clock.advance(16 * 60_000); // past the web idle timeout
    assert.equal((await call('GET', '/v1/orgs', undefined, idle)).statusCode, 401, 'idle web session ended');
    assert.equal((await call('GET', '/v1/orgs', undefined, owner)).statusCode, 200, 'cli session still fine');
    clock.advance(8 * 24 * 3600_000); // past the CLI absolute lifetime
    assert.equal((await call('GET', '/v1/orgs', undefined, owner)).statusCode, 401, 'cli session past its end');
    owner = (await call('POST', '/v1/auth/login', { email: 'owner@example.com', password: PASSWORD })).json().session.token;
  });

  test('bad input gets a catalogued error and changes nothing', async () => {
    const users = await store.users.count();
    const cases: Array<[string, { method: 'POST'; url: string; payload: string | Buffer; headers: Record<string, string> }, number, string]> = [
      ['malformed JSON', { method: 'POST', url: '/v1/auth/signup', payload: '{"email": ', headers: { 'content-type': 'application/json' } }, 400, 'invalid_json'],
      ['empty JSON', { method: 'POST', url: '/v1/orgs', payload: '', headers: { 'content-type': 'application/json', authorization: `Bearer ${owner}` } }, 400, 'invalid_json'],
      ['wrong type', { method: 'POST', url: '/v1/auth/signup', payload: '{"email": 5, "password": "x"}', headers: { 'content-type': 'application/json' } }, 400, 'bad_request'],
      ['unknown field', { method: 'POST', url: '/v1/auth/signup', payload: JSON.stringify({ email: 'a@b.co', password: PASSWORD, admin: true }), headers: { 'content-type': 'application/json' } }, 400, 'bad_request'],
      ['not JSON', { method: 'POST', url: '/v1/auth/signup', payload: 'email=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'unsupported_media_type'],
      ['oversized', { method: 'POST', url: '/v1/auth/signup', payload: Buffer.alloc(2 * 1024 * 1024, 'a'), headers: { 'content-type': 'application/json' } }, 413, 'payload_too_large'],
      ['short password', { method: 'POST', url: '/v1/auth/signup', payload: JSON.stringify({ email: 'a@b.co', password: 'short', invite: 'x' }), headers: { 'content-type': 'application/json' } }, 400, 'bad_request'],
      ['bad email', { method: 'POST', url: '/v1/auth/signup', payload: JSON.stringify({ email: 'not-an-email', password: PASSWORD }), headers: { 'content-type': 'application/json' } }, 400, 'bad_request'],
    ];
    for (const [name, req, status, code] of cases) {
      const r = await api.inject(req);
      assert.equal(r.statusCode, status, `${name}: ${r.body}`);
      assert.equal(errCode(r), code, name);
      assert.ok(r.json().error.message.length > 0, name);
    }
    const nf = await call('GET', '/v1/nope');
    assert.equal(nf.statusCode, 404);
    assert.equal(errCode(nf), 'not_found');
    assert.equal(await store.users.count(), users);
  });

  test('malformed HTTP on a real socket gets 400 and the server keeps serving', async () => {
    await api.listen({ host: '127.0.0.1', port: 0 });
    const { port } = api.server.address() as { port: number };
    const raw = (text: string) => new Promise<string>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1');
      let out = '';
      sock.on('data', (d) => (out += d));
      sock.on('end', () => resolve(out));
      sock.on('error', reject);
      sock.write(text);
      setTimeout(() => sock.end(), 500);
    });
    assert.match(await raw('GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.match(await raw('GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'), /^HTTP\/1\.1 400/);
    const ok = await fetch(`http://127.0.0.1:${port}/v1/health`);
    assert.equal(ok.status, 200);
  });

  test('logs carry request ids and never a password or token', async () => {
    await new Promise((r) => setTimeout(r, 50));
    const all = logLines.join('');
    assert.match(all, /"request_id":"req_/);
    assert.ok(!all.includes(PASSWORD), 'no password in logs');
    assert.ok(!all.includes(owner), 'no session token in logs');
    assert.ok(!/ward_(ses|inv)_[A-Za-z0-9_-]{43}/.test(all), 'no bearer secret of any kind in logs');
  });
});
