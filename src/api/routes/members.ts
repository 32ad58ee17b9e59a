import type { FastifyInstance } from 'fastify';
import { formatDuration, type OrgPolicy } from '../../core/index.ts';
import type { MemberView } from '../../auth/index.ts';
import type { Services } from '../app.ts';
import { ctxOf, principalOf } from '../auth.ts';
import { errorResponses, orgParam } from '../schemas.ts';
import { orgView } from '../views.ts';

const role = { type: 'string', enum: ['owner', 'admin', 'developer', 'viewer', 'auditor'] } as const;

const memberSchema = {
  type: 'object',
  required: ['user_id', 'email', 'role', 'mfa', 'created_at'],
  properties: {
    user_id: { type: 'string' },
    email: { type: 'string' },
    role,
    mfa: { type: 'boolean', description: 'Whether the member has a confirmed second factor.' },
    created_at: { type: 'string', format: 'date-time' },
  },
} as const;

const policySchema = {
  type: 'object',
  required: ['require_mfa', 'session_idle', 'updated_at'],
  properties: {
    require_mfa: { type: 'boolean' },
    session_idle: { type: ['string', 'null'], description: 'The longest idle time of members\' sessions, like 15m; null for the defaults.' },
    updated_at: { type: 'string', format: 'date-time' },
  },
} as const;

const memberView = (m: MemberView) => ({ user_id: m.userId, email: m.email, role: m.role, mfa: m.mfa, created_at: m.createdAt });
const policyView = (p: OrgPolicy) => ({
  require_mfa: p.requireMfa,
  session_idle: p.sessionIdleMs === null ? null : formatDuration(p.sessionIdleMs),
  updated_at: p.updatedAt,
});

/** memberRoutes: an org's members (list, add or change role, remove) and its security policy. */
export const memberRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.get<{ Params: { org: string } }>('/v1/orgs/:org/members', {
    config: { auth: 'org:read' },
    schema: {
      summary: 'The members of an org, with their roles and whether they have MFA',
      tags: ['orgs'],
      params: orgParam,
      response: {
        200: { type: 'object', required: ['org', 'members'], properties: { org: { $ref: 'Org#' }, members: { type: 'array', items: memberSchema } } },
        ...errorResponses(401, 403, 404),
      },
    },
  }, async (req) => {
    const r = await s.members.list(principalOf(req), req.params.org);
    return { org: orgView(r.org), members: r.members.map(memberView) };
  });

  app.post<{ Params: { org: string }; Body: { email: string; role: string } }>('/v1/orgs/:org/members', {
    config: { auth: 'org:manage' },
    schema: {
      summary: 'Add an existing account to the org, or change a member\'s role',
      description: 'Only owners grant, change or remove the owner role; the last owner cannot be demoted.',
      tags: ['orgs'],
      params: orgParam,
      body: { type: 'object', required: ['email', 'role'], additionalProperties: false, properties: { email: { type: 'string', maxLength: 254 }, role } },
      response: {
        200: {
          type: 'object',
          required: ['org', 'member', 'change'],
          properties: { org: { $ref: 'Org#' }, member: memberSchema, change: { type: 'string', enum: ['added', 'role_changed', 'unchanged'] } },
        },
        ...errorResponses(400, 401, 403, 404, 409),
      },
    },
  }, async (req) => {
    const r = await s.members.add(principalOf(req), req.params.org, req.body.email, req.body.role, ctxOf(req));
    req.log.info({ org_id: r.org.id, user_id: r.member.userId, role: r.member.role, change: r.change }, 'member changed');
    return { org: orgView(r.org), member: memberView(r.member), change: r.change };
  });

  app.delete<{ Params: { org: string; member: string } }>('/v1/orgs/:org/members/:member', {
    config: { auth: 'org:manage' },
    schema: {
      summary: 'Remove a member (by email or user id) from the org',
      tags: ['orgs'],
      params: { type: 'object', required: ['org', 'member'], properties: { org: { type: 'string', maxLength: 63 }, member: { type: 'string', maxLength: 254 } } },
      response: {
        200: { type: 'object', required: ['org', 'member'], properties: { org: { $ref: 'Org#' }, member: memberSchema } },
        ...errorResponses(401, 403, 404, 409),
      },
    },
  }, async (req) => {
    const r = await s.members.remove(principalOf(req), req.params.org, req.params.member, ctxOf(req));
    req.log.info({ org_id: r.org.id, user_id: r.member.userId }, 'member removed');
    return { org: orgView(r.org), member: memberView(r.member) };
  });

  app.get<{ Params: { org: string } }>('/v1/orgs/:org/policy', {
    config: { auth: 'org:read' },
    schema: {
      summary: 'The org\'s security policy',
      tags: ['orgs'],
      params: orgParam,
      response: { 200: { type: 'object', required: ['org', 'policy'], properties: { org: { $ref: 'Org#' }, policy: policySchema } }, ...errorResponses(401, 403, 404) },
    },
  }, async (req) => {
    const r = await s.policies.get(principalOf(req), req.params.org);
    return { org: orgView(r.org), policy: policyView(r.policy) };
  });

  app.put<{ Params: { org: string }; Body: { require_mfa?: boolean; session_idle?: string | null } }>('/v1/orgs/:org/policy', {
    config: { auth: 'org:manage' },
    schema: {
      summary: 'Set the org\'s security policy; fields left out keep their value',
      tags: ['orgs'],
      params: orgParam,
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          require_mfa: { type: 'boolean', description: 'Every member must enrol a second factor before doing anything else.' },
          session_idle: { type: ['string', 'null'], maxLength: 16, description: 'Members\' sessions idle out after at most this long (5m to 7d); null for the defaults.' },
        },
      },
      response: { 200: { type: 'object', required: ['org', 'policy'], properties: { org: { $ref: 'Org#' }, policy: policySchema } }, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (req) => {
    const r = await s.policies.set(principalOf(req), req.params.org, { requireMfa: req.body.require_mfa, sessionIdle: req.body.session_idle }, ctxOf(req));
    req.log.info({ org_id: r.org.id, require_mfa: r.policy.requireMfa, session_idle_ms: r.policy.sessionIdleMs }, 'org policy changed');
    return { org: orgView(r.org), policy: policyView(r.policy) };
  });
};
