import type { FastifyInstance } from 'fastify';
import type { Services } from '../app.ts';
import { ctxOf, principalOf } from '../auth.ts';
import { appParam, errorResponses, orgParam, volumeParam } from '../schemas.ts';
import type { BackupRunView, BackupService, PolicyView, TargetView } from '../../services/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** backups is the BackupService; startServer runs its scheduler (scheduled backups, weekly drills). */
    backups: BackupService;
  }
}

// Encrypted off-site backups of volumes (docs/backups.md). No schema here has a field that could carry
// the org's backup key: answers show the repository with any password in its URL replaced by ***.


const target = {
  type: 'object',
  required: ['org', 'repository', 'kind', 'next_drill_at', 'updated_at'],
  properties: {
    org: { type: 'string' },
    repository: { type: 'string', description: 'The restic repository; a password in its URL is shown as ***.' },
    kind: { type: 'string', enum: ['local', 'sftp', 's3', 'rest', 'unknown'] },
    next_drill_at: { type: 'string', description: 'When the weekly restore drill of the org\'s volumes runs next.' },
    updated_at: { type: 'string' },
  },
} as const;

const retention = {
  type: 'object',
  required: ['daily', 'weekly', 'monthly', 'yearly'],
  properties: { daily: { type: 'integer' }, weekly: { type: 'integer' }, monthly: { type: 'integer' }, yearly: { type: 'integer' } },
} as const;

const policy = {
  type: 'object',
  required: ['volume', 'schedule', 'retention', 'next_run_at'],
  properties: {
    volume: { type: 'string' },
    schedule: { type: 'string', description: 'Cron, five fields, UTC.' },
    retention,
    next_run_at: { type: ['string', 'null'], description: 'Null until the scheduler or a change first sets it.' },
  },
} as const;

const run = {
  type: 'object',
  required: ['id', 'volume', 'kind', 'trigger', 'status', 'snapshot_id', 'started_at'],
  properties: {
    id: { type: 'string' },
    volume: { type: 'string' },
    volume_id: { type: 'string' },
    kind: { type: 'string', enum: ['backup', 'restore', 'drill'] },
    trigger: { type: 'string', enum: ['manual', 'schedule'] },
    status: { type: 'string', enum: ['running', 'succeeded', 'failed'] },
    snapshot_id: { type: ['string', 'null'] },
    consistency: { type: ['string', 'null'], enum: ['command', 'stopped', 'live', null], description: 'How a backup was taken: after the backup_command, of files at rest, or of live files.' },
    files: { type: ['integer', 'null'] },
    bytes: { type: ['integer', 'null'] },
    duration_ms: { type: ['integer', 'null'] },
    error: { type: ['string', 'null'] },
    details: { type: ['object', 'null'], additionalProperties: true },
    started_at: { type: 'string' },
    finished_at: { type: ['string', 'null'] },
    pruned_at: { type: ['string', 'null'], description: 'When retention removed this backup\'s snapshot.' },
  },
} as const;

function targetView(t: TargetView) {
  return { org: t.org, repository: t.repository, kind: t.kind, next_drill_at: t.nextDrillAt, updated_at: t.updatedAt };
}

function policyView(p: PolicyView) {
  return { volume: p.volume, schedule: p.schedule, retention: p.retention, next_run_at: p.nextRunAt };
}

function runView(r: BackupRunView) {
  return {
    id: r.id,
    volume: r.volumeName,
    volume_id: r.volumeId,
    kind: r.kind,
    trigger: r.trigger,
    status: r.status,
    snapshot_id: r.snapshotId,
    consistency: r.consistency,
    files: r.files,
    bytes: r.bytes,
    duration_ms: r.durationMs,
    error: r.error,
    details: r.details,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    pruned_at: r.prunedAt,
  };
}

