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
import type { Auditor, CallContext } from '../audit/index.ts';
import type { SealingKeys } from '../secrets/index.ts';
import { burnPasswordCheck, hashPassword, passwordProblem, verifyPassword } from './password.ts';
import { hashSecret, newSecret, secretKind } from './tokens.ts';
import type { Principal, SessionPrincipal } from './authorize.ts';
import { LoginGuard, type Attempt } from './throttle.ts';
import { invalidOtp, MfaService, type Enrolment, type SecondFactorUse } from './mfa.ts';
import { TokenService } from './api-tokens.ts';

/**
 * Session lifetimes. A dashboard session follows HIPAA's "automatic logoff" (§164.312(a)(2)(iii)) with a
 * 15-minute idle timeout and a 12-hour cap; a CLI session is used in bursts from a person's terminal, so
 * it idles out after 12 hours and ends after 7 days whatever its use. An org's `session_idle` policy
 * shortens the idle timeout (never the reverse) for its members; docs/security.md records the choice.
 */
export const SESSION_POLICY: Record<SessionKind, { idleMs: number; absoluteMs: number }> = {
  web: { idleMs: parseDuration('15m'), absoluteMs: parseDuration('12h') },
  cli: { idleMs: parseDuration('12h'), absoluteMs: parseDuration('7d') },
};

/** Sessions record their last use at most this often, so a busy client does not write on every request. */
const TOUCH_EVERY_MS = 60_000;

/**
 * Ended sessions (expired, idle past their timeout, or revoked) are deleted once they have been over for
 * this long; the sweep runs at most every SESSION_SWEEP_EVERY_MS per process, when a session is issued.
 * Nothing reads an ended session (the audit log keeps the logins and logouts), so the table stays small.
 */
export const SESSION_SWEEP_AFTER_MS = parseDuration('1d');
const SESSION_SWEEP_EVERY_MS = parseDuration('1h');

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

export interface LoginInput {
  email: unknown;
  password: unknown;
  kind?: unknown;
  /** otp is a current TOTP code or a recovery code, needed once the account has MFA. */
  otp?: unknown;
}

/** LoginFailureReason labels ward_login_failures_total. */
export type LoginFailureReason = 'invalid_credentials' | 'invalid_otp' | 'throttled';

export interface AccountServiceOptions {
  auditor: Auditor;
  /** keys seal TOTP secrets at rest (src/secrets: derived from the server's root data key). */
  keys: SealingKeys;
  /** onLoginFailure counts each refused login (the API's ward_login_failures_total). */
  onLoginFailure?: (reason: LoginFailureReason) => void;
}

const ANONYMOUS = { type: 'anonymous', id: null, label: null } as const;

/**
 * AccountService handles signup, login (with throttling and MFA), logout, password changes, invites, and
 * turning a bearer token — a session's or an API token's — into a Principal. Its `mfa` and `tokens`
 * services do the second-factor and API-token work.
 */
export class AccountService {
  readonly mfa: MfaService;
  readonly tokens: TokenService;
  readonly guard: LoginGuard;
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #auditor: Auditor;
  readonly #onLoginFailure: (reason: LoginFailureReason) => void;
  #lastSessionSweepMs = 0;

  constructor(store: Store, clock: Clock, options: AccountServiceOptions) {
    this.#store = store;
    this.#clock = clock;
    this.#auditor = options.auditor;
    this.#onLoginFailure = options.onLoginFailure ?? (() => {});
    this.mfa = new MfaService(store, clock, options.keys, options.auditor);
    this.tokens = new TokenService(store, clock, options.auditor);
    this.guard = new LoginGuard(store, clock);
  }

