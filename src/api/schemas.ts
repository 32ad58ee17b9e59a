/**
 * JSON Schemas of the API's objects. Fastify validates requests against them and serializes responses
 * through them, which also strips any field not listed — a password hash cannot leak by accident — and
 * @fastify/swagger turns them into /v1/openapi.json.
 */
export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'A stable code from docs/errors.md.' },
        message: { type: 'string' },
        hint: { type: 'string' },
        details: { type: 'object', additionalProperties: true },
        request_id: { type: 'string' },
      },
    },
  },
} as const;

export const userSchema = {
  $id: 'User',
  type: 'object',
  required: ['id', 'email', 'created_at'],
  properties: { id: { type: 'string' }, email: { type: 'string' }, created_at: { type: 'string', format: 'date-time' } },
} as const;

export const orgSchema = {
  $id: 'Org',
  type: 'object',
  required: ['id', 'name', 'created_at'],
  properties: { id: { type: 'string' }, name: { type: 'string' }, created_at: { type: 'string', format: 'date-time' } },
} as const;

const role = { type: 'string', enum: ['owner', 'admin', 'developer', 'viewer', 'auditor'] } as const;

export const orgWithRoleSchema = {
  $id: 'OrgWithRole',
  type: 'object',
  required: ['id', 'name', 'role', 'created_at'],
  properties: { id: { type: 'string' }, name: { type: 'string' }, role, created_at: { type: 'string', format: 'date-time' } },
} as const;

export const memberSchema = {
  $id: 'Member',
  type: 'object',
  required: ['user_id', 'email', 'role', 'created_at'],
  properties: { user_id: { type: 'string' }, email: { type: 'string' }, role, created_at: { type: 'string', format: 'date-time' } },
} as const;

export const sessionSchema = {
  $id: 'Session',
  type: 'object',
  required: ['token', 'kind', 'expires_at', 'idle_timeout'],
  properties: {
    token: { type: 'string', description: 'The bearer token. Shown only here, once.' },
    kind: { type: 'string', enum: ['cli', 'web'] },
    expires_at: { type: 'string', format: 'date-time' },
    idle_timeout: { type: 'string', description: 'A duration such as 12h.' },
  },
} as const;

export const appSchema = {
  $id: 'App',
  type: 'object',
  required: ['id', 'name', 'org', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    org: { $ref: 'Org#' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
} as const;

export const inviteSchema = {
  $id: 'Invite',
  type: 'object',
  required: ['id', 'code', 'role', 'expires_at'],
  properties: {
    id: { type: 'string' },
    code: { type: 'string', description: 'The one-time invite code. Shown only here, once.' },
    role,
    expires_at: { type: 'string', format: 'date-time' },
  },
} as const;

/** Path parameters the routes share: an org, an app, and a volume of an app, each a name of at most 63 characters. */
export const orgParam = { type: 'object', required: ['org'], properties: { org: { type: 'string', maxLength: 63 } } } as const;
export const appParam = { type: 'object', required: ['app'], properties: { app: { type: 'string', maxLength: 63 } } } as const;
export const volumeParam = {
  type: 'object',
  required: ['app', 'volume'],
  properties: { app: { type: 'string', maxLength: 63 }, volume: { type: 'string', maxLength: 63 } },
} as const;

export const sharedSchemas = [errorSchema, userSchema, orgSchema, orgWithRoleSchema, memberSchema, sessionSchema, appSchema, inviteSchema];

/** errorResponses adds the Error schema for the statuses a route can answer with. */
export function errorResponses(...statuses: number[]): Record<number, { $ref: string }> {
  return Object.fromEntries(statuses.map((s) => [s, { $ref: 'Error#' }]));
}
