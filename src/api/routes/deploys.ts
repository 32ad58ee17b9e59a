import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseDuration, UserError, type Release } from '../../core/index.ts';
import type { Deployer } from '../../scheduler/index.ts';
import type { DeployService, InstanceStatus, LogSourceEntry, ScaleView } from '../../services/index.ts';
import type { Services } from '../app.ts';
import { ctxOf, principalOf } from '../auth.ts';
import { appParam, errorResponses } from '../schemas.ts';
import { appView } from '../views.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** deployer drives releases to succeeded or failed; startServer starts and stops it. */
    deployer: Deployer;
  }
}

/** DeployRoutesDeps is what the deploy routes need besides the shared services. */
export interface DeployRoutesDeps {
  deploys: DeployService;
}

// Views: the API's snake_case wire form of releases and instances. Only fields named here leave the server.

export const releaseView = (r: Release) => ({
  id: r.id,
  version: r.version,
  status: r.status,
  reason: r.reason,
  image: r.imageRef,
  digest: r.imageDigest,
  strategy: r.strategy,
  // What the deploy ends with and where it stands ("2/3 replaced"); null for releases placed up front.
  target_count: r.targetCount ?? null,
  progress: r.progress ?? null,
  secrets_version: r.secretsVersion,
  created_by: r.createdBy,
  created_at: r.createdAt,
  updated_at: r.updatedAt,
});

export const instanceView = (i: InstanceStatus) => ({
  id: i.id,
  release: i.releaseVersion,
  region: i.region,
  host: i.hostName,
  state: i.observedState,
  desired_state: i.desiredState,
  health: i.health,
  private_ip: i.privateIpv6,
  private_ipv4: i.privateIpv4,
  restarts: i.restarts,
  started_at: i.startedAt,
  last_exit: i.lastExitAt === null && i.lastExitReason === null ? null : { code: i.lastExitCode, reason: i.lastExitReason, at: i.lastExitAt },
  // The last output of an instance that failed (kept after it is stopped): what a deploy error shows.
  ...(i.lastLog ? { last_log: i.lastLog } : {}),
});

const nullable = (type: string) => ({ type: [type, 'null'] });

const releaseSchema = {
  $id: 'Release',
  type: 'object',
  required: ['id', 'version', 'status', 'image', 'digest', 'strategy', 'created_at'],
  properties: {
    id: { type: 'string' },
    version: { type: 'integer' },
    status: { type: 'string', enum: ['pending', 'running', 'succeeded', 'failed', 'rolled_back'] },
    reason: nullable('string'),
    image: { type: 'string', description: 'The image reference deployed (a registry reference, or sha256:… for an upload).' },
    digest: { type: 'string', description: 'The manifest digest every instance of the release runs.' },
    strategy: { type: 'string', enum: ['rolling', 'canary', 'bluegreen', 'immediate'] },
    target_count: { type: ['integer', 'null'], description: 'How many instances the deploy ends with; its strategy places them step by step.' },
    progress: { type: ['string', 'null'], description: 'Where the deploy stands, for people: "2/3 replaced", "1/2 healthy".' },
    secrets_version: nullable('integer'),
    created_by: nullable('string'),
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
} as const;

const instanceSchema = {
  $id: 'Instance',
  type: 'object',
  required: ['id', 'release', 'region', 'host', 'state', 'desired_state', 'health', 'restarts'],
  properties: {
    id: { type: 'string' },
    release: { type: 'integer', description: 'The release version the instance runs.' },
    region: { type: 'string' },
    host: { type: 'string' },
    state: { type: 'string', enum: ['pending', 'starting', 'running', 'restarting', 'failed', 'stopped'] },
    desired_state: { type: 'string', enum: ['running', 'stopped'] },
    health: { type: 'string', enum: ['unknown', 'passing', 'failing'] },
    private_ip: nullable('string'),
    private_ipv4: nullable('string'),
    restarts: { type: 'integer' },
    started_at: nullable('string'),
    last_exit: {
      type: ['object', 'null'],
      properties: { code: nullable('integer'), reason: nullable('string'), at: nullable('string') },
    },
    last_log: { type: 'array', items: { type: 'string' } },
  },
} as const;

const logLineSchema = {
  $id: 'LogLine',
  type: 'object',
  required: ['time', 'instance', 'stream', 'message'],
  properties: {
    time: { type: 'string', format: 'date-time' },
    instance: { type: 'string' },
    stream: { type: 'string', enum: ['stdout', 'stderr', 'ward', 'edge'] },
    message: { type: 'string' },
  },
} as const;

const releaseList = { type: 'array', items: { $ref: 'Release#' } } as const;
const instanceList = { type: 'array', items: { $ref: 'Instance#' } } as const;

/** sinceTime reads `since` as a duration ago (`10m`) or an ISO-8601 time. */
export function sinceTime(since: string | undefined, now: Date): string | undefined {
  if (since === undefined || since === '') return undefined;
  if (/^\d{4}-\d{2}-\d{2}T/.test(since) && Number.isFinite(Date.parse(since))) return new Date(since).toISOString();
  try {
    return new Date(now.getTime() - parseDuration(since)).toISOString();
  } catch {
    throw new UserError('bad_request', `since must be a duration like 10m or an ISO-8601 time, not ${JSON.stringify(since)}`);
  }
}

function positiveInt(v: string | undefined, what: string, max: number): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) throw new UserError('bad_request', `${what} must be a whole number from 1 to ${max}`);
  return Number(v);
}

