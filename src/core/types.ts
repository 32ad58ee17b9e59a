/**
 * Domain types shared by the store, services, API and CLI. Timestamps are ISO-8601 strings in UTC
 * (`2026-11-29T06:13:30.123Z`): they sort as text and read the same from SQLite and PostgreSQL.
 */
export type Timestamp = string;

export const ROLES = ['owner', 'admin', 'developer', 'viewer', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export interface User {
  id: string;
  email: string;
  /** passwordHash is a self-describing PHC-style string (see src/auth/password.ts); never sent out. */
  passwordHash: string;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface Org {
  id: string;
  name: string;
  createdAt: Timestamp;
}

export interface Membership {
  id: string;
  orgId: string;
  userId: string;
  role: Role;
  createdAt: Timestamp;
}

export type SessionKind = 'cli' | 'web';

export interface Session {
  id: string;
  userId: string;
  kind: SessionKind;
  /** tokenHash is SHA-256 of the bearer token, hex; the token itself is never stored. */
  tokenHash: string;
  createdAt: Timestamp;
  lastUsedAt: Timestamp;
  /** idleTimeoutMs: the session ends when unused this long. */
  idleTimeoutMs: number;
  /** expiresAt: the absolute end of the session, whatever its use. */
  expiresAt: Timestamp;
  revokedAt: Timestamp | null;
}

export interface Invite {
  id: string;
  orgId: string;
  role: Role;
  /** codeHash is SHA-256 of the invite code, hex. */
  codeHash: string;
  createdBy: string;
  createdAt: Timestamp;
  expiresAt: Timestamp;
  usedAt: Timestamp | null;
  usedBy: string | null;
}

export interface App {
  id: string;
  orgId: string;
  name: string;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/**
 * FactorType is the kind of a second authentication factor. Only TOTP exists today; WebAuthn (passkeys)
 * fits the same record: its public key goes in publicData and its signature counter in counter.
 */
export type FactorType = 'totp' | 'webauthn';

/** AuthFactor is a person's second factor. It counts only once confirmed: proven to work by a first code. */
export interface AuthFactor {
  id: string;
  userId: string;
  type: FactorType;
  /** label is for people: "authenticator app", a security key's name. */
  label: string;
  /** secretSealed is the factor's secret sealed by src/secrets (TOTP: the shared key); null when it has none. */
  secretSealed: string | null;
  /** publicData is type-specific public data as JSON text (WebAuthn: credential id, public key); null for TOTP. */
  publicData: string | null;
  /** counter is the replay guard: TOTP's last accepted time step, WebAuthn's signature counter. */
  counter: number | null;
  createdAt: Timestamp;
  confirmedAt: Timestamp | null;
  lastUsedAt: Timestamp | null;
}

/** RecoveryCode is one of a person's single-use MFA recovery codes; only its SHA-256 is kept. */
export interface RecoveryCode {
  userId: string;
  codeHash: string;
  createdAt: Timestamp;
  usedAt: Timestamp | null;
}

export const TOKEN_SCOPES = ['read', 'deploy', 'admin'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/** ApiToken is a bearer token (`ward_tok_…`) acting for its creator within one org, perhaps one app. */
export interface ApiToken {
  id: string;
  name: string;
  /** tokenHash is SHA-256 of the secret, hex; the secret is shown once and never stored. */
  tokenHash: string;
  orgId: string;
  /** appId limits the token to one app; null for the whole org. */
  appId: string | null;
  scope: TokenScope;
  createdBy: string;
  createdAt: Timestamp;
  expiresAt: Timestamp;
  lastUsedAt: Timestamp | null;
  revokedAt: Timestamp | null;
}

/** OrgPolicy is an org's security policy. An org without a row has the defaults: no MFA needed, default idle. */
export interface OrgPolicy {
  orgId: string;
  requireMfa: boolean;
  /** sessionIdleMs caps the idle timeout of members' sessions; null keeps the defaults. */
  sessionIdleMs: number | null;
  updatedAt: Timestamp;
  updatedBy: string | null;
}

/** ThrottleEntry counts failed logins for one key (an account or a source address) in an hour's window. */
export interface ThrottleEntry {
  key: string;
  failures: number;
  windowStartedAt: Timestamp;
  blockedUntil: Timestamp | null;
}

export function toTimestamp(d: Date | number): Timestamp {
  return (typeof d === 'number' ? new Date(d) : d).toISOString();
}
