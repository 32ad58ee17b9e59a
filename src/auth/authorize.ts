import { UserError, type Role, type TokenScope } from '../core/index.ts';

/**
 * ORG_ACTIONS name what a caller wants to do inside an org; the caller's role in that org decides them
 * (ROLE_ACTIONS), and for an API token its scope narrows them further (SCOPE_ACTIONS).
 */
export const ORG_ACTIONS = [
  'org:read', // see an org, its members, its policy and its apps
  'org:manage', // invite, add, change and remove members (not owners), set policy
  'org:owners', // grant the owner role, or change or remove an owner
  'app:read',
  'app:create',
  'app:deploy', // deploy, scale, restart
  'app:destroy',
  'secret:write', // set, unset and import an app's secrets (nobody reads them back: no route returns a value)
  'audit:read',
] as const;

/**
 * ACCOUNT_ACTIONS name what a person does with their own account, whatever their orgs. `account:enrol` is
 * the little a person may still do while an org policy demands MFA they have not set up: enrol a factor
 * and log out. Tokens never get `account:enrol` or `account:manage`: a leaked token must not be able to
 * change a password, a second factor or mint more tokens.
 */
export const ACCOUNT_ACTIONS = [
  'account:read', // who am I, my orgs, my tokens, my MFA status
  'account:manage', // change password, disable MFA, create and revoke tokens, create an org
  'account:enrol', // enable and confirm MFA, log out
] as const;

/**
 * ACTIONS is every action. Every API route declares the one it needs (`config: {auth}`); authorizeRoute()
 * and authorize() below are the only functions in Ward that decide whether a caller may do it.
 */
export const ACTIONS = [...ORG_ACTIONS, ...ACCOUNT_ACTIONS] as const;
export type OrgAction = (typeof ORG_ACTIONS)[number];
export type AccountAction = (typeof ACCOUNT_ACTIONS)[number];
export type Action = OrgAction | AccountAction;

/**
 * The role table. Owners and admins run the org, but only owners make or unmake owners; developers ship
 * apps; viewers look; auditors look and also read the audit log and compliance views.
 */
export const ROLE_ACTIONS: Record<Role, ReadonlySet<OrgAction>> = {
  owner: new Set(ORG_ACTIONS),
  admin: new Set(ORG_ACTIONS.filter((a) => a !== 'org:owners')),
  developer: new Set<OrgAction>(['org:read', 'app:read', 'app:create', 'app:deploy', 'secret:write']),
  viewer: new Set<OrgAction>(['org:read', 'app:read']),
  auditor: new Set<OrgAction>(['org:read', 'app:read', 'audit:read']),
};

/**
 * SCOPE_ACTIONS is what an API token's scope allows at most. What the token may really do is this set
 * intersected with its creator's role in the token's org at the time of the request, so demoting or
 * removing a person shrinks or ends their tokens' powers at once.
 */
export const SCOPE_ACTIONS: Record<TokenScope, ReadonlySet<Action>> = {
  read: new Set<Action>(['org:read', 'app:read', 'audit:read', 'account:read']),
  deploy: new Set<Action>(['org:read', 'app:read', 'audit:read', 'account:read', 'app:create', 'app:deploy', 'secret:write']),
  admin: new Set<Action>([...ORG_ACTIONS, 'account:read']),
};

/**
 * SCOPE_NEEDS is the action a person's role must allow to create a token of a scope: nobody mints a token
 * that claims more than they could do themselves.
 */
export const SCOPE_NEEDS: Record<TokenScope, OrgAction> = { read: 'org:read', deploy: 'app:deploy', admin: 'org:manage' };

interface PrincipalBase {
  userId: string;
  email: string;
  /**
   * mfaRequiredBy names an org whose policy requires MFA when the person has no confirmed factor; until
   * they enrol, only `account:enrol` is allowed. null when nothing is required or MFA is set up.
   */
  mfaRequiredBy: string | null;
}

/** SessionPrincipal is a person acting through a session from login or signup. */
export interface SessionPrincipal extends PrincipalBase {
  via: 'session';
  sessionId: string;
}

/** TokenPrincipal is an API token acting for its creator, limited to one org and perhaps one app. */
export interface TokenPrincipal extends PrincipalBase {
  via: 'token';
  tokenId: string;
  tokenName: string;
  scope: TokenScope;
  orgId: string;
  /** appId limits the token to one app of its org; null means every app of the org. */
  appId: string | null;
}

