import type { FastifyInstance } from 'fastify';
import type { TokenView } from '../../auth/index.ts';
import type { Services } from '../app.ts';
import { ctxOf, principalOf, sessionOf } from '../auth.ts';
import { errorResponses } from '../schemas.ts';

const tokenSchema = {
  type: 'object',
  required: ['id', 'name', 'scope', 'org', 'app', 'created_at', 'expires_at', 'last_used_at', 'revoked_at'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    scope: { type: 'string', enum: ['read', 'deploy', 'admin'] },
    org: { type: 'object', required: ['id', 'name'], properties: { id: { type: 'string' }, name: { type: 'string' } } },
    app: { type: ['object', 'null'], required: ['id', 'name'], properties: { id: { type: 'string' }, name: { type: 'string' } } },
    created_at: { type: 'string', format: 'date-time' },
    expires_at: { type: 'string', format: 'date-time' },
    last_used_at: { type: ['string', 'null'], format: 'date-time', description: 'Recorded at most once a minute.' },
    revoked_at: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

// The secret is never part of a token's view: it appears once, beside it, in the create answer.
const tokenView = (t: TokenView) => ({
  id: t.id,
  name: t.name,
  scope: t.scope,
  org: { id: t.orgId, name: t.orgName },
  app: t.appId ? { id: t.appId, name: t.appName ?? t.appId } : null,
  created_at: t.createdAt,
  expires_at: t.expiresAt,
  last_used_at: t.lastUsedAt,
  revoked_at: t.revokedAt,
});

/** tokenRoutes: create, list and revoke API tokens. */
export const tokenRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.post<{ Body: { name: string; scope: string; org?: string; app?: string; expires_in?: string } }>('/v1/tokens', {
    config: { auth: 'account:manage' },
    schema: {
      summary: 'Create an API token for one org (and optionally one app); the secret is shown once',
      tags: ['tokens'],
      body: {
        type: 'object',
        required: ['name', 'scope'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', maxLength: 64 },
          scope: { type: 'string', enum: ['read', 'deploy', 'admin'] },
          org: { type: 'string', maxLength: 63 },
          app: { type: 'string', maxLength: 63 },
          expires_in: { type: 'string', maxLength: 16, description: 'A duration, default 30d, at most 365d.' },
        },
      },
      response: {
        201: {
          type: 'object',
          required: ['token', 'secret'],
          properties: { token: tokenSchema, secret: { type: 'string', description: 'The bearer secret (ward_tok_…). Shown only here, once.' } },
        },
        ...errorResponses(400, 401, 403, 404),
      },
    },
  }, async (req, reply) => {
    const b = req.body;
    const r = await s.accounts.tokens.create(sessionOf(req), { name: b.name, scope: b.scope, org: b.org, app: b.app, expiresIn: b.expires_in }, ctxOf(req));
    req.log.info({ token_id: r.token.id, org_id: r.token.orgId, scope: r.token.scope }, 'token created');
    return reply.status(201).send({ token: tokenView(r.token), secret: r.secret });
  });

  app.get('/v1/tokens', {
    config: { auth: 'account:read' },
    schema: {
      summary: 'The API tokens the caller created, revoked and expired ones included',
      tags: ['tokens'],
      response: { 200: { type: 'object', required: ['tokens'], properties: { tokens: { type: 'array', items: tokenSchema } } }, ...errorResponses(401, 403) },
    },
  }, async (req) => ({ tokens: (await s.accounts.tokens.list(principalOf(req))).map(tokenView) }));

  app.delete<{ Params: { id: string } }>('/v1/tokens/:id', {
    config: { auth: 'account:manage' },
    schema: {
      summary: 'Revoke an API token (its creator, or an owner or admin of its org)',
      tags: ['tokens'],
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } },
      response: { 200: { type: 'object', required: ['token'], properties: { token: tokenSchema } }, ...errorResponses(401, 403, 404) },
    },
  }, async (req) => {
    const t = await s.accounts.tokens.revoke(sessionOf(req), req.params.id, ctxOf(req));
    req.log.info({ token_id: t.id }, 'token revoked');
    return { token: tokenView(t) };
  });
};
