import type { FastifyInstance } from 'fastify';
import { UserError } from '../../core/index.ts';
import type { SecretChangeResult, SecretsListing } from '../../services/index.ts';
import { hostContext } from '../../services/index.ts';
import type { Services } from '../app.ts';
import { ctxOf, principalOf } from '../auth.ts';
import { appParam, errorResponses } from '../schemas.ts';

// Secrets are write-only: no route here (or anywhere) answers a person with a value, whatever their role.
// Response schemas serialize every answer, so a value could not leave even by mistake: none of them has a
// field that could carry one. The one route that returns values, /v1/agent/secrets, serves host
// credentials only (auth 'host'), never a person's session or API token.

const stage = { type: 'boolean', description: 'Store only; do not roll the app\'s instances (the next deploy applies the change).' } as const;

const appRef = {
  type: 'object',
  required: ['id', 'name'],
  properties: { id: { type: 'string' }, name: { type: 'string' } },
} as const;

const secretItem = {
  type: 'object',
  required: ['name', 'digest', 'version', 'created_at'],
  properties: {
    name: { type: 'string' },
    digest: { type: 'string', description: 'HMAC-SHA256 of the value under a key of the app\'s own, first 16 hex digits: equal values have equal digests.' },
    version: { type: 'integer', description: 'The secrets version that last set this name.' },
    created_at: { type: 'string', format: 'date-time' },
  },
} as const;

const listing = {
  type: 'object',
  required: ['app', 'version', 'secrets'],
  properties: {
    app: appRef,
    version: { type: 'integer', description: 'The app\'s newest secrets version (0: none); the next deploy pins it.' },
    secrets: { type: 'array', items: secretItem },
  },
} as const;

const change = {
  type: 'object',
  required: ['app', 'version', 'changed', 'unchanged', 'staged', 'rollout'],
  properties: {
    app: appRef,
    version: { type: 'integer' },
    changed: { type: 'array', items: { type: 'string' } },
    unchanged: { type: 'array', items: { type: 'string' } },
    staged: { type: 'boolean' },
    rollout: {
      type: 'object',
      required: ['status', 'instances', 'message'],
      properties: {
        status: { type: 'string', enum: ['started', 'staged', 'none', 'deferred'] },
        release: { type: 'integer' },
        instances: { type: 'integer' },
        message: { type: 'string' },
      },
    },
  },
} as const;

const listingView = (l: SecretsListing) => ({
  app: { id: l.app.id, name: l.app.name },
  version: l.version,
  secrets: l.secrets.map((s) => ({ name: s.name, digest: s.digest, version: s.version, created_at: s.createdAt })),
});

const changeView = (c: SecretChangeResult) => ({
  app: { id: c.app.id, name: c.app.name },
  version: c.version,
  changed: c.changed,
  unchanged: c.unchanged,
  staged: c.staged,
  rollout: c.rollout,
});

/** secretRoutes: list, set, unset, import (people); delivery (agents). */
export const secretRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.get<{ Params: { app: string } }>('/v1/apps/:app/secrets', {
    config: { auth: 'app:read' },
    schema: {
      summary: 'The app\'s secrets: names, digests, versions. Never values.',
      tags: ['secrets'],
      params: appParam,
      response: { 200: listing, ...errorResponses(401, 404) },
    },
  }, async (req) => listingView(await s.secrets.list(principalOf(req), req.params.app, ctxOf(req))));

  app.post<{ Params: { app: string }; Body: { values: Record<string, unknown>; stage?: boolean } }>('/v1/apps/:app/secrets', {
    config: { auth: 'secret:write' },
    schema: {
      summary: 'Set secrets (a new version); without stage, roll the app\'s instances onto it',
      tags: ['secrets'],
      params: appParam,
      body: {
        type: 'object',
        required: ['values'],
        additionalProperties: false,
        properties: {
          // Names and values are checked by the service, whose messages never quote a value.
          values: { type: 'object', description: 'NAME: value, strings. Names are environment variable names; values up to 64 KiB.' },
          stage,
        },
      },
      response: { 200: change, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (req) => {
    const r = await s.secrets.set(principalOf(req), req.params.app, req.body.values, { stage: req.body.stage }, ctxOf(req));
    req.log.info({ app_id: r.app.id, secrets_version: r.version, names: r.changed, staged: r.staged }, 'secrets set');
    return changeView(r);
  });

  app.post<{ Params: { app: string }; Body: { names: string[]; stage?: boolean } }>('/v1/apps/:app/secrets/unset', {
    config: { auth: 'secret:write' },
    schema: {
      summary: 'Remove secrets (a new version); without stage, roll the app\'s instances onto it',
      tags: ['secrets'],
      params: appParam,
      body: {
        type: 'object',
        required: ['names'],
        additionalProperties: false,
        properties: { names: { type: 'array', maxItems: 500, items: { type: 'string', maxLength: 255 } }, stage },
      },
      response: { 200: change, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (req) => {
    const r = await s.secrets.unset(principalOf(req), req.params.app, req.body.names, { stage: req.body.stage }, ctxOf(req));
    req.log.info({ app_id: r.app.id, secrets_version: r.version, names: r.changed, staged: r.staged }, 'secrets unset');
    return changeView(r);
  });

  app.post<{ Params: { app: string }; Body: { dotenv: string; stage?: boolean } }>('/v1/apps/:app/secrets/import', {
    config: { auth: 'secret:write' },
    schema: {
      summary: 'Set every variable of a .env text as one new version',
      tags: ['secrets'],
      params: appParam,
      body: {
        type: 'object',
        required: ['dotenv'],
        additionalProperties: false,
        properties: { dotenv: { type: 'string', description: 'The text of a .env file: KEY=VALUE lines, # comments, quoted values.' }, stage },
      },
      response: { 200: change, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (req) => {
    const r = await s.secrets.import(principalOf(req), req.params.app, req.body.dotenv, { stage: req.body.stage }, ctxOf(req));
    req.log.info({ app_id: r.app.id, secrets_version: r.version, names: r.changed, staged: r.staged }, 'secrets imported');
    return changeView(r);
  });

  app.post<{ Body: { token: string } }>('/v1/agent/secrets', {
    config: { auth: 'host' },
    schema: {
      summary: 'Agents only: trade a delivery token for its instance\'s secrets',
      description: 'Authenticated with the host\'s credential (ward_hst_…). The token is single-use, short-lived and bound to one instance placed on this host.',
      tags: ['agent'],
      body: { type: 'object', required: ['token'], additionalProperties: false, properties: { token: { type: 'string', maxLength: 100 } } },
      response: {
        200: {
          type: 'object',
          required: ['instance_id', 'app_id', 'version', 'env'],
          properties: {
            instance_id: { type: 'string' },
            app_id: { type: 'string' },
            version: { type: 'integer' },
            env: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
        ...errorResponses(400, 401, 403, 500),
      },
    },
  }, async (req) => {
    const host = req.agentHost;
    if (!host) throw new UserError('unauthenticated', 'this request needs a valid host credential (ward_hst_…)');
    const r = await s.deliveries.exchange(host, req.body.token, hostContext(host, req.ip || null, req.id || null));
    return { instance_id: r.instanceId, app_id: r.appId, version: r.version, env: r.env };
  });
};