  /**
   * signup creates a user. On a server with no users the caller names a new org and becomes its owner;
   * after that an invite code is needed and decides the org and role.
   */
  async signup(input: SignupInput, ctx: CallContext): Promise<{ user: User; org: Org; role: Role; session: IssuedSession }> {
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
      const asUser: CallContext = { ...ctx, actor: { type: 'user', id: user.id, label: email } };
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
        await this.#auditor.record(tx, asUser, { orgId: org.id, action: 'invite.use', target: invite.id, outcome: 'success', details: { role, user_id: user.id } });
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
      await this.#auditor.record(tx, asUser, {
        orgId: org.id,
        action: 'auth.signup',
        target: user.id,
        outcome: 'success',
        details: { email, role, via: inviteCode ? 'invite' : 'first_account' },
      });
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
   * login checks email and password — and, once the account has MFA, a one-time code — and issues a
   * session. Unknown emails and wrong passwords get the same error after the same amount of work, and
   * are throttled alike, so the answer does not reveal which accounts exist. Only after the right
   * password does the answer say that a code is needed (otp_required) or wrong (invalid_otp).
   */
  async login(input: LoginInput, ctx: CallContext): Promise<{ user: User; session: IssuedSession; secondFactor: SecondFactorUse | null }> {
    const kind: SessionKind = input.kind === 'web' ? 'web' : 'cli';
    const password = typeof input.password === 'string' ? input.password : '';
    const typed = typeof input.email === 'string' ? input.email : '';
    const email = normalizeEmail(typed);
    const anonymous: CallContext = { ...ctx, actor: ANONYMOUS };
    const attempt = await this.#admit(typed, anonymous, email ?? typed.slice(0, 254));
    const user = email ? await this.#store.users.findByEmail(email) : undefined;
    const ok = password.length > 0 && password.length <= 1024 && user
      ? await verifyPassword(password, user.passwordHash)
      : (await burnPasswordCheck(password.slice(0, 1024)), false);
    if (!user || !ok) {
      await this.#loginFailed(attempt, anonymous, email ?? typed.slice(0, 254), user?.id ?? null, 'invalid_credentials');
      throw new UserError('invalid_credentials', 'the email or password is wrong', {
        hint: 'check both; passwords are case-sensitive',
      });
    }
    let secondFactor: SecondFactorUse | null = null;
    if (await this.mfa.hasConfirmed(user.id)) {
      const otp = typeof input.otp === 'string' ? input.otp : '';
      if (otp === '') {
        await this.guard.release(attempt);
        throw new UserError('otp_required', 'this account uses multi-factor authentication: a one-time code is needed', {
          hint: 'pass --otp CODE with the code from your authenticator app (or a recovery code)',
        });
      }
      const asUser: CallContext = { ...ctx, actor: { type: 'user', id: user.id, label: user.email } };
      const used = otp.length <= 64 ? await this.mfa.verify(user, otp, asUser) : undefined;
      if (!used) {
        await this.#loginFailed(attempt, anonymous, user.email, user.id, 'invalid_otp');
        throw invalidOtp();
      }
      secondFactor = used;
    }
    await this.guard.succeeded(attempt);
    const asUser: CallContext = { ...ctx, actor: { type: 'user', id: user.id, label: user.email } };
    const session = await this.#store.transaction(async (tx) => {
      const s = await this.#issueSession(tx, user.id, kind);
      await this.#auditor.record(tx, asUser, {
        orgId: null,
        action: 'auth.login',
        target: user.id,
        outcome: 'success',
        details: { kind, second_factor: secondFactor ?? 'none' },
      });
      return s;
    });
    return { user, session, secondFactor };
  }

  /** #admit lets an attempt through the throttle, recording a refusal like any failed login. */
  async #admit(typed: string, ctx: CallContext, shownEmail: string): Promise<Attempt> {
    try {
      return await this.guard.admit(typed, ctx.sourceIp);
    } catch (e) {
      if (e instanceof UserError && e.code === 'too_many_requests') {
        this.#onLoginFailure('throttled');
        await this.#auditor.record(this.#store, ctx, {
          orgId: null,
          action: 'auth.login',
          target: null,
          outcome: 'denied',
          details: { email: shownEmail, reason: 'throttled', retry_after_s: e.details?.retry_after_s ?? null },
        });
      }
      throw e;
    }
  }

  async #loginFailed(attempt: Attempt, ctx: CallContext, shownEmail: string, userId: string | null, reason: LoginFailureReason): Promise<void> {
    await this.guard.failed(attempt);
    this.#onLoginFailure(reason);
    await this.#auditor.record(this.#store, ctx, { orgId: null, action: 'auth.login', target: userId, outcome: 'failure', details: { email: shownEmail, reason } });
  }

  /**
   * #policiesFor is what a person's org policies add up to: whether any org requires MFA (and which
   * one, for the message), and the shortest `session_idle` among them.
   */
  async #policiesFor(userId: string, store: Store = this.#store): Promise<{ requireMfaBy: string | null; idleMs: number | null }> {
    const policies = await store.policies.forUser(userId);
    const idles = policies.map((p) => p.sessionIdleMs).filter((ms): ms is number => ms !== null);
    return {
      requireMfaBy: policies.find((p) => p.requireMfa)?.orgName ?? null,
      idleMs: idles.length ? Math.min(...idles) : null,
    };
  }

  async #issueSession(store: Store, userId: string, kind: SessionKind): Promise<IssuedSession> {
    const token = newSecret('session');
    const nowMs = this.#clock.now().getTime();
    const policy = SESSION_POLICY[kind];
    const { idleMs: orgIdle } = await this.#policiesFor(userId, store);
    const idleMs = orgIdle === null ? policy.idleMs : Math.min(policy.idleMs, orgIdle);
    const session: Session = {
      id: newId('session'),
      userId,
      kind,
      tokenHash: hashSecret(token),
      createdAt: toTimestamp(nowMs),
      lastUsedAt: toTimestamp(nowMs),
      idleTimeoutMs: idleMs,
      expiresAt: toTimestamp(nowMs + policy.absoluteMs),
      revokedAt: null,
    };
    await store.sessions.create(session);
    if (nowMs - this.#lastSessionSweepMs >= SESSION_SWEEP_EVERY_MS) {
      this.#lastSessionSweepMs = nowMs;
      await store.sessions.deleteExpired(toTimestamp(nowMs - SESSION_SWEEP_AFTER_MS));
    }
    return { token, kind, expiresAt: session.expiresAt, idleTimeoutMs: idleMs };
  }

  /** logout revokes the caller's session. */
  async logout(p: SessionPrincipal, ctx: CallContext): Promise<void> {
    const now = toTimestamp(this.#clock.now());
    await this.#store.transaction(async (tx) => {
      await tx.sessions.revoke(p.sessionId, now);
      await this.#auditor.record(tx, ctx, { orgId: null, action: 'auth.logout', target: p.userId, outcome: 'success', details: { session_id: p.sessionId } });
    });
  }

  /**
   * changePassword sets a new password after checking the current one, and revokes every other session
   * of the person (a thief's included); the session making the change stays. Wrong current passwords
   * count against the account like failed logins, so a stolen session cannot guess the password.
   */
  async changePassword(p: SessionPrincipal, input: { current: unknown; next: unknown }, ctx: CallContext): Promise<{ revokedSessions: number }> {
    const problem = passwordProblem(input.next);
    if (problem) throw new UserError('bad_request', `the new password is not acceptable: ${problem}`, { hint: 'choose a longer passphrase' });
    const current = typeof input.current === 'string' ? input.current : '';
    const next = input.next as string;
    const attempt = await this.#admit(p.email, ctx, p.email);
    const user = await this.#store.users.get(p.userId);
    const ok = user && current.length > 0 && current.length <= 1024 ? await verifyPassword(current, user.passwordHash) : false;
    if (!user || !ok) {
      await this.guard.failed(attempt);
      this.#onLoginFailure('invalid_credentials');
      await this.#auditor.record(this.#store, ctx, { orgId: null, action: 'auth.password_change', target: p.userId, outcome: 'failure', details: { reason: 'invalid_credentials' } });
      throw new UserError('invalid_credentials', 'the current password is wrong', { hint: 'passwords are case-sensitive' });
    }
    await this.guard.succeeded(attempt);
    if (next.normalize('NFKC') === current.normalize('NFKC')) {
      throw new UserError('bad_request', 'the new password is the same as the current one');
    }
    const passwordHash = await hashPassword(next);
    const now = toTimestamp(this.#clock.now());
    return this.#store.transaction(async (tx) => {
      await tx.users.updatePassword(p.userId, passwordHash, now);
      const revokedSessions = await tx.sessions.revokeAllForUser(p.userId, now, p.sessionId);
      await this.#auditor.record(tx, ctx, { orgId: null, action: 'auth.password_change', target: p.userId, outcome: 'success', details: { revoked_sessions: revokedSessions } });
      return { revokedSessions };
    });
  }

  /** enableMfa starts a TOTP enrolment for the caller (see MfaService.enable). */
  async enableMfa(p: SessionPrincipal, ctx: CallContext): Promise<Enrolment> {
    return this.mfa.enable(await this.#userOf(p), ctx);
  }

  /** confirmMfa activates the caller's pending TOTP factor and returns recovery codes (see MfaService.confirm). */
  async confirmMfa(p: SessionPrincipal, code: unknown, ctx: CallContext): Promise<{ recoveryCodes: string[] }> {
    return this.mfa.confirm(await this.#userOf(p), code, ctx);
  }

  /**
   * disableMfa removes the caller's second factors once they prove they hold one: a current code or a
   * recovery code. Wrong codes count against the account like failed logins: a stolen session must not
   * be able to guess its way to switching MFA off.
   */
  async disableMfa(p: SessionPrincipal, otp: unknown, ctx: CallContext): Promise<void> {
    const user = await this.#userOf(p);
    if (!(await this.mfa.hasConfirmed(user.id))) {
      // A pending enrolment can be dropped without a code: it never protected anything.
      const status = await this.mfa.status(user.id);
      if (!status.pending) throw new UserError('conflict', 'MFA is not enabled', { hint: 'enable it: ward auth mfa enable' });
      await this.mfa.disable(user, ctx, 'totp');
      return;
    }
    const code = typeof otp === 'string' ? otp : '';
    if (code === '') {
      throw new UserError('otp_required', 'switching MFA off needs a current one-time code or a recovery code', { hint: 'pass --otp CODE' });
    }
    const attempt = await this.#admit(user.email, ctx, user.email);
    const used = code.length <= 64 ? await this.mfa.verify(user, code, ctx) : undefined;
    if (!used) {
      await this.guard.failed(attempt);
      this.#onLoginFailure('invalid_otp');
      await this.#auditor.record(this.#store, ctx, { orgId: null, action: 'mfa.disable', target: user.id, outcome: 'failure', details: { reason: 'invalid_otp' } });
      throw invalidOtp();
    }
    await this.guard.succeeded(attempt);
    await this.mfa.disable(user, ctx, used);
  }

  async #userOf(p: Principal): Promise<User> {
    const user = await this.#store.users.get(p.userId);
    if (!user) throw new UserError('unauthenticated', 'the credential is not valid');
    return user;
  }

  /**
   * authenticate turns a bearer token — a session token or an API token — into a Principal, or throws
   * unauthenticated. Every way a token can be bad (malformed, unknown, revoked, idle too long, past its
   * end, its user gone) gets the same answer. The principal carries what org policy demands: the
   * shortest `session_idle` of the person's orgs ends idle sessions sooner, and `require_mfa` without a
   * confirmed factor limits the principal to enrolling (mfaRequiredBy).
   */
  async authenticate(bearer: string | undefined, ctx: Omit<CallContext, 'actor'> = { sourceIp: null, requestId: null }): Promise<Principal> {
    const denied = (why: string) =>
      new UserError('unauthenticated', why, { hint: 'log in again: ward auth login (or set WARD_API_TOKEN)' });
    if (!bearer) throw denied('this request needs a credential');
    const kind = secretKind(bearer);
    if (kind === 'api') {
      const tp = await this.tokens.authenticate(bearer, ctx);
      if (!tp) throw denied('the credential is not valid');
      const policy = await this.#store.policies.get(tp.orgId);
      let mfaRequiredBy: string | null = null;
      if (policy?.requireMfa && !(await this.mfa.hasConfirmed(tp.userId))) mfaRequiredBy = (await this.#store.orgs.get(tp.orgId))?.name ?? tp.orgId;
      return { ...tp, mfaRequiredBy };
    }
    if (kind !== 'session') throw denied('the credential is not valid');
    const session = await this.#store.sessions.findByTokenHash(hashSecret(bearer));
    const nowMs = this.#clock.now().getTime();
    if (!session || session.revokedAt !== null) throw denied('the credential is not valid');
    const policies = await this.#policiesFor(session.userId);
    // Policy applies to sessions issued before it changed too: the stricter of the two wins.
    const idleMs = policies.idleMs === null ? session.idleTimeoutMs : Math.min(session.idleTimeoutMs, policies.idleMs);
    if (Date.parse(session.expiresAt) <= nowMs || Date.parse(session.lastUsedAt) + idleMs <= nowMs) {
      throw denied('the session has expired');
    }
    const user = await this.#store.users.get(session.userId);
    if (!user) throw denied('the credential is not valid');
    if (nowMs - Date.parse(session.lastUsedAt) >= TOUCH_EVERY_MS) {
      await this.#store.sessions.touch(session.id, toTimestamp(nowMs));
    }
    const mfaRequiredBy = policies.requireMfaBy !== null && !(await this.mfa.hasConfirmed(user.id)) ? policies.requireMfaBy : null;
    return { userId: user.id, email: user.email, via: 'session', sessionId: session.id, mfaRequiredBy };
  }

  /** createInvite makes a one-time code that lets one person sign up into org with role. */
  async createInvite(orgId: string, createdBy: string, role: unknown, expiresIn: unknown, ctx: CallContext): Promise<{ id: string; code: string; role: Role; expiresAt: string }> {
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
    await this.#store.transaction(async (tx) => {
      await tx.invites.create(invite);
      await this.#auditor.record(tx, ctx, { orgId, action: 'invite.create', target: invite.id, outcome: 'success', details: { role: invite.role, expires_at: invite.expiresAt } });
    });
    return { id: invite.id, code, role: invite.role, expiresAt: invite.expiresAt };
  }
}
