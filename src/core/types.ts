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

export function toTimestamp(d: Date | number): Timestamp {
  return (typeof d === 'number' ? new Date(d) : d).toISOString();
}