const lineOf = (e: LogSourceEntry) => JSON.stringify({ time: e.time, instance: e.instance, stream: e.stream, message: e.message }) + '\n';

/**
 * deployRoutes: image uploads, deploy, status, releases, restart and logs of an app. Uploads and log
 * streams are not JSON bodies, so they live in plugins of their own below.
 */
export const deployRoutes = (s: Services, d: DeployRoutesDeps) => async (app: FastifyInstance) => {
  app.addSchema(releaseSchema);
  app.addSchema(instanceSchema);
  app.addSchema(logLineSchema);
  const { deploys } = d;

  app.post<{ Params: { app: string }; Body: { image: string; config?: Record<string, unknown>; strategy?: string } }>('/v1/apps/:app/deploy', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Deploy an image as a new release',
      description: 'Makes release N+1 from an image (a registry reference, pulled by the server, or the sha256 digest of an upload) and the app\'s ward.toml (parsed, validated again here), and returns at once; the release then runs its strategy (rolling by default; `strategy` here wins over ward.toml\'s), which places and replaces instances step by step. Follow it with GET /v1/apps/{app}/releases/{version}.',
      tags: ['deploys'],
      params: appParam,
      body: {
        type: 'object',
        required: ['image'],
        additionalProperties: false,
        properties: {
          image: { type: 'string', minLength: 1, maxLength: 512 },
          config: { type: 'object', description: 'ward.toml as parsed from TOML (snake_case keys).' },
          strategy: { type: 'string', enum: ['rolling', 'canary', 'bluegreen', 'immediate'] },
        },
      },
      response: {
        201: {
          type: 'object',
          required: ['release', 'instances', 'warnings'],
          properties: { app: { $ref: 'App#' }, release: { $ref: 'Release#' }, instances: instanceList, warnings: { type: 'array', items: { type: 'string' } } },
        },
        ...errorResponses(400, 401, 403, 404, 409, 503),
      },
    },
  }, async (req, reply) => {
    const r = await deploys.deploy(principalOf(req), req.params.app, req.body, ctxOf(req));
    req.log.info({ app_id: r.app.id, release_id: r.release.id, version: r.release.version, digest: r.release.imageDigest, instances: r.instances.length }, 'release created');
    const hosts = new Map((await s.store.hosts.list()).map((h) => [h.id, h.name]));
    return reply.status(201).send({
      app: appView(r.app),
      release: releaseView(r.release),
      instances: r.instances.map((i) => instanceView({ ...i, hostName: hosts.get(i.hostId) ?? i.hostId, releaseVersion: r.release.version })),
      warnings: r.warnings,
    });
  });

  app.get<{ Params: { app: string } }>('/v1/apps/:app/status', {
    config: { auth: 'app:read' },
    schema: {
      summary: 'The app\'s current release and instances',
      tags: ['deploys'],
      params: appParam,
      response: {
        200: { type: 'object', required: ['app', 'release', 'instances'], properties: { app: { $ref: 'App#' }, release: { anyOf: [{ $ref: 'Release#' }, { type: 'null' }] }, instances: instanceList } },
        ...errorResponses(401, 404),
      },
    },
  }, async (req) => {
    const st = await deploys.status(principalOf(req), req.params.app, ctxOf(req));
    return { app: appView(st.app), release: st.release ? releaseView(st.release) : null, instances: st.instances.map(instanceView) };
  });

  app.get<{ Params: { app: string }; Querystring: { limit?: string } }>('/v1/apps/:app/releases', {
    config: { auth: 'app:read' },
    schema: {
      summary: 'The app\'s releases, newest first',
      tags: ['deploys'],
      params: appParam,
      querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'string', pattern: '^[0-9]{1,4}$' } } },
      response: { 200: { type: 'object', required: ['releases'], properties: { releases: releaseList } }, ...errorResponses(400, 401, 404) },
    },
  }, async (req) => {
    const r = await deploys.releases(principalOf(req), req.params.app, positiveInt(req.query.limit, 'limit', 1000), ctxOf(req));
    return { releases: r.releases.map(releaseView) };
  });

  app.get<{ Params: { app: string; version: string } }>('/v1/apps/:app/releases/:version', {
    config: { auth: 'app:read' },
    schema: {
      summary: 'One release and its instances',
      tags: ['deploys'],
      params: { type: 'object', required: ['app', 'version'], properties: { app: { type: 'string', maxLength: 63 }, version: { type: 'string', pattern: '^v?[0-9]{1,9}$' } } },
      response: { 200: { type: 'object', required: ['release', 'instances'], properties: { release: { $ref: 'Release#' }, instances: instanceList } }, ...errorResponses(400, 401, 404) },
    },
  }, async (req) => {
    const r = await deploys.release(principalOf(req), req.params.app, Number(req.params.version.replace(/^v/, '')), ctxOf(req));
    return { release: releaseView(r.release), instances: r.instances.map(instanceView) };
  });

  app.post<{ Params: { app: string; version: string } }>('/v1/apps/:app/releases/:version/rollback', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Roll back to an earlier release',
      description: 'Makes a new release from release {version}\'s image digest and normalized config, with the app\'s current secrets version, and deploys it with the strategy the app\'s current release configures (docs/deploys.md). Refused: an unknown version (404), one that never ran (400), while a deploy runs (409). Answers like a deploy; follow it with GET /v1/apps/{app}/releases/{new version}.',
      tags: ['deploys'],
      params: { type: 'object', required: ['app', 'version'], properties: { app: { type: 'string', maxLength: 63 }, version: { type: 'string', pattern: '^v?[0-9]{1,9}$' } } },
      response: {
        201: { type: 'object', required: ['release', 'instances'], properties: { app: { $ref: 'App#' }, release: { $ref: 'Release#' }, instances: instanceList, warnings: { type: 'array', items: { type: 'string' } } } },
        ...errorResponses(400, 401, 403, 404, 409, 503),
      },
    },
  }, async (req, reply) => {
    const r = await deploys.rollback(principalOf(req), req.params.app, Number(req.params.version.replace(/^v/, '')), ctxOf(req));
    req.log.info({ app_id: r.app.id, release_id: r.release.id, version: r.release.version, digest: r.release.imageDigest }, 'rollback release created');
    const hosts = new Map((await s.store.hosts.list()).map((h) => [h.id, h.name]));
    return reply.status(201).send({
      app: appView(r.app),
      release: releaseView(r.release),
      instances: r.instances.map((i) => instanceView({ ...i, hostName: hosts.get(i.hostId) ?? i.hostId, releaseVersion: r.release.version })),
      warnings: r.warnings,
    });
  });

  const scaleResponse = {
    type: 'object',
    required: ['count', 'regions', 'min_instances', 'max', 'release'],
    properties: {
      count: { type: 'integer', description: 'Instances that run or should, in every region.' },
      regions: { type: 'object', additionalProperties: { type: 'integer' } },
      min_instances: { type: 'integer' },
      max: { type: 'integer', description: 'The most instances one app may be scaled to.' },
      release: { type: ['integer', 'null'], description: 'The version new instances run.' },
      started: { type: 'array', items: { type: 'string' } },
      stopped: { type: 'array', items: { type: 'string' } },
    },
  } as const;
  const scaleView = (v: ScaleView) => ({ count: v.count, regions: v.regions, min_instances: v.minInstances, max: v.max, release: v.release?.version ?? null });

  app.get<{ Params: { app: string } }>('/v1/apps/:app/scale', {
    config: { auth: 'app:read' },
    schema: { summary: 'How many instances the app runs, per region', tags: ['deploys'], params: appParam, response: { 200: scaleResponse, ...errorResponses(401, 404) } },
  }, async (req) => scaleView(await deploys.scaleShow(principalOf(req), req.params.app, ctxOf(req))));

  app.post<{ Params: { app: string }; Body: { count: number; region?: string } }>('/v1/apps/:app/scale', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Set how many instances of the current release run',
      description: 'More: new instances of the current release are placed (spread over hosts). Fewer: the newest extras stop. With `region`, the count is for that region. Refused below [http_service] min_instances, above `max` (400), during a deploy or before the first (409).',
      tags: ['deploys'],
      params: appParam,
      body: { type: 'object', required: ['count'], additionalProperties: false, properties: { count: { type: 'integer' }, region: { type: 'string', minLength: 1, maxLength: 63 } } },
      response: { 200: scaleResponse, ...errorResponses(400, 401, 403, 404, 409, 503) },
    },
  }, async (req) => {
    const r = await deploys.scale(principalOf(req), req.params.app, { count: req.body.count, region: req.body.region }, ctxOf(req));
    return { ...scaleView(r), started: r.started, stopped: r.stopped };
  });

  app.post<{ Params: { app: string }; Body: { instance?: string } | undefined }>('/v1/apps/:app/restart', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Restart every instance of the app, or one',
      description: 'Each instance is stopped (kill signal, then SIGKILL after kill_timeout) and started again by its agent; a failed instance starts afresh.',
      tags: ['deploys'],
      params: appParam,
      body: { type: 'object', additionalProperties: false, properties: { instance: { type: 'string', maxLength: 64 } } },
      response: { 200: { type: 'object', required: ['instances'], properties: { instances: instanceList } }, ...errorResponses(400, 401, 403, 404, 409) },
    },
  }, async (req) => {
    const r = await deploys.restart(principalOf(req), req.params.app, req.body?.instance, ctxOf(req));
    return { instances: r.instances.map(instanceView) };
  });

  app.get<{ Params: { app: string }; Querystring: { instance?: string; since?: string; limit?: string; follow?: string } }>('/v1/apps/:app/logs', {
    config: { auth: 'app:read' },
    schema: {
      summary: 'The app\'s logs; with follow=1, an NDJSON stream of new lines',
      description: 'Without follow: `{logs: [...]}`, oldest first, the last `limit` (default 500) lines since `since` (a duration like 10m, or a time). With follow=1: `application/x-ndjson`, one LogLine per line: those lines first, then new ones as they are written, until the client goes away.',
      tags: ['deploys'],
      params: appParam,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          instance: { type: 'string', maxLength: 64 },
          since: { type: 'string', maxLength: 40 },
          limit: { type: 'string', pattern: '^[0-9]{1,5}$' },
          follow: { type: 'string', enum: ['0', '1', 'true', 'false'] },
        },
      },
      response: { 200: { type: 'object', required: ['logs'], properties: { logs: { type: 'array', items: { $ref: 'LogLine#' } } } }, ...errorResponses(400, 401, 404, 503) },
    },
  }, async (req, reply) => {
    const p = principalOf(req);
    const q = req.query;
    const since = sinceTime(q.since, deploys.now());
    const limit = positiveInt(q.limit, 'limit', 10_000) ?? 500;
    const follow = q.follow === '1' || q.follow === 'true';
    if (!follow) {
      const r = await deploys.logs(p, req.params.app, { instance: q.instance, since, limit }, ctxOf(req));
      return { logs: r.entries.map((e) => ({ time: e.time, instance: e.instance, stream: e.stream, message: e.message })) };
    }
    return streamLogs(deploys, req, reply, { instance: q.instance, since, limit });
  });
};

