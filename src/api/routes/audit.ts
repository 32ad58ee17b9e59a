import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { AuditRecord } from '../../audit/index.ts';
import { UserError } from '../../core/index.ts';
import { AUDIT_LIST_MAX } from '../../services/index.ts';
import type { Services } from '../app.ts';
import { ctxOf, principalOf } from '../auth.ts';
import { errorResponses } from '../schemas.ts';
import { orgView } from '../views.ts';

const nullableString = { type: ['string', 'null'] } as const;

/** The wire form of an audit entry is the stored record itself: every field is part of its hash. */
const auditEntrySchema = {
  type: 'object',
  required: ['chain', 'seq', 'id', 'at', 'org_id', 'actor_type', 'actor_id', 'actor_label', 'action', 'target', 'outcome', 'source_ip', 'request_id', 'details', 'prev_hash', 'hash'],
  properties: {
    chain: { type: 'string', description: 'The org id, or _server for events outside any org.' },
    seq: { type: 'integer', description: 'Position in the chain, from 1.' },
    id: { type: 'string' },
    at: { type: 'string', format: 'date-time' },
    org_id: nullableString,
    actor_type: { type: 'string', enum: ['user', 'token', 'system', 'anonymous'] },
    actor_id: nullableString,
    actor_label: nullableString,
    action: { type: 'string', description: 'A dotted action name; docs/audit.md lists them.' },
    target: nullableString,
    outcome: { type: 'string', enum: ['success', 'failure', 'denied'] },
    source_ip: nullableString,
    request_id: nullableString,
    details: { type: 'object', additionalProperties: true, description: 'Names, ids and versions; never a secret.' },
    prev_hash: { type: 'string' },
    hash: { type: 'string' },
  },
} as const;

const orgQuery = { org: { type: 'string', maxLength: 63, description: 'Org name or id; default: the caller\'s oldest org.' } } as const;
const sinceQuery = { since: { type: 'string', maxLength: 40, description: 'A duration back from now (1h, 7d) or an ISO-8601 timestamp.' } } as const;

/** auditRoutes: list, verify and export an org's audit log (audit:read: owner, admin, auditor). */
export const auditRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.get<{ Querystring: { org?: string; since?: string; after?: string; limit?: string } }>('/v1/audit', {
    config: { auth: 'audit:read' },
    schema: {
      summary: 'Audit log entries of an org, oldest first',
      tags: ['audit'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ...orgQuery,
          ...sinceQuery,
          // Query values arrive as text and the API does not coerce types, so numbers are checked as digits.
          after: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'Entries after this seq: the next_after of the previous page.' },
          limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: `At most this many entries, 1 to ${AUDIT_LIST_MAX}; default 100.` },
        },
      },
      response: {
        200: {
          type: 'object',
          required: ['org', 'entries', 'next_after'],
          properties: {
            org: { $ref: 'Org#' },
            entries: { type: 'array', items: auditEntrySchema },
            next_after: { type: ['integer', 'null'], description: 'Pass as after= for the next page; null on the last.' },
          },
        },
        ...errorResponses(400, 401, 403, 404),
      },
    },
  }, async (req) => {
    const limit = req.query.limit === undefined ? undefined : Number(req.query.limit);
    if (limit !== undefined && (limit < 1 || limit > AUDIT_LIST_MAX)) {
      throw new UserError('bad_request', `invalid request querystring at limit: must be between 1 and ${AUDIT_LIST_MAX}`);
    }
    const after = req.query.after === undefined ? undefined : Number(req.query.after);
    const r = await s.auditLog.list(principalOf(req), req.query.org, { since: req.query.since, after, limit }, ctxOf(req));
    return { org: orgView(r.org), entries: r.entries satisfies AuditRecord[], next_after: r.nextAfter };
  });

  app.post<{ Querystring: { org?: string } }>('/v1/audit/verify', {
    config: { auth: 'audit:read' },
    schema: {
      summary: 'Verify an org\'s audit chain and signed checkpoints as stored',
      tags: ['audit'],
      querystring: { type: 'object', additionalProperties: false, properties: { ...orgQuery } },
      response: {
        200: {
          type: 'object',
          required: ['org', 'ok', 'chains', 'entries', 'checkpoints', 'problems', 'ranges', 'key_ids'],
          properties: {
            org: { $ref: 'Org#' },
            ok: { type: 'boolean' },
            chains: { type: 'integer' },
            entries: { type: 'integer' },
            checkpoints: { type: 'integer' },
            problems: {
              type: 'array',
              description: 'Per chain, the first bad entry, and every bad checkpoint.',
              items: {
                type: 'object',
                required: ['chain', 'seq', 'reason'],
                properties: { chain: { type: 'string' }, seq: { type: 'integer' }, id: { type: 'string' }, reason: { type: 'string' } },
              },
            },
            ranges: {
              type: 'array',
              items: {
                type: 'object',
                required: ['chain', 'first_seq', 'last_seq', 'signed_seq'],
                properties: { chain: { type: 'string' }, first_seq: { type: 'integer' }, last_seq: { type: 'integer' }, signed_seq: { type: 'integer', description: 'Entries up to here are covered by a signed checkpoint.' } },
              },
            },
            key_ids: { type: 'array', items: { type: 'string' }, description: 'The public keys (audit_keys) checkpoints were checked against.' },
          },
        },
        ...errorResponses(401, 403, 404),
      },
    },
  }, async (req) => {
    const { org, result } = await s.auditLog.verify(principalOf(req), req.query.org, ctxOf(req));
    const { keyIds, ...rest } = result;
    return { org: orgView(org), ...rest, key_ids: keyIds };
  });

  app.get<{ Querystring: { org?: string; since?: string; format?: 'jsonl' | 'csv' } }>('/v1/audit/export', {
    config: { auth: 'audit:read' },
    schema: {
      summary: 'Export an org\'s audit log: JSONL (verifiable offline) or CSV (for spreadsheets)',
      description: 'Streams the export. JSONL holds a header with the public keys, the entries and the signed checkpoints; see docs/audit.md.',
      tags: ['audit'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { ...orgQuery, ...sinceQuery, format: { type: 'string', enum: ['jsonl', 'csv'], default: 'jsonl' } },
      },
      response: {
        200: {
          description: 'The export, streamed',
          content: { 'application/x-ndjson': { schema: { type: 'string' } }, 'text/csv': { schema: { type: 'string' } } },
        },
        ...errorResponses(400, 401, 403, 404),
      },
    },
  }, async (req, reply) => {
    const format = req.query.format ?? 'jsonl';
    const { org, lines } = await s.auditLog.export(principalOf(req), req.query.org, { since: req.query.since, format }, ctxOf(req));
    const stamp = new Date().toISOString().slice(0, 10);
    reply.header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
    reply.header('content-disposition', `attachment; filename="ward-audit-${org.name}-${stamp}.${format}"`);
    return reply.send(Readable.from(lines));
  });
};
