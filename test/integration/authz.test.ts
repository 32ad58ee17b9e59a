// The route authorization table: every route the API registers (collected with an onRoute hook, so
// routes added later are covered without editing this file) must declare what it needs, and each
// authenticated route gets Nomad's four cases: no credential → 401; a credential without the capability
// → 403; the least role that has it → 2xx; an owner → 2xx. On top, a member of an org that requires MFA
// but has none gets 403 mfa_required everywhere except enrolment.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse, RouteOptions } from 'fastify';
import { buildApi } from '../../src/api/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { generateWireGuardKeyPair, ManualClock, ROLES, type Role } from '../../src/core/index.ts';
import { ACTIONS, can, ORG_ACTIONS, SCOPE_ACTIONS, totpCode, type Action } from '../../src/auth/index.ts';
import { newLogger } from '../../src/server/index.ts';
import { ImageStore } from '../../src/agent/runtime/index.ts';
import { LogJournal } from '../../src/agent/index.ts';
import { ociArchive } from '../fixtures/archives.ts';
import { directoryScratch } from '../../src/backups/index.ts';

const PASSWORD = 'correct horse battery staple';

/** The routes that may be public. Anything else declaring auth 'none' fails the test. */
const PUBLIC = new Set(['GET /v1/health', 'GET /metrics', 'GET /v1/openapi.json', 'POST /v1/auth/signup', 'POST /v1/auth/login']);

interface Persona {
  email: string;
  token: string;
  role: Role;
}