/**
 * streamLogs answers a follow request: the backlog, then new lines as NDJSON until the client leaves.
 * It subscribes before reading the backlog, so no line written in between is lost, and drops the
 * subscribed lines the backlog already had.
 */
async function streamLogs(deploys: DeployService, req: FastifyRequest<{ Params: { app: string } }>, reply: FastifyReply, q: { instance: string | undefined; since: string | undefined; limit: number }) {
  const p = principalOf(req);
  const early: LogSourceEntry[] = [];
  let live: ((e: LogSourceEntry) => void) | undefined;
  const unsubscribe = await deploys.follow(p, req.params.app, q.instance, (e) => (live ? live(e) : early.push(e)), ctxOf(req));
  let backlog;
  try {
    backlog = await deploys.logs(p, req.params.app, q, ctxOf(req));
  } catch (e) {
    unsubscribe();
    throw e;
  }
  const out = new PassThrough();
  const seen = new Set(backlog.entries.map(lineOf));
  for (const e of backlog.entries) out.write(lineOf(e));
  for (const e of early) if (!seen.has(lineOf(e))) out.write(lineOf(e));
  seen.clear();
  live = (e) => out.write(lineOf(e));
  const end = () => {
    unsubscribe();
    out.end();
  };
  req.raw.once('close', end);
  out.once('error', end);
  reply.header('content-type', 'application/x-ndjson; charset=utf-8');
  // Proxies must not buffer a live stream.
  reply.header('x-accel-buffering', 'no');
  return reply.send(out);
}

