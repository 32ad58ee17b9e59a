import type { FastifyInstance } from 'fastify';
import { UserError } from '../../core/index.ts';
import type { Services } from '../app.ts';
import { metricsText } from '../metrics.ts';

/** healthRoutes: liveness and metrics. Both are public; the API listener is loopback-only by default. */
export const healthRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.get('/v1/health', {
    config: { auth: 'none' },
    schema: {
      summary: 'Whether the control plane and its database answer',
      tags: ['system'],
      security: [],
      response: {
        200: {
          type: 'object',
          required: ['status', 'version', 'store'],
          properties: { status: { type: 'string', enum: ['ok'] }, version: { type: 'string' }, store: { type: 'string', enum: ['sqlite', 'postgres'] } },
        },
        503: { $ref: 'Error#' },
      },
    },
  }, async () => {
    try {
      await s.store.ping();
    } catch (e) {
      throw new UserError('unavailable', 'the database does not answer', { cause: e });
    }
    return { status: 'ok', version: s.version, store: s.store.kind };
  });

  app.get('/metrics', { config: { auth: 'none' }, schema: { hide: true } }, async (_req, reply) => {
    reply.header('content-type', s.metrics.registry.contentType);
    return metricsText(s.metrics);
  });
};