interface Call {
  url: string;
  payload?: object;
  /** token replaces the persona's credential (logout needs a session of its own to end). */
  token?: string;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

describe('route authorization table', () => {
  let dir: string;
  let store: Store;
  let api: FastifyInstance;
  const clock = new ManualClock(Date.UTC(2026, 10, 29, 8, 0, 0));
  const routes: Array<{ method: Method; url: string; auth: unknown }> = [];
  const personas = {} as Record<Role, Persona>;
  let readToken: string;
  let blocked: Persona; // a member of "strict", which requires MFA, without MFA
  let appName: string;
  let archive: Buffer;
  let seq = 0;
  const uniq = (p: string) => `${p}-${++seq}`;

  const call = (method: Method, url: string, token?: string, payload?: object) =>
    api.inject({ method, url, ...(payload === undefined ? {} : { payload }), headers: token ? { authorization: `Bearer ${token}` } : {} });
  const body = (r: LightMyRequestResponse) => r.json() as any;
  const ok = (r: LightMyRequestResponse, what: string) => assert.ok(r.statusCode >= 200 && r.statusCode < 300, `${what}: ${r.statusCode} ${r.body}`);

  async function login(email: string): Promise<string> {
    const r = await call('POST', '/v1/auth/login', undefined, { email, password: PASSWORD });
    ok(r, `login ${email}`);
    return body(r).session.token;
  }

  /** fresh signs a new person up into acme with role and returns them. */
  async function fresh(role: Role): Promise<Persona> {
    const inv = await call('POST', '/v1/orgs/acme/invites', personas.owner.token, { role });
    ok(inv, 'invite');
    const email = `${uniq(role)}@example.com`;
    const r = await call('POST', '/v1/auth/signup', undefined, { email, password: PASSWORD, invite: body(inv).invite.code });
    ok(r, 'signup');
    return { email, token: body(r).session.token, role };
  }

  async function newApp(): Promise<string> {
    const name = uniq('app');
    ok(await call('POST', '/v1/apps', personas.owner.token, { name, org: 'acme' }), 'create app');
    return name;
  }

  /**
   * FIXTURES make a request that succeeds for a caller allowed to make it. A route without a fixture is
   * tried with its path parameters filled in and an empty body; when that is not enough, add one here.
   */
  /** uploaded uploads the test archive for an app and returns its digest. */
  async function uploaded(app: string): Promise<string> {
    const r = await api.inject({ method: 'POST', url: `/v1/apps/${app}/images?format=oci-archive`, payload: archive, headers: { authorization: `Bearer ${personas.owner.token}`, 'content-type': 'application/octet-stream' } });
    ok(r, 'upload');
    return body(r).image.digest;
  }

  /** deployed makes a fresh app with release v1 placed (no agent runs it here). */
  async function deployed(): Promise<string> {
    const app = await newApp();
    ok(await call('POST', `/v1/apps/${app}/deploy`, personas.owner.token, { image: await uploaded(app) }), 'deploy');
    return app;
  }

  /** succeeded makes a fresh app whose release v1 succeeded: its instances report healthy and the Deployer steps once. */
  async function succeeded(): Promise<string> {
    const app = await deployed();
    const a = (await store.apps.findByName(app))!;
    for (const i of await store.instances.listForApp(a.id)) await store.instances.report(i.id, { observedState: 'running', health: 'passing' }, clock.now().toISOString());
    await api.deployer.stepAll();
    return app;
  }

  const FIXTURES: Record<string, (who: Persona) => Promise<Call>> = {
    // Each deploy needs an app of its own: a release stays `running` here (no Deployer runs), and an
    // app deploys one release at a time.
    'POST /v1/apps/:app/deploy': async () => {
      const app = await newApp();
      return { url: `/v1/apps/${app}/deploy`, payload: { image: await uploaded(app), config: { app } } };
    },
    'POST /v1/apps/:app/images': async () => ({ url: `/v1/apps/${appName}/images?format=oci-archive`, payload: archive }),
    'GET /v1/apps/:app/releases/:version': async () => ({ url: `/v1/apps/${await deployed()}/releases/1` }),
    'POST /v1/apps/:app/restart': async () => ({ url: `/v1/apps/${await deployed()}/restart`, payload: {} }),
    'POST /v1/apps/:app/releases/:version/rollback': async () => ({ url: `/v1/apps/${await succeeded()}/releases/1/rollback` }),
    'POST /v1/apps/:app/scale': async () => ({ url: `/v1/apps/${await succeeded()}/scale`, payload: { count: 2 } }),
    'POST /v1/auth/logout': async (who) => ({ url: '/v1/auth/logout', token: await login(who.email) }),
    'POST /v1/auth/password': async (who) => {
      const f = await fresh(who.role);
      return { url: '/v1/auth/password', token: f.token, payload: { current_password: PASSWORD, new_password: 'another correct horse' } };
    },
    'POST /v1/auth/mfa/enable': async () => ({ url: '/v1/auth/mfa/enable' }),
    'POST /v1/auth/mfa/confirm': async (who) => {
      const f = await fresh(who.role);
      const e = await call('POST', '/v1/auth/mfa/enable', f.token);
      ok(e, 'mfa enable');
      return { url: '/v1/auth/mfa/confirm', token: f.token, payload: { code: totpCode(body(e).secret, clock.now().getTime()) } };
    },
    'POST /v1/auth/mfa/disable': async (who) => {
      const f = await fresh(who.role);
      const e = await call('POST', '/v1/auth/mfa/enable', f.token);
      const c = await call('POST', '/v1/auth/mfa/confirm', f.token, { code: totpCode(body(e).secret, clock.now().getTime()) });
      ok(c, 'mfa confirm');
      return { url: '/v1/auth/mfa/disable', token: f.token, payload: { otp: body(c).recovery_codes[0] } };
    },
    'POST /v1/tokens': async () => ({ url: '/v1/tokens', payload: { name: 'ci', scope: 'read', org: 'acme' } }),
    'DELETE /v1/tokens/:id': async (who) => {
      const t = await call('POST', '/v1/tokens', who.token, { name: 'doomed', scope: 'read', org: 'acme' });
      return { url: `/v1/tokens/${t.statusCode === 201 ? body(t).token.id : 'tok_00000000000000000000000000'}` };
    },
    'POST /v1/orgs': async () => ({ url: '/v1/orgs', payload: { name: uniq('org') } }),
    'POST /v1/orgs/:org/invites': async () => ({ url: '/v1/orgs/acme/invites', payload: { role: 'viewer' } }),
    'POST /v1/orgs/:org/members': async () => ({ url: '/v1/orgs/acme/members', payload: { email: personas.viewer.email, role: 'viewer' } }),
    'DELETE /v1/orgs/:org/members/:member': async () => ({ url: `/v1/orgs/acme/members/${encodeURIComponent((await fresh('viewer')).email)}` }),
    'PUT /v1/orgs/:org/policy': async () => ({ url: '/v1/orgs/acme/policy', payload: { session_idle: '7d' } }),
    'POST /v1/apps': async () => ({ url: '/v1/apps', payload: { name: uniq('app'), org: 'acme' } }),
    'DELETE /v1/apps/:app': async () => ({ url: `/v1/apps/${await newApp()}` }),
    'POST /v1/apps/:app/secrets': async () => ({ url: `/v1/apps/${appName}/secrets`, payload: { values: { [uniq('S').replace('-', '_')]: 'value' } } }),
    'POST /v1/apps/:app/secrets/unset': async () => {
      const name = uniq('U').replace('-', '_');
      ok(await call('POST', `/v1/apps/${appName}/secrets`, personas.owner.token, { values: { [name]: 'doomed' }, stage: true }), 'set a secret to unset');
      return { url: `/v1/apps/${appName}/secrets/unset`, payload: { names: [name] } };
    },
    'POST /v1/apps/:app/secrets/import': async () => ({ url: `/v1/apps/${appName}/secrets/import`, payload: { dotenv: `${uniq('I').replace('-', '_')}=from-dotenv\n` } }),
    'PUT /v1/orgs/:org/network': async () => ({ url: '/v1/orgs/acme/network', payload: { egress: 'allow' } }),
    'POST /v1/orgs/:org/wireguard': async () => ({ url: '/v1/orgs/acme/wireguard', payload: { name: uniq('laptop'), public_key: generateWireGuardKeyPair().publicKey } }),
    'DELETE /v1/orgs/:org/wireguard/:name': async () => {
      const name = uniq('doomed');
      ok(await call('POST', '/v1/orgs/acme/wireguard', personas.owner.token, { name, public_key: generateWireGuardKeyPair().publicKey }), 'add a peer to remove');
      return { url: `/v1/orgs/acme/wireguard/${name}` };
    },
    'POST /v1/apps/:app/certs': async () => ({ url: `/v1/apps/${appName}/certs`, payload: { hostname: `${uniq('c')}.ward.test` } }),
    'GET /v1/apps/:app/certs/:hostname': async () => ({ url: `/v1/apps/${appName}/certs/${await newCert()}` }),
    'DELETE /v1/apps/:app/certs/:hostname': async () => ({ url: `/v1/apps/${appName}/certs/${await newCert()}` }),
    'POST /v1/apps/:app/volumes': async () => ({ url: `/v1/apps/${appName}/volumes`, payload: { name: uniq('vol'), size: '64mb' } }),
    'GET /v1/apps/:app/volumes/:volume': async () => ({ url: `/v1/apps/${appName}/volumes/${await newVolume()}` }),
    'DELETE /v1/apps/:app/volumes/:volume': async () => ({ url: `/v1/apps/${appName}/volumes/${await newVolume()}` }),
    // Backups: the org's target is a local restic repository; volumes are served by a stand-in host (plain directories).
    'PUT /v1/orgs/:org/backups/target': async () => ({ url: '/v1/orgs/acme/backups/target', payload: { repository: join(dir, 'backups-repo') } }),
    'GET /v1/orgs/:org/backups/target': async () => (await backupTarget(), { url: '/v1/orgs/acme/backups/target' }),
    'GET /v1/apps/:app/volumes/:volume/backups/policy': async () => ({ url: `/v1/apps/${appName}/volumes/${await newVolume()}/backups/policy` }),
    'PUT /v1/apps/:app/volumes/:volume/backups/policy': async () => ({ url: `/v1/apps/${appName}/volumes/${await newVolume()}/backups/policy`, payload: { keep_daily: 3 } }),
    'POST /v1/apps/:app/volumes/:volume/backups': async () => (await backupTarget(), { url: `/v1/apps/${appName}/volumes/${await newVolume()}/backups` }),
    'POST /v1/apps/:app/volumes/:volume/backups/verify': async () => ({ url: `/v1/apps/${appName}/volumes/${await backedUpVolume()}/backups/verify`, payload: {} }),
    'POST /v1/apps/:app/volumes/:volume/backups/restore': async () => ({ url: `/v1/apps/${appName}/volumes/${await backedUpVolume()}/backups/restore`, payload: {} }),
  };

  /** backupTarget points acme's backups at a local repository (idempotent). */
  async function backupTarget(): Promise<void> {
    ok(await call('PUT', '/v1/orgs/acme/backups/target', personas.owner.token, { repository: join(dir, 'backups-repo') }), 'backup target');
  }

  /** backedUpVolume makes a volume with one backup and returns its name. */
  async function backedUpVolume(): Promise<string> {
    await backupTarget();
    const name = await newVolume();
    ok(await call('POST', `/v1/apps/${appName}/volumes/${name}/backups`, personas.owner.token), 'a backup');
    return name;
  }

  async function newVolume(): Promise<string> {
    const name = uniq('vol');
    ok(await call('POST', `/v1/apps/${appName}/volumes`, personas.owner.token, { name, size: '64mb' }), 'create a volume');
    return name;
  }

  async function newCert(): Promise<string> {
    const hostname = `${uniq('c')}.ward.test`;
    ok(await call('POST', `/v1/apps/${appName}/certs`, personas.owner.token, { hostname }), 'add a certificate');
    return hostname;
  }

  function fill(url: string): string {
    return url.replace(/:(\w+)/g, (_m, name: string) => {
      if (name === 'org') return 'acme';
      if (name === 'app') return appName;
      throw new Error(`no value for :${name} in ${url}; add a fixture for this route to test/integration/authz.test.ts`);
    });
  }

  async function request(method: Method, url: string, who: Persona): Promise<Call> {
    const fixture = FIXTURES[`${method} ${url}`];
    if (fixture) return fixture(who);
    return { url: fill(url), ...(method === 'POST' || method === 'PUT' || method === 'PATCH' ? { payload: {} } : {}) };
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-authz-'));
    store = await openStore({ dataDir: dir });
    api = await buildApi({
      store,
      clock,
      logger: newLogger('silent'),
      version: '0.0.0-test',
      deploys: { images: new ImageStore({ dataDir: dir }), logs: new LogJournal({ dir: join(dir, 'logs') }), uploadDir: join(dir, 'uploads') },
      // A WireGuard gateway for people's peers (no agent runs here).
      network: { gateway: async () => ({ hostIndex: 1, publicKey: generateWireGuardKeyPair().publicKey, endpoint: 'gw.ward.test:51820' }) },
      // The host of the volumes, for backups: each volume a plain directory (no agent runs here).
      backups: {
        host: () => ({
          hostId: () => 'hst_00000000000000000000000000',
          withMounted: async (v, _purpose, fn) => {
            await mkdir(join(dir, 'volumes', v.id), { recursive: true });
            await writeFile(join(dir, 'volumes', v.id, 'data'), 'some data');
            return fn(join(dir, 'volumes', v.id));
          },
          instancesUsing: () => [],
          exec: async () => ({ code: 0, stdout: '', stderr: '' }),
        }),
        scratch: directoryScratch(join(dir, 'drills')),
      },
      onRoute: (r: RouteOptions) => {
        for (const m of [r.method].flat() as Method[]) if ((m as string) !== 'HEAD') routes.push({ method: m, url: r.url, auth: r.config?.auth });
      },
    });
    await api.ready();
    // The certs routes need the edge role's service; a memory one stands in (no edge runs here).
    const certs = new Map<string, { app: string }>();
    const status = (name: string) => ({ name, state: 'pending' as const, notAfter: undefined, renewAt: undefined, lastAttemptAt: undefined, lastError: undefined, failures: 0, nextAttemptAt: undefined });
    api.certificates.set({
      add: async (app, name) => (certs.set(name, { app }), status(name)),
      list: async (app) => [...certs].filter(([, c]) => app === undefined || c.app === app).map(([n, c]) => ({ ...status(n), app: c.app })),
      show: async (name) => (certs.has(name) ? { ...status(name), app: certs.get(name)!.app } : undefined),
      remove: async (name) => certs.delete(name),
    });
    archive = await ociArchive();
    // A host for deploys to place instances on (no agent runs them here).
    const at = clock.now().toISOString();
    await store.hosts.register({ id: 'hst_00000000000000000000000000', name: 'authz-host', region: 'local', status: 'ready', capacity: { memoryBytes: 8 * 1024 ** 3, cpus: 4 }, lastHeartbeat: at, createdAt: at });

    const first = await call('POST', '/v1/auth/signup', undefined, { email: 'owner@example.com', password: PASSWORD, org: 'acme' });
    ok(first, 'first signup');
    personas.owner = { email: 'owner@example.com', token: body(first).session.token, role: 'owner' };
    for (const role of ROLES) if (role !== 'owner') personas[role] = await fresh(role);
    appName = await newApp();
    const t = await call('POST', '/v1/tokens', personas.owner.token, { name: 'reader', scope: 'read', org: 'acme' });
    ok(t, 'read token');
    readToken = body(t).secret;

    // "strict" requires MFA; its owner has it, its new member does not.
    const strictOwner = await fresh('viewer');
    ok(await call('POST', '/v1/orgs', strictOwner.token, { name: 'strict' }), 'create strict');
    const e = await call('POST', '/v1/auth/mfa/enable', strictOwner.token);
    ok(await call('POST', '/v1/auth/mfa/confirm', strictOwner.token, { code: totpCode(body(e).secret, clock.now().getTime()) }), 'strict owner mfa');
    ok(await call('PUT', '/v1/orgs/strict/policy', strictOwner.token, { require_mfa: true }), 'require mfa');
    const inv = await call('POST', '/v1/orgs/strict/invites', strictOwner.token, { role: 'developer' });
    ok(inv, 'strict invite');
    const b = await call('POST', '/v1/auth/signup', undefined, { email: 'blocked@example.com', password: PASSWORD, invite: body(inv).invite.code });
    ok(b, 'blocked signup');
    blocked = { email: 'blocked@example.com', token: body(b).session.token, role: 'developer' };
  });

  after(async () => {
    await api?.close();
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('every route declares "none" or an action, and only the public few say "none"', () => {
    assert.ok(routes.length >= 20, `collected ${routes.length} routes`);
    const undeclared = routes.filter((r) => r.auth === undefined).map((r) => `${r.method} ${r.url}`);
    assert.deepEqual(undeclared, [], 'routes without config.auth');
    const unknown = routes.filter((r) => r.auth !== 'none' && r.auth !== 'host' && !(ACTIONS as readonly unknown[]).includes(r.auth)).map((r) => `${r.method} ${r.url}: ${String(r.auth)}`);
    assert.deepEqual(unknown, [], 'routes declaring something that is not an action');
    const open = routes.filter((r) => r.auth === 'none').map((r) => `${r.method} ${r.url}`);
    assert.deepEqual(open.filter((r) => !PUBLIC.has(r)), [], 'unexpected public routes');
  });

  /** leastRole is the weakest role that may perform action (every role, for account actions). */
  function leastRole(action: Action): Role {
    const order: Role[] = ['viewer', 'auditor', 'developer', 'admin', 'owner'];
    if (!(ORG_ACTIONS as readonly string[]).includes(action)) return 'viewer';
    return order.find((r) => can(r, action))!;
  }

  /** without returns a credential lacking the capability for action, and what it is. */
  function without(action: Action): { token: string; label: string; code: string } {
    if ((ORG_ACTIONS as readonly string[]).includes(action) && !can('viewer', action)) return { token: personas.viewer.token, label: 'viewer', code: 'forbidden' };
    if (!SCOPE_ACTIONS.read.has(action)) return { token: readToken, label: 'read-scoped token', code: 'forbidden' };
    return { token: blocked.token, label: 'member of an org requiring MFA, without MFA', code: 'mfa_required' };
  }

  test('Nomad\'s four cases, for every authenticated route', async () => {
    const checked: string[] = [];
    for (const r of routes) {
      if (r.auth === 'none' || r.auth === undefined || r.auth === 'host') continue;
      const action = r.auth as Action;
      const name = `${r.method} ${r.url} (${action})`;

      const anon = await call(r.method, fill(r.url.replace(/:(?!org|app)\w+/g, 'x')));
      assert.equal(anon.statusCode, 401, `${name}, no credential: ${anon.body}`);
      assert.equal(body(anon).error.code, 'unauthenticated', name);

      const lacking = without(action);
      const denied = await request(r.method, r.url, personas.owner);
      const d = await call(r.method, denied.url, lacking.token, denied.payload);
      assert.equal(d.statusCode, 403, `${name}, ${lacking.label}: ${d.body}`);
      assert.equal(body(d).error.code, lacking.code, `${name}, ${lacking.label}`);

      for (const role of [leastRole(action), 'owner' as const]) {
        const who = personas[role];
        const c = await request(r.method, r.url, who);
        const res = await call(r.method, c.url, c.token ?? who.token, c.payload);
        assert.ok(res.statusCode >= 200 && res.statusCode < 300, `${name}, as ${role}: ${res.statusCode} ${res.body}`);
      }
      checked.push(name);
    }
    assert.ok(checked.length >= 15, `checked ${checked.length} routes`);
  });

  test('agent routes (auth "host") take a host credential and refuse every person\'s, whatever the role', async () => {
    const hostRoutes = routes.filter((r) => r.auth === 'host');
    assert.ok(hostRoutes.length >= 1, 'the secrets delivery route is an agent route');
    const people = [...ROLES.map((role) => ({ label: role, token: personas[role].token })), { label: 'read-scoped token', token: readToken }, { label: 'MFA-blocked member', token: blocked.token }];
    for (const r of hostRoutes) {
      const name = `${r.method} ${r.url}`;
      const anon = await call(r.method, r.url, undefined, {});
      assert.equal(anon.statusCode, 401, `${name}, no credential: ${anon.body}`);
      for (const who of people) {
        const res = await call(r.method, r.url, who.token, { token: 'ward_dlv_' + 'A'.repeat(43) });
        assert.equal(res.statusCode, 401, `${name}, ${who.label}: ${res.body}`);
        assert.equal(body(res).error.code, 'unauthenticated', `${name}, ${who.label}`);
      }
      const forged = await call(r.method, r.url, 'ward_hst_' + 'A'.repeat(43), { token: 'ward_dlv_' + 'A'.repeat(43) });
      assert.equal(forged.statusCode, 401, `${name}, a forged host credential: ${forged.body}`);
    }
  });

  test('an unenrolled member of an MFA org may enrol and log out, and nothing else', async () => {
    for (const r of routes) {
      if (r.auth === 'none' || r.auth === undefined || r.auth === 'account:enrol' || r.auth === 'host') continue;
      const c = await request(r.method, r.url, personas.owner);
      const res = await call(r.method, c.url, blocked.token, c.payload);
      assert.equal(res.statusCode, 403, `${r.method} ${r.url}: ${res.body}`);
      assert.equal(body(res).error.code, 'mfa_required');
      assert.match(body(res).error.hint, /ward auth mfa enable/);
    }
    // Enrolling lifts the block at once.
    const e = await call('POST', '/v1/auth/mfa/enable', blocked.token);
    assert.equal(e.statusCode, 201, e.body);
    assert.equal((await call('GET', '/v1/apps', blocked.token)).statusCode, 403, 'a pending factor is not enough');
    const c = await call('POST', '/v1/auth/mfa/confirm', blocked.token, { code: totpCode(body(e).secret, clock.now().getTime()) });
    assert.equal(c.statusCode, 200, c.body);
    assert.equal((await call('GET', '/v1/apps', blocked.token)).statusCode, 200);
  });
});
