import type { FastifyInstance } from 'fastify';
import type { Services } from '../app.ts';
import { ctxOf, principalOf, sessionOf } from '../auth.ts';
import { errorResponses } from '../schemas.ts';
import { orgView, orgWithRoleView, sessionView, userView } from '../views.ts';

const credentials = {
  type: 'object',
  required: ['email', 'password'],
  properties: {
    email: { type: 'string', maxLength: 254 },
    password: { type: 'string', maxLength: 1024 },
  },
} as const;

const mfaStatusSchema = {
  type: 'object',
  required: ['enabled', 'pending', 'recovery_codes_left', 'factors'],
  properties: {
    enabled: { type: 'boolean', description: 'A confirmed second factor exists; logging in needs a code.' },
    pending: { type: 'boolean', description: 'An enrolment waits for `mfa/confirm`.' },
    recovery_codes_left: { type: 'integer' },
    factors: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'type', 'label', 'created_at', 'confirmed_at', 'last_used_at'],
        properties: {
          id: { type: 'string' },
          type: { type: 'string', enum: ['totp', 'webauthn'] },
          label: { type: 'string' },
          created_at: { type: 'string', format: 'date-time' },
          confirmed_at: { type: ['string', 'null'], format: 'date-time' },
          last_used_at: { type: ['string', 'null'], format: 'date-time' },
        },
      },
    },
  },
} as const;

