import { UserError, type Role } from '../core/index.ts';

/**
 * Actions name what a caller wants to do. Every API route declares the one it needs; authorize() is the
 * only function in Ward that decides whether a caller may do it (ARCHITECTURE.md §2).
 */
export const ACTIONS = [
  'org:read', // see an org, its members and its apps
  'org:manage', // invite, change roles, remove members, set policy
  'app:read',
  'app:create',
  'app:deploy', // deploy, scale, restart, set secrets
  'app:destroy',
  'audit:read',
] as const;
export type Action = (typeof ACTIONS)[number];

/**
 * The role table. Owners and admins run the org; developers ship apps; viewers look; auditors look and
 * also read the audit log and compliance views (issue "Identity" grows those).
 */
export const ROLE_ACTIONS: Record<Role, ReadonlySet<Action>> = {
  owner: new Set(ACTIONS),
  admin: new Set(ACTIONS),
  developer: new Set<Action>(['org:read', 'app:read', 'app:create', 'app:deploy']),
  viewer: new Set<Action>(['org:read', 'app:read']),
  auditor: new Set<Action>(['org:read', 'app:read', 'audit:read']),
};

/** Principal is who a request acts for, as established by authentication. */
export interface Principal {
  userId: string;
  email: string;
  via: 'session';
  sessionId: string;
}

/** can reports whether a member with role may perform action. */
export function can(role: Role | undefined, action: Action): boolean {
  return role !== undefined && ROLE_ACTIONS[role].has(action);
}

/**
 * authorize throws unless role allows action. `role` is the caller's role in the org that owns the
 * resource (undefined when not a member). A non-member gets not_found rather than forbidden, so the
 * existence of another org's app is not revealed; a member without the permission gets forbidden.
 */
export function authorize(role: Role | undefined, action: Action, what: string): void {
  if (role === undefined) throw new UserError('not_found', `${what} not found`);
  if (!can(role, action)) {
    throw new UserError('forbidden', `your role (${role}) does not allow ${action} on ${what}`, {
      hint: 'ask an owner or admin of the org for a role that does',
    });
  }
}
