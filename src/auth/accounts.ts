import {
  newId,
  normalizeEmail,
  nameProblem,
  parseDuration,
  toTimestamp,
  UserError,
  type Clock,
  type Org,
  type Role,
  type Session,
  type SessionKind,
  type User,
  ROLES,
} from '../core/index.ts';
import type { Store } from '../store/index.ts';
import { StoreConflictError } from '../store/index.ts';
import { burnPasswordCheck, hashPassword, passwordProblem, verifyPassword } from './password.ts';
import { hashSecret, newSecret, secretKind } from './tokens.ts';
import type { Principal } from './authorize.ts';

/**
 * Session lifetimes. A dashboard session follows HIPAA's "automatic logoff" (§164.312(a)(2)(iii)) with a
 * 15-minute idle timeout and a 12-hour cap; a CLI session is used in bursts from a person's terminal, so
 * it idles out after 12 hours and ends after 7 days whatever its use. Org policy can shorten both once
 * issue "Identity" lands. docs/security.md records the choice.
 */
export const SESSION_POLICY: Record<SessionKind, { idleMs: number; absoluteMs: number }> = {
  web: { idleMs: parseDuration('15m'), absoluteMs: parseDuration('12h') },
  cli: { idleMs: parseDuration('12h'), absoluteMs: parseDuration('7d') },
};

/** Sessions record their last use at most this often, so a busy client does not write on every request. */
const TOUCH_EVERY_MS = 60_000;

const INVITE_TTL_DEFAULT_MS = parseDuration('7d');
const INVITE_TTL_MAX_MS = parseDuration('30d');

export interface IssuedSession {
  token: string;
  kind: SessionKind;
  expiresAt: string;
  idleTimeoutMs: number;
}

export interface SignupInput {
  email: unknown;
  password: unknown;
  org?: unknown;
  invite?: unknown;
}

