import { randomBytes } from 'node:crypto';
import { newId, toTimestamp, UserError, type AuthFactor, type Clock, type User } from '../core/index.ts';
import { StoreConflictError, type Store } from '../store/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import { seal, unseal, type SealingKeys } from '../secrets/index.ts';
import { checkTotp, newTotpSecret, otpauthUri } from './totp.ts';
import { hashSecret } from './tokens.ts';

/** RECOVERY_CODE_COUNT recovery codes are issued when MFA is confirmed; each works once. */
export const RECOVERY_CODE_COUNT = 10;

/** The key purpose under which TOTP secrets are sealed (src/secrets derives one key per purpose). */
const TOTP_KEY_PURPOSE = 'totp';

// Crockford's base32 alphabet: no i, l, o, u, so a code read off paper is not misread.
const CODE_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * newRecoveryCode returns 80 random bits as four groups of four characters (`7kq2-…`). 80 bits make a
 * plain SHA-256 a safe way to store it: nobody searches 2^80 candidates, so no slow hash is needed.
 */
export function newRecoveryCode(): string {
  const bytes = randomBytes(16);
  let s = '';
  for (let i = 0; i < 16; i++) s += CODE_ALPHABET[bytes[i]! & 31];
  return s.match(/.{4}/g)!.join('-');
}

/** normalizeRecoveryCode reads a code as people type it (case, dashes, spaces, o for 0, i/l for 1), or undefined. */
export function normalizeRecoveryCode(input: string): string | undefined {
  const s = input.toLowerCase().replace(/[\s-]/g, '').replace(/o/g, '0').replace(/[il]/g, '1');
  return /^[0-9a-hjkmnp-tv-z]{16}$/.test(s) ? s : undefined;
}

/** MfaStatus is what a person sees about their own MFA. */
export interface MfaStatus {
  enabled: boolean;
  pending: boolean;
  factors: Array<{ id: string; type: string; label: string; createdAt: string; confirmedAt: string | null; lastUsedAt: string | null }>;
  recoveryCodesLeft: number;
}

/** Enrolment is the answer to `mfa enable`: the secret, shown once, and the URI authenticator apps scan. */
export interface Enrolment {
  factorId: string;
  secret: string;
  otpauthUri: string;
}

/** SecondFactorUse says which kind of second factor a code turned out to be. */
export type SecondFactorUse = 'totp' | 'recovery_code';

/**
 * MfaService enrols, checks and removes second factors. TOTP secrets are sealed at rest under a key
 * derived from the master key, bound to the user's id; a TOTP factor counts only once confirmed with a
 * first code; each accepted time step is stored so no code works twice (RFC 6238 §5.2); recovery codes
 * are stored as hashes and work once each.
 */