/** backupRoutes: an org's backup target, a volume's policy, and backups, restores and drills. */
export const backupRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.get<{ Params: { org: string } }>('/v1/orgs/:org/backups/target', {
    config: { auth: 'org:read' },
    schema: {
      summary: 'The org\'s backup target (restic repository)',
      tags: ['backups'],
      params: orgParam,
      response: { 200: { type: 'object', required: ['target'], properties: { target } }, ...errorResponses(401, 403, 404, 409) },
    },
  }, async (req) => ({ target: targetView((await s.backups.showTarget(principalOf(req), req.params.org, ctxOf(req))).target) }));

  app.put<{ Params: { org: string }; Body: { repository: string } }>('/v1/orgs/:org/backups/target', {
    config: { auth: 'org:manage' },
    schema: {
      summary: 'Set the org\'s backup target: a restic repository (absolute path, sftp:, s3:, rest:)',
      description: 'The repository is opened before anything is stored: an empty one is initialized with the org\'s backup key, one made with another key is refused.',
      tags: ['backups'],
      params: orgParam,
      body: { type: 'object', required: ['repository'], additionalProperties: false, properties: { repository: { type: 'string', minLength: 1, maxLength: 1024 } } },
      response: { 200: { type: 'object', required: ['target', 'initialized'], properties: { target, initialized: { type: 'boolean' } } }, ...errorResponses(400, 401, 403, 404, 502) },
    },
  }, async (req) => {
    const r = await s.backups.setTarget(principalOf(req), req.params.org, { repository: req.body.repository }, ctxOf(req));
    req.log.info({ org_id: r.org.id, repository: r.target.repository, initialized: r.initialized }, 'backup target set');
    return { target: targetView(r.target), initialized: r.initialized };
  });

  app.get<{ Params: { app: string }; Querystring: { volume?: string; limit?: number } }>('/v1/apps/:app/backups', {
    config: { auth: 'app:read' },
    schema: {
      summary: 'The app\'s backups, restores and restore drills, newest first, failed ones included',
      tags: ['backups'],
      params: appParam,
      querystring: { type: 'object', additionalProperties: false, properties: { volume: { type: 'string', maxLength: 63 }, limit: { type: 'integer', minimum: 1, maximum: 500 } } },
      response: { 200: { type: 'object', required: ['runs'], properties: { runs: { type: 'array', items: run } } }, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (req) => {
    const r = await s.backups.list(principalOf(req), req.params.app, { ...(req.query.volume !== undefined ? { volume: req.query.volume } : {}), ...(req.query.limit !== undefined ? { limit: req.query.limit } : {}) }, ctxOf(req));
    return { runs: r.runs.map(runView) };
  });

  app.get<{ Params: { app: string; volume: string } }>('/v1/apps/:app/volumes/:volume/backups/policy', {
    config: { auth: 'app:read' },
    schema: {
      summary: 'A volume\'s backup schedule and retention',
      tags: ['backups'],
      params: volumeParam,
      response: { 200: { type: 'object', required: ['policy'], properties: { policy } }, ...errorResponses(401, 403, 404) },
    },
  }, async (req) => ({ policy: policyView(await s.backups.showPolicy(principalOf(req), req.params.app, req.params.volume, ctxOf(req))) }));

  app.put<{ Params: { app: string; volume: string }; Body: { schedule?: string; keep_daily?: number; keep_weekly?: number; keep_monthly?: number; keep_yearly?: number } }>('/v1/apps/:app/volumes/:volume/backups/policy', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Change a volume\'s backup schedule (cron, UTC) and retention; what is not given is kept',
      tags: ['backups'],
      params: volumeParam,
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          schedule: { type: 'string', maxLength: 200 },
          keep_daily: { type: 'integer', minimum: 0, maximum: 10000 },
          keep_weekly: { type: 'integer', minimum: 0, maximum: 10000 },
          keep_monthly: { type: 'integer', minimum: 0, maximum: 10000 },
          keep_yearly: { type: 'integer', minimum: 0, maximum: 10000 },
        },
      },
      response: { 200: { type: 'object', required: ['policy'], properties: { policy } }, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (req) => {
    const b = req.body;
    const p = await s.backups.setPolicy(principalOf(req), req.params.app, req.params.volume, { schedule: b.schedule, retention: { daily: b.keep_daily, weekly: b.keep_weekly, monthly: b.keep_monthly, yearly: b.keep_yearly } }, ctxOf(req));
    return { policy: policyView(p) };
  });

  app.post<{ Params: { app: string; volume: string } }>('/v1/apps/:app/volumes/:volume/backups', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Back a volume up now; answers when the backup (and retention) finished',
      description: 'A failed backup answers 502 backup_failed, and is recorded: GET /v1/apps/{app}/backups lists it.',
      tags: ['backups'],
      params: volumeParam,
      response: { 201: { type: 'object', required: ['run'], properties: { run } }, ...errorResponses(401, 403, 404, 409, 502, 503) },
    },
  }, async (req, reply) => reply.status(201).send({ run: runView(await s.backups.run(principalOf(req), req.params.app, req.params.volume, ctxOf(req))) }));

  app.post<{ Params: { app: string; volume: string }; Body: { snapshot?: string } }>('/v1/apps/:app/volumes/:volume/backups/verify', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Restore drill: check the repository (all pack files), restore a snapshot into scratch and compare',
      tags: ['backups'],
      params: volumeParam,
      body: { type: 'object', additionalProperties: false, properties: { snapshot: { type: 'string', maxLength: 64 } } },
      response: { 200: { type: 'object', required: ['run'], properties: { run } }, ...errorResponses(400, 401, 403, 404, 409, 502, 503) },
    },
  }, async (req) => ({ run: runView(await s.backups.verify(principalOf(req), req.params.app, req.params.volume, { ...(req.body?.snapshot ? { snapshot: req.body.snapshot } : {}) }, ctxOf(req))) }));

  app.post<{ Params: { app: string; volume: string }; Body: { snapshot?: string; force?: boolean } }>('/v1/apps/:app/volumes/:volume/backups/restore', {
    config: { auth: 'app:destroy' },
    schema: {
      summary: 'Replace a volume\'s files with a snapshot (the newest by default)',
      description: 'Refused (409 restore_refused) while an instance has the volume mounted, unless force.',
      tags: ['backups'],
      params: volumeParam,
      body: { type: 'object', additionalProperties: false, properties: { snapshot: { type: 'string', maxLength: 64 }, force: { type: 'boolean' } } },
      response: { 200: { type: 'object', required: ['run'], properties: { run } }, ...errorResponses(400, 401, 403, 404, 409, 502, 503) },
    },
  }, async (req) => {
    const r = await s.backups.restore(principalOf(req), req.params.app, req.params.volume, { ...(req.body?.snapshot ? { snapshot: req.body.snapshot } : {}), ...(req.body?.force ? { force: true } : {}) }, ctxOf(req));
    return { run: runView(r) };
  });
};