/** authRoutes: signup, login, logout, whoami, password change and MFA. */
export const authRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.post<{ Body: { email: string; password: string; org?: string; invite?: string } }>('/v1/auth/signup', {
    config: { auth: 'none' },
    schema: {
      summary: 'Create an account (the first on a server creates its org; later ones need an invite)',
      tags: ['auth'],
      security: [],
      body: {
        ...credentials,
        additionalProperties: false,
        properties: { ...credentials.properties, org: { type: 'string', maxLength: 63 }, invite: { type: 'string', maxLength: 200 } },
      },
      response: {
        201: {
          type: 'object',
          required: ['user', 'org', 'role', 'session'],
          properties: { user: { $ref: 'User#' }, org: { $ref: 'Org#' }, role: { type: 'string' }, session: { $ref: 'Session#' } },
        },
        ...errorResponses(400, 403, 409),
      },
    },
  }, async (req, reply) => {
    const r = await s.accounts.signup(req.body, ctxOf(req));
    req.log.info({ user_id: r.user.id, org_id: r.org.id, role: r.role }, 'signup');
    return reply.status(201).send({ user: userView(r.user), org: orgView(r.org), role: r.role, session: sessionView(r.session) });
  });

  app.post<{ Body: { email: string; password: string; kind?: 'cli' | 'web'; otp?: string } }>('/v1/auth/login', {
    config: { auth: 'none' },
    schema: {
      summary: 'Exchange email and password (and a one-time code, once the account has MFA) for a session token',
      description: 'Failed attempts are throttled per account and per source address; a throttled attempt gets 429 with Retry-After.',
      tags: ['auth'],
      security: [],
      body: {
        ...credentials,
        additionalProperties: false,
        properties: {
          ...credentials.properties,
          kind: { type: 'string', enum: ['cli', 'web'] },
          otp: { type: 'string', maxLength: 64, description: 'A TOTP code or a recovery code.' },
        },
      },
      response: {
        200: { type: 'object', required: ['user', 'session'], properties: { user: { $ref: 'User#' }, session: { $ref: 'Session#' } } },
        ...errorResponses(400, 401, 429),
      },
    },
  }, async (req) => {
    const r = await s.accounts.login(req.body, ctxOf(req));
    req.log.info({ user_id: r.user.id, second_factor: r.secondFactor ?? 'none' }, 'login');
    return { user: userView(r.user), session: sessionView(r.session) };
  });

  app.post('/v1/auth/logout', {
    config: { auth: 'account:enrol' },
    schema: { summary: 'Revoke the session used for this request', tags: ['auth'], response: { 204: { type: 'null' }, ...errorResponses(401, 403) } },
  }, async (req, reply) => {
    await s.accounts.logout(sessionOf(req), ctxOf(req));
    return reply.status(204).send();
  });

  app.get('/v1/auth/whoami', {
    config: { auth: 'account:read' },
    schema: {
      summary: 'The caller, its orgs, and how it is authenticated',
      tags: ['auth'],
      response: {
        200: {
          type: 'object',
          required: ['user', 'orgs', 'credential', 'mfa'],
          properties: {
            user: { $ref: 'User#' },
            orgs: { type: 'array', items: { $ref: 'OrgWithRole#' } },
            credential: {
              type: 'object',
              required: ['via'],
              properties: {
                via: { type: 'string', enum: ['session', 'token'] },
                token_id: { type: 'string' },
                token_name: { type: 'string' },
                scope: { type: 'string', enum: ['read', 'deploy', 'admin'] },
              },
            },
            mfa: { type: 'object', required: ['enabled'], properties: { enabled: { type: 'boolean' } } },
          },
        },
        ...errorResponses(401, 403),
      },
    },
  }, async (req) => {
    const p = principalOf(req);
    const user = (await s.store.users.get(p.userId))!;
    const orgs = await s.orgs.listForUser(p);
    const credential = p.via === 'token' ? { via: p.via, token_id: p.tokenId, token_name: p.tokenName, scope: p.scope } : { via: p.via };
    return { user: userView(user), orgs: orgs.map(orgWithRoleView), credential, mfa: { enabled: await s.accounts.mfa.hasConfirmed(p.userId) } };
  });

  app.post<{ Body: { current_password: string; new_password: string } }>('/v1/auth/password', {
    config: { auth: 'account:manage' },
    schema: {
      summary: 'Change the password; every other session of the account is revoked',
      tags: ['auth'],
      body: {
        type: 'object',
        required: ['current_password', 'new_password'],
        additionalProperties: false,
        properties: { current_password: { type: 'string', maxLength: 1024 }, new_password: { type: 'string', maxLength: 2048 } },
      },
      response: {
        200: { type: 'object', required: ['revoked_sessions'], properties: { revoked_sessions: { type: 'integer' } } },
        ...errorResponses(400, 401, 403, 429),
      },
    },
  }, async (req) => {
    const r = await s.accounts.changePassword(sessionOf(req), { current: req.body.current_password, next: req.body.new_password }, ctxOf(req));
    req.log.info({ user_id: principalOf(req).userId, revoked_sessions: r.revokedSessions }, 'password changed');
    return { revoked_sessions: r.revokedSessions };
  });

  app.get('/v1/auth/mfa', {
    config: { auth: 'account:read' },
    schema: { summary: 'The caller\'s second factors', tags: ['auth'], response: { 200: mfaStatusSchema, ...errorResponses(401, 403) } },
  }, async (req) => {
    const st = await s.accounts.mfa.status(principalOf(req).userId);
    return {
      enabled: st.enabled,
      pending: st.pending,
      recovery_codes_left: st.recoveryCodesLeft,
      factors: st.factors.map((f) => ({ id: f.id, type: f.type, label: f.label, created_at: f.createdAt, confirmed_at: f.confirmedAt, last_used_at: f.lastUsedAt })),
    };
  });

  app.post('/v1/auth/mfa/enable', {
    config: { auth: 'account:enrol' },
    schema: {
      summary: 'Start TOTP enrolment: a new secret, shown once; it counts after mfa/confirm',
      tags: ['auth'],
      response: {
        201: {
          type: 'object',
          required: ['factor_id', 'type', 'secret', 'otpauth_uri'],
          properties: {
            factor_id: { type: 'string' },
            type: { type: 'string', enum: ['totp'] },
            secret: { type: 'string', description: 'The base32 TOTP secret. Shown only here, once.' },
            otpauth_uri: { type: 'string', description: 'The otpauth:// URI authenticator apps scan (as a QR code).' },
          },
        },
        ...errorResponses(401, 403, 409),
      },
    },
  }, async (req, reply) => {
    const e = await s.accounts.enableMfa(sessionOf(req), ctxOf(req));
    return reply.status(201).send({ factor_id: e.factorId, type: 'totp', secret: e.secret, otpauth_uri: e.otpauthUri });
  });

  app.post<{ Body: { code: string } }>('/v1/auth/mfa/confirm', {
    config: { auth: 'account:enrol' },
    schema: {
      summary: 'Confirm TOTP enrolment with a first code; answers the recovery codes, shown once',
      tags: ['auth'],
      body: { type: 'object', required: ['code'], additionalProperties: false, properties: { code: { type: 'string', maxLength: 16 } } },
      response: {
        200: {
          type: 'object',
          required: ['recovery_codes'],
          properties: { recovery_codes: { type: 'array', items: { type: 'string' }, description: 'One-time recovery codes. Shown only here, once.' } },
        },
        ...errorResponses(400, 401, 403, 409),
      },
    },
  }, async (req) => {
    const r = await s.accounts.confirmMfa(sessionOf(req), req.body.code, ctxOf(req));
    return { recovery_codes: r.recoveryCodes };
  });

  app.post<{ Body: { otp?: string } }>('/v1/auth/mfa/disable', {
    config: { auth: 'account:manage' },
    schema: {
      summary: 'Remove the second factors; needs a current code or a recovery code',
      tags: ['auth'],
      body: { type: 'object', additionalProperties: false, properties: { otp: { type: 'string', maxLength: 64 } } },
      response: { 204: { type: 'null' }, ...errorResponses(400, 401, 403, 409, 429) },
    },
  }, async (req, reply) => {
    await s.accounts.disableMfa(sessionOf(req), req.body?.otp, ctxOf(req));
    return reply.status(204).send();
  });
};
