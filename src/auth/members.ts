import {
  formatDuration,
  isId,
  newId,
  normalizeEmail,
  parseDuration,
  toTimestamp,
  UserError,
  ROLES,
  type Clock,
  type Membership,
  type Org,
  type OrgPolicy,
  type Role,
} from '../core/index.ts';
import type { Store } from '../store/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import { authorize, type OrgAction, type Principal } from './authorize.ts';

/** resolveOrg finds an org by name or id and lets authorize() decide whether the caller may do action there. */
export async function resolveOrg(store: Store, p: Principal, ref: string, action: OrgAction): Promise<{ org: Org; role: Role }> {
  const org = isId(ref, 'org') ? await store.orgs.get(ref) : await store.orgs.findByName(ref);
  const membership = org ? await store.memberships.find(org.id, p.userId) : undefined;
  authorize(p, { orgId: org?.id, role: membership?.role }, action, `org "${ref}"`);
  return { org: org!, role: membership!.role };
}

/** MemberView is one member of an org as listed, with whether they have MFA set up. */
export interface MemberView extends Membership {
  email: string;
  mfa: boolean;
}

function roleOf(input: unknown): Role {
  if (typeof input !== 'string' || !(ROLES as readonly string[]).includes(input)) {
    throw new UserError('bad_request', `role must be one of ${ROLES.join(', ')}`);
  }
  return input as Role;
}

function lastOwner(org: Org): UserError {
  return new UserError('conflict', `that is the last owner of org "${org.name}"; an org always keeps one`, {
    hint: `make someone else owner first: ward orgs members add EMAIL --role owner --org ${org.name}`,
  });
}

/**
 * MemberService adds people to orgs, changes their roles and removes them. Owners and admins manage
 * members; only owners make, change or remove owners; an org never loses its last owner. Each change
 * takes the org's lock, so two admins demoting the last two owners at once cannot both succeed.
 */
export class MemberService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #auditor: Auditor;

  constructor(store: Store, clock: Clock, auditor: Auditor) {
    this.#store = store;
    this.#clock = clock;
    this.#auditor = auditor;
  }

  async list(p: Principal, orgRef: string): Promise<{ org: Org; members: MemberView[] }> {
    const { org } = await resolveOrg(this.#store, p, orgRef, 'org:read');
    const members: MemberView[] = [];
    for (const m of await this.#store.memberships.listForOrg(org.id)) {
      const mfa = (await this.#store.factors.listForUser(m.userId)).some((f) => f.confirmedAt !== null);
      members.push({ ...m, mfa });
    }
    return { org, members };
  }

  /**
   * add makes an existing account a member of the org with role, or changes the role of one who is a
   * member already. People without an account are invited instead (`ward orgs invite`).
   */
  async add(p: Principal, orgRef: string, emailInput: unknown, roleInput: unknown, ctx: CallContext): Promise<{ org: Org; member: MemberView; change: 'added' | 'role_changed' | 'unchanged' }> {
    const role = roleOf(roleInput);
    const email = typeof emailInput === 'string' ? normalizeEmail(emailInput) : undefined;
    if (!email) throw new UserError('bad_request', 'a valid email address is required');
    const { org, role: myRole } = await resolveOrg(this.#store, p, orgRef, 'org:manage');
    if (role === 'owner') authorize(p, { orgId: org.id, role: myRole }, 'org:owners', `org "${org.name}"`);
    const user = await this.#store.users.findByEmail(email);
    if (!user) {
      throw new UserError('not_found', `there is no account for ${email} on this server`, {
        hint: `invite them instead: ward orgs invite --org ${org.name} --role ${role}`,
      });
    }
    const now = toTimestamp(this.#clock.now());
    return this.#store.transaction(async (tx) => {
      await tx.orgs.lock(org.id);
      const existing = await tx.memberships.find(org.id, user.id);
      const mfa = (await tx.factors.listForUser(user.id)).some((f) => f.confirmedAt !== null);
      if (!existing) {
        const m: Membership = { id: newId('membership'), orgId: org.id, userId: user.id, role, createdAt: now };
        await tx.memberships.create(m);
        await this.#auditor.record(tx, ctx, { orgId: org.id, action: 'member.add', target: user.id, outcome: 'success', details: { email, role } });
        return { org, member: { ...m, email, mfa }, change: 'added' as const };
      }
      if (existing.role === role) return { org, member: { ...existing, email, mfa }, change: 'unchanged' as const };
      if (existing.role === 'owner') {
        authorize(p, { orgId: org.id, role: myRole }, 'org:owners', `org "${org.name}"`);
        if ((await tx.memberships.countWithRole(org.id, 'owner')) <= 1) throw lastOwner(org);
      }
      await tx.memberships.setRole(existing.id, role);
      await this.#auditor.record(tx, ctx, {
        orgId: org.id,
        action: 'member.role_change',
        target: user.id,
        outcome: 'success',
        details: { email, from: existing.role, to: role },
      });
      return { org, member: { ...existing, role, email, mfa }, change: 'role_changed' as const };
    });
  }

  /** remove takes a person (email or user id) out of the org. Their tokens for the org stop working with it. */
  async remove(p: Principal, orgRef: string, memberRef: string, ctx: CallContext): Promise<{ org: Org; member: MemberView }> {
    const { org, role: myRole } = await resolveOrg(this.#store, p, orgRef, 'org:manage');
    const email = normalizeEmail(memberRef);
    const user = isId(memberRef, 'user') ? await this.#store.users.get(memberRef) : email ? await this.#store.users.findByEmail(email) : undefined;
    const notMember = () => new UserError('not_found', `${memberRef} is not a member of org "${org.name}"`, { hint: `ward orgs members list --org ${org.name}` });
    if (!user) throw notMember();
    return this.#store.transaction(async (tx) => {
      await tx.orgs.lock(org.id);
      const existing = await tx.memberships.find(org.id, user.id);
      if (!existing) throw notMember();
      if (existing.role === 'owner') {
        authorize(p, { orgId: org.id, role: myRole }, 'org:owners', `org "${org.name}"`);
        if ((await tx.memberships.countWithRole(org.id, 'owner')) <= 1) throw lastOwner(org);
      }
      await tx.memberships.remove(existing.id);
      await this.#auditor.record(tx, ctx, { orgId: org.id, action: 'member.remove', target: user.id, outcome: 'success', details: { email: user.email, role: existing.role } });
      const mfa = (await tx.factors.listForUser(user.id)).some((f) => f.confirmedAt !== null);
      return { org, member: { ...existing, email: user.email, mfa } };
    });
  }
}

