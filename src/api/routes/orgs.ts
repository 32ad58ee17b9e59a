import type { FastifyInstance } from 'fastify';
import type { Services } from '../app.ts';
import { ctxOf, principalOf } from '../auth.ts';
import { errorResponses, orgParam } from '../schemas.ts';
import { orgView, orgWithRoleView } from '../views.ts';


/** orgRoutes: list, create, show, invite. */
export const orgRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.get('/v1/orgs', {
    config: { auth: 'account:read' },
    schema: {
      summary: 'The orgs the caller belongs to, with its role in each',
      tags: ['orgs'],
      response: { 200: { type: 'object', required: ['orgs'], properties: { orgs: { type: 'array', items: { $ref: 'OrgWithRole#' } } } }, ...errorResponses(401) },
    },
  }, async (req) => ({ orgs: (await s.orgs.listForUser(principalOf(req))).map(orgWithRoleView) }));

  app.post<{ Body: { name: string } }>('/v1/orgs', {
    config: { auth: 'account:manage' },
    schema: {
      summary: 'Create an org; the caller becomes its owner',
      tags: ['orgs'],
      body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', maxLength: 63 } } },
      response: { 201: { type: 'object', required: ['org'], properties: { org: { $ref: 'Org#' } } }, ...errorResponses(400, 401, 409) },
    },
  }, async (req, reply) => {
    const org = await s.orgs.create(principalOf(req), req.body.name, ctxOf(req));
    return reply.status(201).send({ org: orgView(org) });
  });

  app.get<{ Params: { org: string } }>('/v1/orgs/:org', {
    config: { auth: 'org:read' },
    schema: {
      summary: 'An org, the caller\'s role in it, and its members',
      tags: ['orgs'],
      params: orgParam,
      response: {
        200: {
          type: 'object',
          required: ['org', 'role', 'members'],
          properties: { org: { $ref: 'Org#' }, role: { type: 'string' }, members: { type: 'array', items: { $ref: 'Member#' } } },
        },
        ...errorResponses(401, 404),
      },
    },
  }, async (req) => {
    const { org, role } = await s.orgs.resolve(principalOf(req), req.params.org, 'org:read', ctxOf(req));
    const members = await s.orgs.members(org.id);
    return {
      org: orgView(org),
      role,
      members: members.map((m) => ({ user_id: m.userId, email: m.email, role: m.role, created_at: m.createdAt })),
    };
  });

  app.post<{ Params: { org: string }; Body: { role: string; expires_in?: string } }>('/v1/orgs/:org/invites', {
    config: { auth: 'org:manage' },
    schema: {
      summary: 'Make a one-time invite code for the org',
      tags: ['orgs'],
      params: orgParam,
      body: {
        type: 'object',
        required: ['role'],
        additionalProperties: false,
        properties: { role: { type: 'string' }, expires_in: { type: 'string', maxLength: 16 } },
      },
      response: { 201: { type: 'object', required: ['invite'], properties: { invite: { $ref: 'Invite#' } } }, ...errorResponses(400, 401, 403, 404) },
    },
  }, async (req, reply) => {
    const p = principalOf(req);
    // Only owners may bring in another owner, by invite as by `members add`.
    const { org } = await s.orgs.resolve(p, req.params.org, req.body.role === 'owner' ? 'org:owners' : 'org:manage', ctxOf(req));
    const invite = await s.accounts.createInvite(org.id, p.userId, req.body.role, req.body.expires_in, ctxOf(req));
    req.log.info({ org_id: org.id, invite_id: invite.id, role: invite.role }, 'invite created');
    return reply.status(201).send({ invite: { id: invite.id, code: invite.code, role: invite.role, expires_at: invite.expiresAt } });
  });
};

