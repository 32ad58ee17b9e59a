import type { FastifyInstance } from 'fastify';
import { UserError } from '../../core/index.ts';
import { normalizeHost } from '../../edge/index.ts';
import type { CertificateStatus } from '../../edge/index.ts';
import type { Services } from '../app.ts';
import { ctxOf, principalOf } from '../auth.ts';
import { appParam, errorResponses } from '../schemas.ts';

/**
 * CertificateBackend is what the certs routes use: the edge role's certificate service (single node:
 * the CertManager over the StoreCertStore in the Store). `app` is the app that asked for a name.
 */
export interface CertificateBackend {
  add(app: string, name: string): Promise<CertificateStatus>;
  list(app?: string): Promise<Array<CertificateStatus & { app: string | undefined }>>;
  show(name: string): Promise<(CertificateStatus & { app: string | undefined }) | undefined>;
  remove(name: string): Promise<boolean>;
}

/** CertificateHolder is set by startServer once the edge role runs; without it the routes answer `unavailable`. */
export class CertificateHolder {
  #backend: CertificateBackend | undefined;
  set(backend: CertificateBackend | undefined): void {
    this.#backend = backend;
  }
  get(): CertificateBackend {
    if (!this.#backend) {
      throw new UserError('unavailable', 'certificates are managed by the edge role, which this server does not run', {
        hint: 'run ward server with the edge role (--roles control,agent,edge, the default)',
      });
    }
    return this.#backend;
  }
}

const nameParams = {
  type: 'object',
  required: ['app', 'hostname'],
  properties: { app: { type: 'string', maxLength: 63 }, hostname: { type: 'string', maxLength: 253 } },
} as const;
const maybeTime = { type: ['string', 'null'], format: 'date-time' } as const;

const certificate = {
  type: 'object',
  required: ['hostname', 'app', 'status', 'not_after', 'renew_at', 'last_attempt_at', 'last_error', 'failures', 'next_attempt_at'],
  properties: {
    hostname: { type: 'string' },
    app: { type: ['string', 'null'], description: 'The app the name belongs to (`ward certs add -a`, or the first app whose ward.toml routed it).' },
    status: { type: 'string', enum: ['pending', 'valid', 'failing', 'expired'] },
    not_after: maybeTime,
    renew_at: maybeTime,
    last_attempt_at: maybeTime,
    last_error: { type: ['string', 'null'], description: 'What the CA or the validation said on the last failed attempt.' },
    failures: { type: 'integer', description: 'Consecutive failed attempts.' },
    next_attempt_at: maybeTime,
  },
} as const;

const view = (s: CertificateStatus & { app: string | undefined }) => ({
  hostname: s.name,
  app: s.app ?? null,
  status: s.state,
  not_after: s.notAfter ?? null,
  renew_at: s.renewAt ?? null,
  last_attempt_at: s.lastAttemptAt ?? null,
  last_error: s.lastError ?? null,
  failures: s.failures,
  next_attempt_at: s.nextAttemptAt ?? null,
});

function hostnameOf(raw: string): string {
  const name = normalizeHost(raw);
  if (name === undefined || name.startsWith('[') || /^[\d.]+$/.test(name) || !name.includes('.') || name !== raw.toLowerCase().replace(/\.$/, '')) {
    throw new UserError('bad_request', `"${raw.slice(0, 80)}" is not a hostname a certificate can be issued for`, { hint: 'give a DNS name like www.example.com, without scheme, port or path' });
  }
  return name;
}

/** certRoutes: `ward certs add/list/show/remove`, scoped to an app; changes are audited. */
export const certRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.get<{ Params: { app: string } }>('/v1/apps/:app/certs', {
    config: { auth: 'app:read' },
    schema: {
      summary: 'The certificates the app added, with status and last error',
      tags: ['certs'],
      params: appParam,
      response: { 200: { type: 'object', required: ['certificates'], properties: { certificates: { type: 'array', items: certificate } } }, ...errorResponses(401, 404, 503) },
    },
  }, async (req) => {
    const a = await s.apps.resolve(principalOf(req), req.params.app, 'app:read', ctxOf(req));
    return { certificates: (await s.certificates.get().list(a.name)).map(view) };
  });

  app.post<{ Params: { app: string }; Body: { hostname: string } }>('/v1/apps/:app/certs', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Manage a certificate for a hostname (issued by ACME) and route the name to the app',
      tags: ['certs'],
      params: appParam,
      body: { type: 'object', required: ['hostname'], additionalProperties: false, properties: { hostname: { type: 'string', maxLength: 253 } } },
      response: { 201: { type: 'object', required: ['certificate'], properties: { certificate } }, ...errorResponses(400, 401, 403, 404, 409, 503) },
    },
  }, async (req, reply) => {
    const ctx = ctxOf(req);
    const a = await s.apps.resolve(principalOf(req), req.params.app, 'app:deploy', ctx);
    const name = hostnameOf(req.body.hostname);
    const certs = s.certificates.get();
    const existing = await certs.show(name);
    if (existing && existing.app !== undefined && existing.app !== a.name) {
      throw new UserError('name_taken', `${name} was added by another app`, { hint: 'remove it from that app first: ward certs remove' });
    }
    const status = await certs.add(a.name, name);
    await s.audit.record(s.store, ctx, { orgId: a.orgId, action: 'cert.add', target: a.id, outcome: 'success', details: { app: a.name, hostname: name } });
    req.log.info({ app_id: a.id, hostname: name }, 'certificate added');
    reply.code(201);
    return { certificate: view({ ...status, app: a.name }) };
  });

  app.get<{ Params: { app: string; hostname: string } }>('/v1/apps/:app/certs/:hostname', {
    config: { auth: 'app:read' },
    schema: {
      summary: 'One certificate\'s status and last error',
      tags: ['certs'],
      params: nameParams,
      response: { 200: { type: 'object', required: ['certificate'], properties: { certificate } }, ...errorResponses(401, 404, 503) },
    },
  }, async (req) => {
    const a = await s.apps.resolve(principalOf(req), req.params.app, 'app:read', ctxOf(req));
    const c = await s.certificates.get().show(req.params.hostname.toLowerCase());
    if (!c || c.app !== a.name) throw new UserError('not_found', `no certificate for ${req.params.hostname.slice(0, 253)} in app ${a.name}`, { hint: 'ward certs list shows the app\'s certificates' });
    return { certificate: view(c) };
  });

  app.delete<{ Params: { app: string; hostname: string } }>('/v1/apps/:app/certs/:hostname', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Stop managing a hostname\'s certificate and delete it',
      tags: ['certs'],
      params: nameParams,
      response: { 200: { type: 'object', required: ['removed'], properties: { removed: { type: 'string' } } }, ...errorResponses(401, 403, 404, 503) },
    },
  }, async (req) => {
    const ctx = ctxOf(req);
    const a = await s.apps.resolve(principalOf(req), req.params.app, 'app:deploy', ctx);
    const name = req.params.hostname.toLowerCase();
    const certs = s.certificates.get();
    const c = await certs.show(name);
    if (!c || c.app !== a.name) throw new UserError('not_found', `no certificate for ${name.slice(0, 253)} in app ${a.name}`, { hint: 'ward certs list shows the app\'s certificates' });
    await certs.remove(name);
    await s.audit.record(s.store, ctx, { orgId: a.orgId, action: 'cert.remove', target: a.id, outcome: 'success', details: { app: a.name, hostname: name } });
    req.log.info({ app_id: a.id, hostname: name }, 'certificate removed');
    return { removed: name };
  });
};