export class MfaService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #keys: SealingKeys;
  readonly #auditor: Auditor;

  constructor(store: Store, clock: Clock, keys: SealingKeys, auditor: Auditor) {
    this.#store = store;
    this.#clock = clock;
    this.#keys = keys;
    this.#auditor = auditor;
  }

  /** hasConfirmed reports whether the user has a working second factor. */
  async hasConfirmed(userId: string, store: Store = this.#store): Promise<boolean> {
    return (await store.factors.listForUser(userId)).some((f) => f.confirmedAt !== null);
  }

  async status(userId: string): Promise<MfaStatus> {
    const factors = await this.#store.factors.listForUser(userId);
    return {
      enabled: factors.some((f) => f.confirmedAt !== null),
      pending: factors.some((f) => f.confirmedAt === null),
      factors: factors.map((f) => ({ id: f.id, type: f.type, label: f.label, createdAt: f.createdAt, confirmedAt: f.confirmedAt, lastUsedAt: f.lastUsedAt })),
      recoveryCodesLeft: await this.#store.recoveryCodes.countUnused(userId),
    };
  }

  /**
   * enable starts a TOTP enrolment: a new secret, sealed and stored as a pending factor, replacing any
   * earlier pending one. It returns the secret once; the factor counts after confirm().
   */
  async enable(user: User, ctx: CallContext): Promise<Enrolment> {
    const secret = newTotpSecret();
    const now = toTimestamp(this.#clock.now());
    const factorId = newId('factor');
    const secretSealed = await seal(this.#keys, TOTP_KEY_PURPOSE, secret, user.id);
    await this.#store.transaction(async (tx) => {
      const existing = (await tx.factors.listForUser(user.id)).filter((f) => f.type === 'totp');
      if (existing.some((f) => f.confirmedAt !== null)) {
        throw new UserError('conflict', 'MFA is enabled already', {
          hint: 'to move to a new device: ward auth mfa disable --otp CODE, then ward auth mfa enable',
        });
      }
      for (const f of existing) await tx.factors.delete(f.id);
      const factor: AuthFactor = {
        id: factorId,
        userId: user.id,
        type: 'totp',
        label: 'authenticator app',
        secretSealed,
        publicData: null,
        counter: null,
        createdAt: now,
        confirmedAt: null,
        lastUsedAt: null,
      };
      await tx.factors.create(factor);
      await this.#auditor.record(tx, ctx, { orgId: null, action: 'mfa.enable', target: user.id, outcome: 'success', details: { factor_id: factorId, type: 'totp' } });
    }).catch((e: unknown) => {
      // Two enrolments started at once: the database keeps one TOTP factor per person, the other loses.
      if (e instanceof StoreConflictError) throw new UserError('conflict', 'another MFA enrolment was started at the same time', { hint: 'run ward auth mfa enable again' });
      throw e;
    });
    return { factorId, secret, otpauthUri: otpauthUri(secret, user.email) };
  }

  /**
   * confirm activates the pending TOTP factor with a first code from the authenticator app and returns
   * fresh recovery codes, shown once.
   */
  async confirm(user: User, code: unknown, ctx: CallContext): Promise<{ recoveryCodes: string[] }> {
    const factor = (await this.#store.factors.listForUser(user.id)).find((f) => f.type === 'totp' && f.confirmedAt === null);
    if (!factor) {
      const enabled = await this.hasConfirmed(user.id);
      throw new UserError('conflict', enabled ? 'MFA is confirmed already' : 'no MFA enrolment is waiting for confirmation', {
        hint: enabled ? 'nothing to do' : 'start one: ward auth mfa enable',
      });
    }
    const nowMs = this.#clock.now().getTime();
    const step = typeof code === 'string' ? checkTotp(await this.#secretOf(factor), code.trim(), nowMs) : undefined;
    if (step === undefined) {
      await this.#auditor.record(this.#store, ctx, { orgId: null, action: 'mfa.confirm', target: user.id, outcome: 'failure', details: { factor_id: factor.id, reason: 'invalid_otp' } });
      throw invalidOtp('check the time on your phone, and use the code shown now');
    }
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    const now = toTimestamp(nowMs);
    await this.#store.transaction(async (tx) => {
      if (!(await tx.factors.confirm(factor.id, now))) throw new UserError('conflict', 'this MFA enrolment was confirmed or replaced meanwhile');
      // The confirming code is spent like any other: it cannot be used to log in afterwards.
      await tx.factors.advanceCounter(factor.id, step, now);
      await tx.recoveryCodes.replaceForUser(user.id, codes.map((c) => hashSecret(normalizeRecoveryCode(c)!)), now);
      await this.#auditor.record(tx, ctx, {
        orgId: null,
        action: 'mfa.confirm',
        target: user.id,
        outcome: 'success',
        details: { factor_id: factor.id, type: 'totp', recovery_code_count: RECOVERY_CODE_COUNT },
      });
    });
    return { recoveryCodes: codes };
  }

  /**
   * verify checks a second-factor code of a user with MFA: a current TOTP code whose time step is later
   * than the last one accepted, or an unused recovery code. It returns what the code was, or undefined
   * when it is neither. Accepting a code spends it.
   */
  async verify(user: User, code: string, ctx: CallContext): Promise<SecondFactorUse | undefined> {
    const trimmed = code.trim();
    const nowMs = this.#clock.now().getTime();
    const now = toTimestamp(nowMs);
    if (/^\d{6}$/.test(trimmed)) {
      const factors = (await this.#store.factors.listForUser(user.id)).filter((f) => f.type === 'totp' && f.confirmedAt !== null);
      for (const f of factors) {
        const step = checkTotp(await this.#secretOf(f), trimmed, nowMs);
        // advanceCounter refuses a step at or below the last accepted one, atomically: no replay.
        if (step !== undefined && (await this.#store.factors.advanceCounter(f.id, step, now))) return 'totp';
      }
      return undefined;
    }
    const normalized = normalizeRecoveryCode(trimmed);
    if (!normalized) return undefined;
    return this.#store.transaction(async (tx) => {
      if (!(await tx.recoveryCodes.use(user.id, hashSecret(normalized), now))) return undefined;
      const left = await tx.recoveryCodes.countUnused(user.id);
      await this.#auditor.record(tx, ctx, { orgId: null, action: 'mfa.recovery_code_used', target: user.id, outcome: 'success', details: { recovery_codes_left: left } });
      return 'recovery_code' as const;
    });
  }

  /** disable removes every second factor and recovery code of the user; the caller has checked a code. */
  async disable(user: User, ctx: CallContext, via: SecondFactorUse): Promise<void> {
    await this.#store.transaction(async (tx) => {
      const factors = await tx.factors.listForUser(user.id);
      for (const f of factors) await tx.factors.delete(f.id);
      await tx.recoveryCodes.deleteForUser(user.id);
      await this.#auditor.record(tx, ctx, { orgId: null, action: 'mfa.disable', target: user.id, outcome: 'success', details: { factors: factors.length, verified_with: via } });
    });
  }

  async #secretOf(f: AuthFactor): Promise<string> {
    if (!f.secretSealed) throw new Error(`factor ${f.id} has no secret`);
    return (await unseal(this.#keys, TOTP_KEY_PURPOSE, f.secretSealed, f.userId)).toString('utf8');
  }
}

/** invalidOtp is the error for a wrong, stale or replayed one-time code; the answer does not say which. */
export function invalidOtp(hint = 'use the code your authenticator app shows now, or a recovery code'): UserError {
  return new UserError('invalid_otp', 'the one-time code is wrong, expired or was used already', { hint });
}
