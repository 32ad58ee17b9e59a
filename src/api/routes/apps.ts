import type { FastifyInstance } from 'fastify';
import type { Services } from '../app.ts';
import { ctxOf, principalOf } from '../auth.ts';
import { appParam, errorResponses } from '../schemas.ts';
import { appView } from '../views.ts';

const oneApp = { type: 'object', required: ['app'], properties: { app: { $ref: 'App#' } } } as const;

/** appRoutes: list, create, show, destroy. */
export const appRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.get<{ Querystring: { org?: string } }>('/v1/apps', {
    config: { auth: 'app:read' },
    schema: {
      summary: 'Apps of the caller\'s orgs, or of one org',
      tags: ['apps'],
      querystring: { type: 'object', additionalProperties: false, properties: { org: { type: 'string', maxLength: 63 } } },
      response: { 200: { type: 'object', required: ['apps'], properties: { apps: { type: 'array', items: { $ref: 'App#' } } } }, ...errorResponses(401, 404) },
    },
  }, async (req) => ({ apps: (await s.apps.list(principalOf(req), req.query.org, ctxOf(req))).map(appView) }));

  app.post<{ Body: { name: string; org?: string } }>('/v1/apps', {
    config: { auth: 'app:create' },
    schema: {
      summary: 'Create an app',
      tags: ['apps'],
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string', maxLength: 63 }, org: { type: 'string', maxLength: 63 } },
      },
      response: { 201: oneApp, ...errorResponses(400, 401, 403, 404, 409) },
    },
  }, async (req, reply) => {
    const created = await s.apps.create(principalOf(req), req.body.name, req.body.org, ctxOf(req));
    req.log.info({ app_id: created.id, org_id: created.orgId }, 'app created');
    return reply.status(201).send({ app: appView(created) });
  });

  app.get<{ Params: { app: string } }>('/v1/apps/:app', {
    config: { auth: 'app:read' },
    schema: { summary: 'One app', tags: ['apps'], params: appParam, response: { 200: oneApp, ...errorResponses(401, 404) } },
  }, async (req) => ({ app: appView(await s.apps.resolve(principalOf(req), req.params.app, 'app:read', ctxOf(req))) }));

  app.delete<{ Params: { app: string } }>('/v1/apps/:app', {
    config: { auth: 'app:destroy' },
    schema: { summary: 'Destroy an app', tags: ['apps'], params: appParam, response: { 200: oneApp, ...errorResponses(401, 403, 404) } },
  }, async (req) => {
    const gone = await s.apps.destroy(principalOf(req), req.params.app, ctxOf(req));
    req.log.info({ app_id: gone.id, org_id: gone.orgId }, 'app destroyed');
    return { app: appView(gone) };
  });
};