/**
 * imageUploadRoutes: `POST /v1/apps/{app}/images` takes an image archive as the raw request body
 * (application/octet-stream, or application/x-tar), streamed to disk with a size cap, never parsed in
 * memory. Registered in a plugin of its own so that only this route reads raw bodies.
 */
export const imageUploadRoutes = (d: DeployRoutesDeps) => async (app: FastifyInstance) => {
  app.removeAllContentTypeParsers();
  // The body stays a stream: the handler reads it after authorization, with its own limit.
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
  app.post<{ Params: { app: string }; Querystring: { format: string; name?: string } }>('/v1/apps/:app/images', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Upload an image archive for the app',
      description: 'The body is an oci-archive or docker-archive tar (as skopeo writes them; docker-archive may be gzipped). The server imports it into its image store, verifying every blob, and answers with the image\'s digest, which a deploy may then name. The archive is not kept. `ward deploy --image oci-archive:PATH` does this for you.',
      tags: ['deploys'],
      params: appParam,
      querystring: {
        type: 'object',
        required: ['format'],
        additionalProperties: false,
        properties: { format: { type: 'string', enum: ['oci-archive', 'docker-archive'] }, name: { type: 'string', maxLength: 256, description: 'The image inside the archive (a ref name, or name:tag for docker-archive).' } },
      },
      response: {
        201: { type: 'object', required: ['image'], properties: { image: { type: 'object', required: ['digest'], properties: { digest: { type: 'string' }, layers: { type: 'integer' }, size: { type: 'integer' }, bytes: { type: 'integer' } } } } },
        ...errorResponses(400, 401, 403, 404, 413, 503),
      },
    },
  }, async (req, reply) => {
    const body = req.body as NodeJS.ReadableStream | undefined;
    if (!body || typeof (body as AsyncIterable<Buffer>)[Symbol.asyncIterator] !== 'function') throw new UserError('bad_request', 'the request has no body: send the archive');
    const length = req.headers['content-length'];
    let r;
    try {
      r = await d.deploys.upload(principalOf(req), req.params.app, body as AsyncIterable<Buffer>, {
        format: req.query.format,
        selector: req.query.name,
        contentLength: typeof length === 'string' && /^\d+$/.test(length) ? Number(length) : undefined,
      }, ctxOf(req));
    } catch (e) {
      // A refused upload may have gigabytes still coming: close the connection rather than read them.
      reply.raw.setHeader('connection', 'close');
      throw e;
    }
    req.log.info({ app: req.params.app, digest: r.digest, bytes: r.bytes }, 'image uploaded');
    return reply.status(201).send({ image: r });
  });
};
