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