/**
 * SESSION_IDLE_BOUNDS limits org policy `session_idle`. Below 5 minutes a session in use could idle out
 * between the once-a-minute records of its use; above 7 days the policy would not shorten anything.
 */
export const SESSION_IDLE_BOUNDS = { minMs: parseDuration('5m'), maxMs: parseDuration('7d') } as const;

export interface PolicyInput {
  requireMfa?: unknown;
  /** sessionIdle is a duration (`15m`), or null to go back to the defaults. */
  sessionIdle?: unknown;
}

/**
 * PolicyService reads and sets an org's security policy: `require_mfa` (every member must enrol a second
 * factor before doing anything else) and `session_idle` (members' sessions idle out after at most this
 * long, web and CLI alike; the absolute lifetimes stay as they are).
 */
export class PolicyService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #auditor: Auditor;

  constructor(store: Store, clock: Clock, auditor: Auditor) {
    this.#store = store;
    this.#clock = clock;
    this.#auditor = auditor;
  }

  async get(p: Principal, orgRef: string): Promise<{ org: Org; policy: OrgPolicy }> {
    const { org } = await resolveOrg(this.#store, p, orgRef, 'org:read');
    return { org, policy: (await this.#store.policies.get(org.id)) ?? defaultPolicy(org.id) };
  }

  async set(p: Principal, orgRef: string, input: PolicyInput, ctx: CallContext): Promise<{ org: Org; policy: OrgPolicy }> {
    const { org } = await resolveOrg(this.#store, p, orgRef, 'org:manage');
    if (input.requireMfa !== undefined && typeof input.requireMfa !== 'boolean') throw new UserError('bad_request', 'require_mfa is true or false');
    let sessionIdleMs: number | null | undefined;
    if (input.sessionIdle === null) sessionIdleMs = null;
    else if (input.sessionIdle !== undefined) {
      try {
        sessionIdleMs = parseDuration(String(input.sessionIdle));
      } catch (e) {
        throw new UserError('bad_request', (e as Error).message);
      }
      if (sessionIdleMs < SESSION_IDLE_BOUNDS.minMs || sessionIdleMs > SESSION_IDLE_BOUNDS.maxMs) {
        throw new UserError('bad_request', `session_idle must be between ${formatDuration(SESSION_IDLE_BOUNDS.minMs)} and ${formatDuration(SESSION_IDLE_BOUNDS.maxMs)}`);
      }
    }
    if (input.requireMfa === true) {
      // Requiring what one has not done oneself would lock the caller out of the org's management too.
      const mine = (await this.#store.factors.listForUser(p.userId)).some((f) => f.confirmedAt !== null);
      if (!mine) {
        throw new UserError('mfa_required', 'set up MFA on your own account before requiring it of the org', {
          hint: 'ward auth mfa enable, then ward auth mfa confirm CODE',
        });
      }
    }
    const now = toTimestamp(this.#clock.now());
    return this.#store.transaction(async (tx) => {
      const before = (await tx.policies.get(org.id)) ?? defaultPolicy(org.id);
      const policy: OrgPolicy = {
        orgId: org.id,
        requireMfa: typeof input.requireMfa === 'boolean' ? input.requireMfa : before.requireMfa,
        sessionIdleMs: sessionIdleMs === undefined ? before.sessionIdleMs : sessionIdleMs,
        updatedAt: now,
        updatedBy: p.userId,
      };
      await tx.policies.put(policy);
      await this.#auditor.record(tx, ctx, {
        orgId: org.id,
        action: 'org.policy_change',
        target: org.id,
        outcome: 'success',
        details: {
          require_mfa: { from: before.requireMfa, to: policy.requireMfa },
          session_idle: { from: idleText(before.sessionIdleMs), to: idleText(policy.sessionIdleMs) },
        },
      });
      return { org, policy };
    });
  }
}

function idleText(ms: number | null): string | null {
  return ms === null ? null : formatDuration(ms);
}

export function defaultPolicy(orgId: string): OrgPolicy {
  return { orgId, requireMfa: false, sessionIdleMs: null, updatedAt: '1970-01-01T00:00:00.000Z', updatedBy: null };
}