/** AccountService handles signup, login, logout and turning a bearer token into a Principal. */
export class AccountService {
  readonly #store: Store;
  readonly #clock: Clock;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /**
   * signup creates a user. On a server with no users the caller names a new org and becomes its owner;
   * after that an invite code is needed and decides the org and role.
   */
  async signup(input: SignupInput): Promise<{ user: User; org: Org; role: Role; session: IssuedSession }> {
    const email = typeof input.email === 'string' ? normalizeEmail(input.email) : undefined;
    if (!email) throw new UserError('bad_request', 'a valid email address is required', { hint: 'pass --email you@example.com' });
    const pwProblem = passwordProblem(input.password);
    if (pwProblem) throw new UserError('bad_request', pwProblem, { hint: 'choose a longer passphrase' });
    const password = input.password as string;
    const inviteCode = typeof input.invite === 'string' && input.invite !== '' ? input.invite : undefined;
    const orgName = typeof input.org === 'string' ? input.org : undefined;
    if (!inviteCode && orgName !== undefined) {
      const problem = nameProblem(orgName);
      if (problem) throw new UserError('invalid_name', `invalid org name "${orgName}": ${problem}`);
    }
    // Hash outside the transaction: it takes a third of a second and must not hold a database lock.
    const passwordHash = await hashPassword(password);
    const now = toTimestamp(this.#clock.now());

    return this.#store.transaction(async (tx) => {
      const user: User = { id: newId('user'), email, passwordHash, createdAt: now, updatedAt: now };
      let org: Org;
      let role: Role;
      if (inviteCode) {
        const invite = secretKind(inviteCode) === 'invite' ? await tx.invites.findByCodeHash(hashSecret(inviteCode)) : undefined;
        if (!invite || invite.usedAt !== null || invite.expiresAt <= now) {
          throw new UserError('invite_required', 'the invite code is not valid: it is unknown, used or expired', {
            hint: 'ask an org owner or admin for a new one: ward orgs invite --org ORG --role ROLE',
          });
        }
        const found = await tx.orgs.get(invite.orgId);
        if (!found) throw new UserError('invite_required', 'the invite\'s org no longer exists');
        await this.#createUser(tx, user);
        if (!(await tx.invites.markUsed(invite.id, user.id, now))) {
          throw new UserError('invite_required', 'the invite code was used already');
        }
        org = found;
        role = invite.role;
      } else {
        if ((await tx.users.count()) > 0) {
          throw new UserError('invite_required', 'this server already has accounts, so signing up needs an invite code', {
            hint: 'ask an org owner or admin for one (ward orgs invite --org ORG --role ROLE), then pass --invite CODE',
          });
        }
        if (orgName === undefined) {
          throw new UserError('bad_request', 'the first account creates an org: its name is required', { hint: 'pass --org NAME' });
        }
        await this.#createUser(tx, user);
        org = { id: newId('org'), name: orgName, createdAt: now };
        try {
          await tx.orgs.create(org);
        } catch (e) {
          if (e instanceof StoreConflictError) throw new UserError('name_taken', `the org name "${orgName}" is taken`);
          throw e;
        }
        role = 'owner';
      }
      await tx.memberships.create({ id: newId('membership'), orgId: org.id, userId: user.id, role, createdAt: now });
      const session = await this.#issueSession(tx, user.id, 'cli');
      return { user, org, role, session };
    });
  }

  async #createUser(tx: Store, user: User): Promise<void> {
    try {
      await tx.users.create(user);
    } catch (e) {
      if (e instanceof StoreConflictError) {
        throw new UserError('conflict', `an account for ${user.email} exists already`, { hint: 'log in instead: ward auth login' });
      }
      throw e;
    }
  }

  /**
   * login checks email and password and issues a session. Unknown emails and wrong passwords get the same
   * error after the same amount of work, so the answer does not reveal which accounts exist.
   */
  async login(input: { email: unknown; password: unknown; kind?: unknown }): Promise<{ user: User; session: IssuedSession }> {
    const kind: SessionKind = input.kind === 'web' ? 'web' : 'cli';
    const password = typeof input.password === 'string' ? input.password : '';
    const email = typeof input.email === 'string' ? normalizeEmail(input.email) : undefined;
    const user = email ? await this.#store.users.findByEmail(email) : undefined;
    const ok = password.length > 0 && password.length <= 1024 && user
      ? await verifyPassword(password, user.passwordHash)
      : (await burnPasswordCheck(password.slice(0, 1024)), false);
    if (!user || !ok) {
      throw new UserError('invalid_credentials', 'the email or password is wrong', {
        hint: 'check both; passwords are case-sensitive',
      });
    }
    const session = await this.#issueSession(this.#store, user.id, kind);
    return { user, session };
  }

  async #issueSession(store: Store, userId: string, kind: SessionKind): Promise<IssuedSession> {
    const token = newSecret('session');
    const nowMs = this.#clock.now().getTime();
    const policy = SESSION_POLICY[kind];
    const session: Session = {
      id: newId('session'),
      userId,
      kind,
      tokenHash: hashSecret(token),
      createdAt: toTimestamp(nowMs),
      lastUsedAt: toTimestamp(nowMs),
      idleTimeoutMs: policy.idleMs,
      expiresAt: toTimestamp(nowMs + policy.absoluteMs),
      revokedAt: null,
    };
    await store.sessions.create(session);
    return { token, kind, expiresAt: session.expiresAt, idleTimeoutMs: policy.idleMs };
  }

  /** logout revokes one session. */
  async logout(sessionId: string): Promise<void> {
    await this.#store.sessions.revoke(sessionId, toTimestamp(this.#clock.now()));
  }

  /**
   * authenticate turns a bearer token into a Principal, or throws unauthenticated. Every way a token can
   * be bad (malformed, unknown, revoked, idle too long, past its end, its user gone) gets the same answer.
   */
  async authenticate(bearer: string | undefined): Promise<Principal> {
    const denied = (why: string) =>
      new UserError('unauthenticated', why, { hint: 'log in again: ward auth login (or set WARD_API_TOKEN)' });
    if (!bearer) throw denied('this request needs a credential');
    if (secretKind(bearer) !== 'session') throw denied('the credential is not valid');
    const session = await this.#store.sessions.findByTokenHash(hashSecret(bearer));
    const nowMs = this.#clock.now().getTime();
    if (!session || session.revokedAt !== null) throw denied('the credential is not valid');
    if (Date.parse(session.expiresAt) <= nowMs || Date.parse(session.lastUsedAt) + session.idleTimeoutMs <= nowMs) {
      throw denied('the session has expired');
    }
    const user = await this.#store.users.get(session.userId);
    if (!user) throw denied('the credential is not valid');
    if (nowMs - Date.parse(session.lastUsedAt) >= TOUCH_EVERY_MS) {
      await this.#store.sessions.touch(session.id, toTimestamp(nowMs));
    }
    return { userId: user.id, email: user.email, via: 'session', sessionId: session.id };
  }

  /** createInvite makes a one-time code that lets one person sign up into org with role. */
  async createInvite(orgId: string, createdBy: string, role: unknown, expiresIn?: unknown): Promise<{ id: string; code: string; role: Role; expiresAt: string }> {
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
      throw new UserError('bad_request', `role must be one of ${ROLES.join(', ')}`);
    }
    let ttl = INVITE_TTL_DEFAULT_MS;
    if (expiresIn !== undefined) {
      try {
        ttl = parseDuration(String(expiresIn));
      } catch (e) {
        throw new UserError('bad_request', (e as Error).message);
      }
      if (ttl <= 0 || ttl > INVITE_TTL_MAX_MS) throw new UserError('bad_request', 'invites expire within 30 days at most');
    }
    const code = newSecret('invite');
    const nowMs = this.#clock.now().getTime();
    const invite = {
      id: newId('invite'),
      orgId,
      role: role as Role,
      codeHash: hashSecret(code),
      createdBy,
      createdAt: toTimestamp(nowMs),
      expiresAt: toTimestamp(nowMs + ttl),
      usedAt: null,
      usedBy: null,
    };
    await this.#store.invites.create(invite);
    return { id: invite.id, code, role: invite.role, expiresAt: invite.expiresAt };
  }
}
