import type { FastifyInstance } from 'fastify';
import type { Services } from '../app.ts';
import { principalOf } from '../auth.ts';
import { errorResponses } from '../schemas.ts';
import { orgView, orgWithRoleView, sessionView, userView } from '../views.ts';

const credentials = {
  type: 'object',
  required: ['email', 'password'],
  properties: {
    email: { type: 'string', maxLength: 254 },
    password: { type: 'string', maxLength: 1024 },
  },
} as const;

/** authRoutes: signup, login, logout, whoami. */
export const authRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.post<{ Body: { email: string; password: string; org?: string; invite?: string } }>('/v1/auth/signup', {
    config: { auth: 'none' },
    schema: {
      summary: 'Create an account (the first on a server creates its org; later ones need an invite)',
      tags: ['auth'],
      security: [],
      body: {
        ...credentials,
        additionalProperties: false,
        properties: { ...credentials.properties, org: { type: 'string', maxLength: 63 }, invite: { type: 'string', maxLength: 200 } },
      },
      response: {
        201: {
          type: 'object',
          required: ['user', 'org', 'role', 'session'],
          properties: { user: { $ref: 'User#' }, org: { $ref: 'Org#' }, role: { type: 'string' }, session: { $ref: 'Session#' } },
        },
        ...errorResponses(400, 403, 409),
      },
    },
  }, async (req, reply) => {
    const r = await s.accounts.signup(req.body);
    req.log.info({ user_id: r.user.id, org_id: r.org.id, role: r.role }, 'signup');
    return reply.status(201).send({ user: userView(r.user), org: orgView(r.org), role: r.role, session: sessionView(r.session) });
  });

  app.post<{ Body: { email: string; password: string; kind?: 'cli' | 'web' } }>('/v1/auth/login', {
    config: { auth: 'none' },
    schema: {
      summary: 'Exchange email and password for a session token',
      tags: ['auth'],
      security: [],
      body: {
        ...credentials,
        additionalProperties: false,
        properties: { ...credentials.properties, kind: { type: 'string', enum: ['cli', 'web'] }, otp: { type: 'string', maxLength: 16 } },
      },
      response: {
        200: { type: 'object', required: ['user', 'session'], properties: { user: { $ref: 'User#' }, session: { $ref: 'Session#' } } },
        ...errorResponses(400, 401, 429),
      },
    },
  }, async (req) => {
    const r = await s.accounts.login(req.body);
    req.log.info({ user_id: r.user.id }, 'login');
    return { user: userView(r.user), session: sessionView(r.session) };
  });

  app.post('/v1/auth/logout', {
    schema: { summary: 'Revoke the session used for this request', tags: ['auth'], response: { 204: { type: 'null' }, ...errorResponses(401) } },
  }, async (req, reply) => {
    await s.accounts.logout(principalOf(req).sessionId);
    return reply.status(204).send();
  });

  app.get('/v1/auth/whoami', {
    schema: {
      summary: 'The caller and its orgs',
      tags: ['auth'],
      response: {
        200: {
          type: 'object',
          required: ['user', 'orgs'],
          properties: { user: { $ref: 'User#' }, orgs: { type: 'array', items: { $ref: 'OrgWithRole#' } } },
        },
        ...errorResponses(401),
      },
    },
  }, async (req) => {
    const p = principalOf(req);
    const user = (await s.store.users.get(p.userId))!;
    const orgs = await s.orgs.listForUser(p);
    return { user: userView(user), orgs: orgs.map(orgWithRoleView) };
  });
};
