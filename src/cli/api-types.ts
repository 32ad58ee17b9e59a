import type { Role } from '../core/index.ts';

/**
 * The API's wire objects as docs/api.md describes them (snake_case), as the CLI reads them. They are
 * declared here rather than imported from src/api so the CLI depends on the documented contract, not on
 * the server's code.
 */

export interface ApiUser {
  id: string;
  email: string;
  created_at: string;
}

export interface ApiOrg {
  id: string;
  name: string;
  created_at: string;
}

export interface ApiOrgWithRole extends ApiOrg {
  role: Role;
}

export interface ApiMember {
  user_id: string;
  email: string;
  role: Role;
  created_at: string;
}

export interface ApiSession {
  token: string;
  kind: 'cli' | 'web';
  expires_at: string;
  idle_timeout: string;
}

export interface ApiApp {
  id: string;
  name: string;
  org: { id: string; name: string };
  created_at: string;
  updated_at: string;
}

export interface ApiInvite {
  id: string;
  code: string;
  role: Role;
  expires_at: string;
}

export interface SignupAnswer {
  user: ApiUser;
  org: ApiOrg;
  role: Role;
  session: ApiSession;
}

export interface LoginAnswer {
  user: ApiUser;
  session: ApiSession;
}

export interface WhoamiAnswer {
  user: ApiUser;
  orgs: Array<{ id: string; name: string; role: Role }>;
}

export interface OrgShowAnswer {
  org: ApiOrg;
  role: Role;
  members: ApiMember[];
}

/** ApiAuditEntry is one audit log entry, exactly as stored and hashed (docs/audit.md). */
export interface ApiAuditEntry {
  chain: string;
  seq: number;
  id: string;
  at: string;
  org_id: string | null;
  actor_type: 'user' | 'token' | 'system' | 'anonymous';
  actor_id: string | null;
  actor_label: string | null;
  action: string;
  target: string | null;
  outcome: 'success' | 'failure' | 'denied';
  source_ip: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export interface AuditListAnswer {
  org: ApiOrg;
  entries: ApiAuditEntry[];
  next_after: number | null;
}

export interface AuditVerifyAnswer {
  org: ApiOrg;
  ok: boolean;
  chains: number;
  entries: number;
  checkpoints: number;
  problems: Array<{ chain: string; seq: number; id?: string; reason: string }>;
  ranges: Array<{ chain: string; first_seq: number; last_seq: number; signed_seq: number }>;
  key_ids: string[];
}

/** MfaEnableAnswer starts TOTP enrolment; the secret is shown once. */
export interface MfaEnableAnswer {
  factor_id: string;
  type: 'totp';
  secret: string;
  otpauth_uri: string;
}

export interface MfaStatusAnswer {
  enabled: boolean;
  pending: boolean;
  recovery_codes_left: number;
  factors: Array<{ id: string; type: string; label: string; created_at: string; confirmed_at: string | null; last_used_at: string | null }>;
}

/** ApiToken is an API token as listed: never its secret. */
export interface ApiToken {
  id: string;
  name: string;
  scope: 'read' | 'deploy' | 'admin';
  org: { id: string; name: string };
  app: { id: string; name: string } | null;
  created_at: string;
  expires_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface ApiOrgMember {
  user_id: string;
  email: string;
  role: Role;
  mfa: boolean;
  created_at: string;
}

export interface ApiOrgPolicy {
  require_mfa: boolean;
  session_idle: string | null;
  updated_at: string;
}
