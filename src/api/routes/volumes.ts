import type { FastifyInstance } from 'fastify';
import type { Services } from '../app.ts';
import { ctxOf, principalOf } from '../auth.ts';
import { appParam, errorResponses, volumeParam } from '../schemas.ts';
import type { VolumeView } from '../../services/index.ts';

// An app's encrypted volumes (docs/volumes.md). A volume's key never leaves the control plane through
// this API: no response schema has a field that could carry one.


const volume = {
  type: 'object',
  required: ['id', 'name', 'app', 'region', 'host', 'size_bytes', 'size', 'encryption', 'encryption_description', 'formatted_at', 'attached', 'created_at'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    app: { type: 'string' },
    region: { type: 'string' },
    host: { type: 'string', description: 'The host holding the loop file; instances that mount the volume run there.' },
    size_bytes: { type: 'integer' },
    size: { type: 'string' },
    encryption: { type: ['string', 'null'], enum: ['luks2', 'fscrypt', null], description: 'The backend it was formatted with; null until its first mount.' },
    encryption_description: { type: 'string' },
    formatted_at: { type: ['string', 'null'] },
    attached: { type: 'array', items: { type: 'string' }, description: 'Instances of the app that mount it (wanting to run or not yet stopped).' },
    created_at: { type: 'string', format: 'date-time' },
  },
} as const;

const one = { type: 'object', required: ['volume'], properties: { volume } } as const;

/** volumeRoutes: create, list, show and destroy (crypto-erase) an app's volumes. */
export const volumeRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.get<{ Params: { app: string } }>('/v1/apps/:app/volumes', {
    config: { auth: 'app:read' },
    schema: {
      summary: 'The app\'s volumes',
      tags: ['volumes'],
      params: appParam,
      response: { 200: { type: 'object', required: ['volumes'], properties: { volumes: { type: 'array', items: volume } } }, ...errorResponses(401, 404) },
    },
  }, async (req) => ({ volumes: (await s.volumes.list(principalOf(req), req.params.app, ctxOf(req))).volumes }));

  app.post<{ Params: { app: string }; Body: { name: string; size: string | number; region?: string } }>('/v1/apps/:app/volumes', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Create an encrypted volume with its own random key',
      description: 'size: "1gb", "512mb" or bytes; 64 MiB to 16 TiB, whole MiB. region: a region a host runs in (default: any).',
      tags: ['volumes'],
      params: appParam,
      body: {
        type: 'object',
        required: ['name', 'size'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', maxLength: 63 },
          size: { anyOf: [{ type: 'string', maxLength: 32 }, { type: 'integer' }] },
          region: { type: 'string', maxLength: 63 },
        },
      },
      response: { 201: one, ...errorResponses(400, 401, 403, 404, 409, 503) },
    },
  }, async (req, reply) => {
    const v: VolumeView = await s.volumes.create(principalOf(req), req.params.app, req.body, ctxOf(req));
    req.log.info({ volume_id: v.id, app: v.app, size_bytes: v.size_bytes, host: v.host }, 'volume created');
    return reply.status(201).send({ volume: v });
  });

  app.get<{ Params: { app: string; volume: string } }>('/v1/apps/:app/volumes/:volume', {
    config: { auth: 'app:read' },
    schema: {
      summary: 'One volume, with the encryption it uses',
      tags: ['volumes'],
      params: volumeParam,
      response: { 200: one, ...errorResponses(401, 404) },
    },
  }, async (req) => ({ volume: await s.volumes.show(principalOf(req), req.params.app, req.params.volume, ctxOf(req)) }));

  app.delete<{ Params: { app: string; volume: string } }>('/v1/apps/:app/volumes/:volume', {
    config: { auth: 'app:destroy' },
    schema: {
      summary: 'Destroy a volume: its key first (crypto-erase), then its file',
      description: 'Refused (volume_in_use) while an instance of the app mounts it.',
      tags: ['volumes'],
      params: volumeParam,
      response: {
        200: {
          type: 'object',
          required: ['volume', 'key_destroyed', 'file_removed'],
          properties: { volume, key_destroyed: { type: 'boolean' }, file_removed: { type: 'boolean', description: 'false: the host could not be reached now; the file is unreadable without the key all the same.' } },
        },
        ...errorResponses(401, 403, 404, 409),
      },
    },
  }, async (req) => {
    const r = await s.volumes.destroy(principalOf(req), req.params.app, req.params.volume, ctxOf(req));
    req.log.info({ volume_id: r.volume.id, app: r.volume.app, file_removed: r.file_removed }, 'volume destroyed');
    return r;
  });
};
