import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { UserError } from '../core/index.ts';
import { apiPath, createApiClient, DEFAULT_API_URL, normalizeApiUrl } from './client.ts';
import type { SessionStore, StoredSession } from './session.ts';
import { fakeApi, type FakeApi, type FakeReply } from './testing.ts';

function memoryStore(session?: StoredSession): SessionStore {
  let s = session;
  return {
    path: '/mem/session.json',
    read: async () => s,
    write: async (v) => {
      s = v;
    },
    clear: async () => {
      const had = s !== undefined;
      s = undefined;
      return had;
    },
  };
}

/** caught runs fn and returns the UserError it throws. */
async function caught(fn: () => Promise<unknown>): Promise<UserError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}

describe('API client', () => {
  let reply: FakeReply;
  let server: FakeApi;
  before(async () => {
    server = await fakeApi(() => reply);
  });
  after(() => server.close());

  const client = (env: Record<string, string> = {}, session?: StoredSession) =>
    createApiClient({ env: { WARD_API_URL: server.url, ...env }, session: memoryStore(session) });

  const errorCases: Array<{ name: string; reply: FakeReply; env?: Record<string, string>; code: string; message: string | RegExp; hint?: string }> = [
    {
      name: 'an API error with code, message and hint',
      reply: { status: 409, body: { error: { code: 'name_taken', message: 'an app named "x" exists', hint: 'pick another name', request_id: 'req_1' } } },
      env: { WARD_API_TOKEN: 't' },
      code: 'name_taken',
      message: 'an app named "x" exists',
      hint: 'pick another name',
    },
    {
      name: 'a code this CLI does not know, classified by status',
      reply: { status: 403, body: { error: { code: 'quota_exceeded', message: 'the org is over its quota' } } },
      env: { WARD_API_TOKEN: 't' },
      code: 'forbidden',
      message: 'the org is over its quota',
    },
    {
      name: 'an internal error, pointing at the request id',
      reply: { status: 500, body: { error: { code: 'internal', message: 'internal error', request_id: 'req_42' } } },
      env: { WARD_API_TOKEN: 't' },
      code: 'internal',
      message: 'internal error',
      hint: 'the server failed; its log has the details under request id req_42',
    },
    {
      name: 'a non-JSON error page from a proxy',
      reply: { status: 502, raw: '<html>bad gateway</html>' },
      env: { WARD_API_TOKEN: 't' },
      code: 'internal',
      message: /^the Ward API at http:\/\/127\.0\.0\.1:\d+ answered HTTP 502 Bad Gateway$/,
      hint: 'the server or a proxy in front of it failed; check its log',
    },
    {
      name: 'a 401 when no credential was sent',
      reply: { status: 401, body: { error: { code: 'unauthenticated', message: 'a credential is required' } } },
      code: 'not_logged_in',
      message: 'you are not logged in',
      hint: 'run `ward auth login`, or set WARD_API_TOKEN',
    },
    {
      name: 'a 401 for WARD_API_TOKEN',
      reply: { status: 401, body: { error: { code: 'unauthenticated', message: 'the token is revoked' } } },
      env: { WARD_API_TOKEN: 't' },
      code: 'unauthenticated',
      message: 'the token is revoked',
      hint: 'WARD_API_TOKEN was refused; check it, or unset it to use your login',
    },
    {
      name: 'a 200 that is not JSON',
      reply: { status: 200, raw: '<html>hello</html>' },
      env: { WARD_API_TOKEN: 't' },
      code: 'api_unreachable',
      message: /answered GET \/v1\/apps with something that is not JSON$/,
      hint: 'check that WARD_API_URL points at a Ward API',
    },
    {
      name: 'a redirect, which is not followed',
      reply: { status: 301, headers: { location: 'https://example.invalid/v1/apps' }, raw: '' },
      env: { WARD_API_TOKEN: 't' },
      code: 'api_unreachable',
      message: /^cannot reach the Ward API at http:\/\/127\.0\.0\.1:\d+ \(it answered with a redirect\)$/,
      hint: 'if it redirects to https, set WARD_API_URL to the https:// URL',
    },
  ];
  for (const c of errorCases) {
    it(`maps ${c.name}`, async () => {
      reply = c.reply;
      const e = await caught(() => client(c.env).get('/v1/apps'));
      assert.equal(e.code, c.code);
      if (typeof c.message === 'string') assert.equal(e.message, c.message);
      else assert.match(e.message, c.message);
      assert.equal(e.hint, c.hint);
    });
  }

  it('keeps the request id and status in details', async () => {
    reply = { status: 409, body: { error: { code: 'conflict', message: 'm', request_id: 'req_9', details: { field: 'name' } } } };
    const e = await caught(() => client({ WARD_API_TOKEN: 't' }).post('/v1/apps', { name: 'x' }));
    assert.deepEqual(e.details, { field: 'name', status: 409, request_id: 'req_9' });
  });

  it('sends the bearer token, JSON body and a user agent', async () => {
    reply = { status: 201, body: { app: { name: 'x' } } };
    assert.deepEqual(await client({ WARD_API_TOKEN: 'ward_tok_abc' }).post('/v1/apps', { name: 'x' }), { app: { name: 'x' } });
    const req = server.requests.at(-1)!;
    assert.equal(req.headers.authorization, 'Bearer ward_tok_abc');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.match(req.headers['user-agent'] ?? '', /^ward-cli\/\S+ node\/v\d+/);
    assert.deepEqual(req.body, { name: 'x' });
  });

  it('uses the stored session for its own server, and answers 204 with undefined', async () => {
    reply = { status: 204 };
    const session = { api_url: server.url + '/', token: 'ward_ses_s', email: 'a@b.c', expires_at: '2999-01-01T00:00:00Z' };
    assert.equal(await client({}, session).post('/v1/auth/logout'), undefined);
    assert.equal(server.requests.at(-1)!.headers.authorization, 'Bearer ward_ses_s');
  });

  it('does not send an expired session', async () => {
    reply = { status: 200, body: {} };
    const before = server.requests.length;
    const expired = { api_url: server.url, token: 'ward_ses_old', email: 'a@b.c', expires_at: '2001-01-01T00:00:00Z' };
    const t = await client({}, expired).target();
    assert.equal(t.credential, undefined);
    assert.equal(t.missing?.message, 'your session for a@b.c has expired');
    reply = { status: 401, body: { error: { code: 'unauthenticated', message: 'no' } } };
    const e = await caught(() => client({}, expired).get('/v1/auth/whoami'));
    assert.equal(e.message, 'your session for a@b.c has expired');
    assert.equal(server.requests.at(-1)!.headers.authorization, undefined);
    assert.equal(server.requests.length, before + 1);
  });

  it('sends nothing with auth: false', async () => {
    reply = { status: 200, body: { ok: true } };
    await client({ WARD_API_TOKEN: 'ward_tok_abc' }).post('/v1/auth/login', {}, { auth: false });
    assert.equal(server.requests.at(-1)!.headers.authorization, undefined);
  });

  it('reports a refused connection as api_unreachable', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as AddressInfo;
    await new Promise((r) => closed.close(r));
    const e = await caught(() => createApiClient({ env: { WARD_API_URL: `http://127.0.0.1:${port}` }, session: memoryStore() }).get('/v1/health'));
    assert.equal(e.code, 'api_unreachable');
    assert.equal(e.message, `cannot reach the Ward API at http://127.0.0.1:${port} (connection refused)`);
    assert.equal(e.hint, 'start it with `ward server` or set WARD_API_URL');
  });

  it('reports a server that never answers as api_unreachable after the timeout', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const { port } = silent.address() as AddressInfo;
      const c = createApiClient({ env: { WARD_API_URL: `http://127.0.0.1:${port}` }, session: memoryStore(), timeoutMs: 100 });
      const e = await caught(() => c.get('/v1/health'));
      assert.equal(e.code, 'api_unreachable');
      assert.equal(e.message, `cannot reach the Ward API at http://127.0.0.1:${port} (no answer within 100ms)`);
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });

  it('defaults to http://127.0.0.1:4280', async () => {
    assert.equal((await createApiClient({ env: {}, session: memoryStore() }).target()).apiUrl, DEFAULT_API_URL);
  });
});

describe('API URLs and paths', () => {
  it('normalizes and checks WARD_API_URL', () => {
    assert.equal(normalizeApiUrl('http://127.0.0.1:4280/'), 'http://127.0.0.1:4280');
    assert.equal(normalizeApiUrl(' https://ward.example.com/api// '), 'https://ward.example.com/api');
    for (const bad of ['127.0.0.1:4280', 'ftp://x', 'not a url', 'http://user:pw@host', 'http://h/?q=1']) {
      assert.throws(() => normalizeApiUrl(bad), (e: unknown) => e instanceof UserError && e.code === 'invalid_config', bad);
    }
  });

  it('encodes each interpolated value as one path segment', () => {
    assert.equal(apiPath`/v1/apps/${'a/../b?c#d'}/x`, '/v1/apps/a%2F..%2Fb%3Fc%23d/x');
    assert.equal(apiPath`/v1/orgs/${'acme'}/invites`, '/v1/orgs/acme/invites');
  });
});