/** Principal is who a request acts for, as established by authentication. */
export type Principal = SessionPrincipal | TokenPrincipal;

/** Target is the resource an org action is about: its org, its app if any, and the caller's role there. */
export interface Target {
  /** orgId is the org owning the resource; undefined when the resource does not exist. */
  orgId: string | undefined;
  /** appId is set when the resource is an app or belongs to one. */
  appId?: string | undefined;
  /** role is the caller's (for a token: its creator's) current role in orgId; undefined if not a member. */
  role: Role | undefined;
}

/** can reports whether a member with role may perform an org action. */
export function can(role: Role | undefined, action: Action): boolean {
  return role !== undefined && (ROLE_ACTIONS[role] as ReadonlySet<string>).has(action);
}

function mfaRequired(orgName: string): UserError {
  return new UserError('mfa_required', `org "${orgName}" requires multi-factor authentication, and your account has none yet`, {
    hint: 'enrol first: ward auth mfa enable, then ward auth mfa confirm CODE',
  });
}

/**
 * authorizeRoute is the check every authenticated route runs before its handler, with the action the
 * route declares. It decides account actions completely. For org actions it refuses what the caller could
 * not do anywhere (a token whose scope lacks the action); the per-resource decision is authorize()'s.
 */
export function authorizeRoute(p: Principal, action: Action): void {
  if (p.mfaRequiredBy !== null && action !== 'account:enrol') throw mfaRequired(p.mfaRequiredBy);
  if (p.via !== 'token') return;
  if (action === 'account:enrol' || action === 'account:manage') {
    throw new UserError('forbidden', 'API tokens cannot manage accounts (passwords, MFA, tokens, orgs) or log out', {
      hint: 'log in as the person instead: ward auth login',
    });
  }
  if (!SCOPE_ACTIONS[p.scope].has(action)) {
    throw new UserError('forbidden', `this token's scope (${p.scope}) does not allow ${action}`, {
      hint: 'create a token with a wider scope: ward tokens create --scope deploy|admin',
    });
  }
}

/**
 * authorize throws unless the caller may perform an org action on a target. A caller outside the target's
 * org — not a member, or a token of another org or another app — gets not_found rather than forbidden, so
 * the existence of another org's resources is not revealed; a member without the permission gets
 * forbidden. For a token the permission is its scope's actions intersected with its creator's current
 * role; a token limited to one app may act on that app only (and list what it can see).
 */
export function authorize(p: Principal, target: Target, action: OrgAction, what: string): void {
  if (target.orgId === undefined || target.role === undefined) throw new UserError('not_found', `${what} not found`);
  if (p.via === 'token') {
    if (target.orgId !== p.orgId) throw new UserError('not_found', `${what} not found`);
    if (p.appId !== null && target.appId !== undefined && target.appId !== p.appId) throw new UserError('not_found', `${what} not found`);
  }
  if (p.mfaRequiredBy !== null) throw mfaRequired(p.mfaRequiredBy);
  if (!can(target.role, action)) {
    throw new UserError('forbidden', `your role (${target.role}) does not allow ${action} on ${what}`, {
      hint: 'ask an owner or admin of the org for a role that does',
    });
  }
  if (p.via === 'token') {
    if (!SCOPE_ACTIONS[p.scope].has(action)) {
      throw new UserError('forbidden', `this token's scope (${p.scope}) does not allow ${action} on ${what}`, {
        hint: 'create a token with a wider scope: ward tokens create --scope deploy|admin',
      });
    }
    if (p.appId !== null && target.appId === undefined && action !== 'app:read') {
      throw new UserError('forbidden', `this token is limited to one app, so it cannot ${action} on ${what}`, {
        hint: 'create a token without --app for org-wide work',
      });
    }
  }
}

/**
 * visibleTo reports whether a resource of orgId (and appId, for app resources) may appear in lists shown
 * to the caller. Membership is the caller's own business (lists come from the caller's memberships); this
 * adds a token's org and app limits.
 */
export function visibleTo(p: Principal, orgId: string, appId?: string): boolean {
  if (p.via !== 'token') return true;
  if (orgId !== p.orgId) return false;
  return p.appId === null || appId === undefined || appId === p.appId;
}

/** actorOf describes a principal for the audit log: the token when one acts, else the person. */
export function actorOf(p: Principal): { type: 'user' | 'token'; id: string; label: string } {
  return p.via === 'token' ? { type: 'token', id: p.tokenId, label: `${p.tokenName} (${p.email})` } : { type: 'user', id: p.userId, label: p.email };
}

